"""PEP 751 ``pylock.toml``: validated and selected by ``packaging.pylock``, mapped to LockedDist."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union
from urllib.parse import unquote, urlsplit

from packaging.pylock import (
    PackageArchive,
    PackageDirectory,
    PackageSdist,
    PackageVcs,
    PackageWheel,
    Pylock,
    PylockSelectError,
    PylockValidationError,
)
from packaging.tags import Tag

from ..errors import EnvmatError
from ..target import Target
from .model import FileRef, LockedDist, Selection

Artifact = Union[PackageVcs, PackageDirectory, PackageArchive, PackageWheel, PackageSdist]


def parse_pylock(lock_path: Path, data: Mapping[str, Any]) -> Pylock:
    try:
        return Pylock.from_dict(data)
    except PylockValidationError as e:
        where = f"in {lock_path}: {e.context}" if e.context else f"in {lock_path}"
        raise EnvmatError(
            f"{lock_path.name} is not a valid pylock.toml: {e.message}",
            context=[where],
            hint="fix the lock by hand or run the lock command that wrote it again "
            "(spec: https://packaging.python.org/en/latest/specifications/pylock-toml/)",
        ) from None


def requested_groups(lock: Pylock, selection: Selection) -> list[str] | None:
    """PEP 751 installation step 1: None means the lock's ``default-groups``."""
    declared = list(lock.dependency_groups or [])
    defaults = list(lock.default_groups or [])
    if selection.all_groups:
        groups = declared + ([] if selection.no_default_groups else defaults)
        return sorted(set(groups + list(selection.groups)))
    if selection.groups or selection.only_groups:
        # Naming groups replaces the defaults, as in uv and pip (research notes §3.2).
        return sorted(set(selection.groups) | set(selection.only_groups))
    if selection.no_default_groups:
        return []
    return None


def _check_declared(lock_path: Path, kind: str, asked: list[str], declared: list[str]) -> None:
    unknown = sorted(set(asked) - set(declared))
    if unknown:
        have = ", ".join(sorted(declared)) or "none"
        raise EnvmatError(
            f"{lock_path.name} has no {kind} {', '.join(map(repr, unknown))}",
            context=[f"in {lock_path}: the lock declares {kind}s: {have}"],
            hint=f"choose one of the {kind}s the lock declares, or lock again with the {kind} included",
        )


def select_pylock(
    lock_path: Path, lock: Pylock, target: Target, selection: Selection
) -> list[LockedDist]:
    extras: list[str] = (
        sorted({str(e) for e in lock.extras or []})
        if selection.all_extras
        else sorted(set(selection.extras))
    )
    _check_declared(lock_path, "extra", extras, [str(e) for e in lock.extras or []])
    groups = requested_groups(lock, selection)
    if groups is not None:
        declared = [str(g) for g in [*(lock.dependency_groups or []), *(lock.default_groups or [])]]
        _check_declared(lock_path, "dependency group", groups, declared)
    tags = [Tag(*t.split("-")) for t in target.tags]
    try:
        chosen = list(
            lock.select(
                environment=dict(target.environment),  # type: ignore[arg-type]
                tags=tags,
                extras=extras,
                dependency_groups=groups,
            )
        )
    except PylockSelectError as e:
        raise _select_error(lock_path, lock, target, str(e)) from None
    index_of = {id(p): i for i, p in enumerate(lock.packages)}
    return [_to_dist(lock_path, index_of[id(pkg)], pkg, art) for pkg, art in chosen]


def _select_error(lock_path: Path, lock: Pylock, target: Target, message: str) -> EnvmatError:
    m = re.search(r"packages\[(\d+)\]", message)
    if "No wheel found" in message and m:
        pkg = lock.packages[int(m.group(1))]
        names = [w.filename for w in pkg.wheels or []]
        shown = names[:8] + ([f"... and {len(names) - 8} more"] if len(names) > 8 else [])
        hint = (
            "lock again for this interpreter (e.g. uv pip compile --python-version "
            + target.python_version
        )
        hint += " --format pylock.toml), or choose another --python"
        if lock.requires_python:
            hint = f"the lock was made for Python {lock.requires_python}; " + hint
        return EnvmatError(
            f"no wheel in the lock fits {target.describe()} for {pkg.name} {pkg.version or ''}".rstrip(),
            context=[
                f"in {lock_path}: packages[{m.group(1)}] ({pkg.name})",
                "the lock has these wheels:",
            ],
            details=shown,
            hint=hint,
        )
    if "does not satisfy the Python version" in message:
        spec = re.search(r"requirement '([^']*)'", message)
        where = f"packages[{m.group(1)}]" if m else "requires-python"
        return EnvmatError(
            f"{target.describe()} is outside the Python range {spec.group(1) if spec else '?'} the lock allows",
            context=[f"in {lock_path}: {where}"],
            hint="use --python with a version in that range, or lock again for this Python",
        )
    if "environments" in message:
        return EnvmatError(
            f"{target.describe()} is not one of the environments the lock supports",
            context=[f"in {lock_path}: environments = {[str(e) for e in lock.environments or []]}"],
            hint="use --python for an interpreter the lock was made for, or lock again for this platform",
        )
    if "Multiple packages" in message:
        return EnvmatError(
            f"the lock selects two entries for one package: {message}",
            context=[f"in {lock_path}"],
            hint="the markers of those entries overlap for this target; lock again",
        )
    return EnvmatError(
        f"cannot select from {lock_path.name}: {message}", context=[f"in {lock_path}"]
    )


def _file_ref(
    lock_path: Path, art: PackageWheel | PackageArchive | PackageSdist, filename: str
) -> FileRef:
    path = None
    if art.path is not None:
        raw = unquote(art.path[7:]) if art.path.startswith("file://") else art.path
        path = os.path.normpath(os.path.join(lock_path.parent.resolve(), raw))
    url = art.url
    if url and url.startswith("file://") and path is None:
        path = unquote(urlsplit(url).path)
    return FileRef(
        filename=filename,
        url=url,
        path=path,
        size=art.size,
        hashes={k.lower(): v.lower() for k, v in art.hashes.items()},
    )


def _source_tree_error(
    lock_path: Path, index: int, name: str, kind: str, where: str
) -> EnvmatError:
    return EnvmatError(
        f"{name} is locked as a {kind} ({where}); envmat does not build source trees yet",
        context=[f"in {lock_path}: packages[{index}] ({name})"],
        hint="lock with wheels only (e.g. uv pip compile --only-binary :all:), or install this package with pip",
    )


def _to_dist(lock_path: Path, index: int, pkg: Any, art: Artifact) -> LockedDist:
    key = f"packages[{index}]"
    version = str(pkg.version) if pkg.version is not None else None
    if isinstance(art, PackageWheel):
        return LockedDist(
            name=pkg.name,
            version=version,
            kind="wheel",
            wheel=_file_ref(lock_path, art, art.filename),
            key_path=key,
        )
    if isinstance(art, PackageArchive):
        fname = (art.path or art.url or "").rstrip("/").rsplit("/", 1)[-1]
        fname = unquote(fname)
        if fname.endswith(".whl"):
            ref = _file_ref(lock_path, art, fname)
            url = art.url or Path(ref.path or "").as_uri()
            hashes = dict(ref.hashes)
            # PEP 610: an archive is a direct URL reference; record where it came from
            archive_info: dict[str, Any] = {"hashes": hashes}
            if "sha256" in hashes:
                archive_info["hash"] = f"sha256={hashes['sha256']}"
            return LockedDist(
                name=pkg.name,
                version=version,
                kind="archive",
                wheel=ref,
                key_path=key,
                direct_url={"url": url, "archive_info": archive_info},
            )
        raise _source_tree_error(
            lock_path, index, pkg.name, "source archive", art.path or art.url or ""
        )
    if isinstance(art, PackageSdist):
        raise EnvmatError(
            f"{pkg.name} {version or ''} has only a source distribution in the lock for this target; "
            "envmat does not build source trees yet",
            context=[f"in {lock_path}: {key}.sdist ({art.filename})"],
            hint="lock with wheels only (e.g. uv pip compile --only-binary :all:), or install this package with pip",
        )
    if isinstance(art, PackageVcs):
        raise _source_tree_error(
            lock_path, index, pkg.name, f"{art.type} checkout", art.url or art.path or ""
        )
    raise _source_tree_error(lock_path, index, pkg.name, "local directory", art.path)
