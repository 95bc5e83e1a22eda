"""The target file manifest: every file the venv will hold, where its bytes come from, who owns it.

Pure over the cached wheels' indexes (the only reads are the small ``#!python`` scripts whose
first line is rewritten). Paths are relative to the venv, in POSIX form.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Callable, Iterable, Mapping

from attrs import evolve, frozen

from .cache import CachedWheel, cache_key
from .errors import EnvmatError
from .record import format_record, hex_to_record_hash
from .scripts import launcher, rewrite_shebang
from .target import Target

INSTALLER = b"envmat\n"


@frozen(kw_only=True)
class TargetFile:
    path: str
    sha256: str
    size: int
    executable: bool
    owners: tuple[str, ...]
    #: where the bytes come from: a file in the unpacked cache to link or copy ...
    link: str | None = None
    #: ... or bytes envmat generates (launchers, rewritten scripts, dist-info files)
    data: bytes | None = None
    #: the mtime (ns) of ``link`` as its cache index records it (checked on every use of the
    #: entry, Cache.entry_unchanged), when the index has it
    stamp: int | None = None


@frozen(kw_only=True)
class DistManifest:
    name: str
    version: str
    dist_info: str  # venv-relative
    wheel_key: str
    wheel_filename: str
    files: tuple[str, ...]  # venv-relative, RECORD included


@frozen(kw_only=True)
class Manifest:
    files: Mapping[str, TargetFile]
    dists: Mapping[str, DistManifest]
    conflicts: tuple[str, ...] = ()


def _bytes_file(path: str, data: bytes, owner: str, executable: bool = False) -> TargetFile:
    return TargetFile(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        executable=executable,
        owners=(owner,),
        data=data,
    )


def scheme_dirs(target: Target, dist_name: str) -> dict[str, str]:
    return {
        "purelib": target.rel("purelib"),
        "platlib": target.rel("platlib"),
        "scripts": target.rel("scripts"),
        "data": "",
        # pip and uv put a venv's headers under include/site/pythonX.Y/<dist> (never outside the venv)
        "headers": f"include/site/python{target.python_version}/{dist_name}",
    }


def dist_files(
    cached: CachedWheel, target: Target, python: str
) -> tuple[DistManifest, list[TargetFile]]:
    """The files one wheel installs, its launchers and its dist-info, RECORD last."""
    idx = cached.index
    name = cached.dist.name
    dirs = scheme_dirs(target, idx.name)
    site = dirs["purelib" if idx.root_is_purelib else "platlib"]
    out: list[TargetFile] = []
    root = str(cached.root)
    owners = (name,)
    # plain string joins: this loop runs once per installed file
    prefixes = {k: (v + "/" if v else "") for k, v in dirs.items()}
    stamps: Iterable[int | None] = (
        idx.stamps if len(idx.stamps) == len(idx.files) else [None] * len(idx.files)
    )
    for f, stamp in zip(idx.files, stamps):
        vpath = prefixes[f.scheme] + f.path
        if f.rewrite_shebang:
            with open(f"{root}/{f.scheme}/{f.path}", "rb") as fh:
                out.append(
                    _bytes_file(vpath, rewrite_shebang(python, fh.read()), name, executable=True)
                )
        else:
            out.append(
                TargetFile(
                    path=vpath,
                    sha256=f.sha256,
                    size=f.size,
                    executable=f.executable,
                    owners=owners,
                    link=f"{root}/{f.scheme}/{f.path}",
                    stamp=stamp,
                )
            )
    for scripts in (idx.console_scripts, idx.gui_scripts):
        for script, spec in sorted(scripts.items()):
            vpath = posixpath.join(dirs["scripts"], script)
            out.append(
                _bytes_file(vpath, launcher(python, script, spec, name), name, executable=True)
            )
    dist_info = posixpath.join(site, idx.dist_info)
    out.append(_bytes_file(f"{dist_info}/INSTALLER", INSTALLER, name))
    out.append(_bytes_file(f"{dist_info}/REQUESTED", b"", name))
    if cached.dist.direct_url is not None:
        # PEP 610: direct_url.json for direct URL references (archives in a pylock)
        data = json.dumps(dict(cached.dist.direct_url), sort_keys=True).encode()
        out.append(_bytes_file(f"{dist_info}/direct_url.json", data, name))
    record_path = f"{dist_info}/RECORD"
    rel = _record_rel(site)
    rows: list[tuple[str, str, int | None]] = [
        (rel(f.path), hex_to_record_hash(f.sha256), f.size) for f in out
    ]
    rows.append((rel(record_path), "", None))
    out.append(_bytes_file(record_path, format_record(rows), name))
    assert cached.dist.wheel is not None
    dm = DistManifest(
        name=name,
        version=idx.version,
        dist_info=dist_info,
        wheel_key=cache_key(cached.dist.wheel),
        wheel_filename=cached.dist.wheel.filename,
        files=tuple(f.path for f in out),
    )
    return dm, out


def _record_rel(site: str) -> Callable[[str], str]:
    """PEP 376: RECORD paths are relative to the directory holding the .dist-info (site-packages)."""
    inside = site + "/"
    up = "../" * (site.count("/") + 1)

    def rel(vpath: str) -> str:
        if vpath.startswith(inside):
            return vpath[len(inside) :]
        return (
            posixpath.relpath(vpath, site)
            if vpath.startswith(site.split("/", 1)[0] + "/")
            else up + vpath
        )

    return rel


def build_manifest(
    wheels: Iterable[CachedWheel],
    target: Target,
    python: str,
    *,
    strict: bool = False,
    parts: Mapping[str, tuple[DistManifest, list[TargetFile]]] | None = None,
) -> Manifest:
    """Merge the wheels' files; one entry per path, with every distribution that ships it.
    ``parts``: ``dist_files`` already computed for these target and python, by cache key."""
    files: dict[str, TargetFile] = {}
    dists: dict[str, DistManifest] = {}
    conflicts: list[str] = []
    for cached in sorted(wheels, key=lambda c: c.dist.name):
        assert cached.dist.wheel is not None
        part = parts.get(cache_key(cached.dist.wheel)) if parts else None
        dm, dfiles = part if part is not None else dist_files(cached, target, python)
        dists[dm.name] = dm
        for tf in dfiles:
            prev = files.get(tf.path)
            if prev is None:
                files[tf.path] = tf
            elif prev.sha256 == tf.sha256:
                # the nvidia case: identical bytes, one file, several owners (DESIGN.md §4)
                files[tf.path] = evolve(
                    prev,
                    executable=prev.executable or tf.executable,
                    owners=(*prev.owners, *tf.owners),
                )
            else:
                # deterministic: the distribution whose name sorts first keeps the path
                conflicts.append(
                    f"{tf.path} is shipped with different contents by {', '.join(prev.owners)} and "
                    f"{', '.join(tf.owners)}; keeping {prev.owners[0]}'s"
                )
                files[tf.path] = evolve(prev, owners=(*prev.owners, *tf.owners))
    if conflicts and strict:
        raise EnvmatError(
            f"{len(conflicts)} file(s) are shipped by several distributions with different contents",
            details=conflicts,
            hint="drop --strict to install anyway (the first distribution by name wins), or lock compatible versions",
        )
    return Manifest(files=files, dists=dists, conflicts=tuple(conflicts))
