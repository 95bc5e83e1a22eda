"""uv's native ``uv.lock``: what ``uv sync --frozen`` would install for one target, as LockedDist.

The walk follows uv's ``crates/uv-resolver/src/lock/installable.rs`` (``to_resolution``): roots are
the project beside the lock (or the workspace members), then a breadth-first walk over the edges
whose markers hold for the target, with uv's conflict markers evaluated against the extras and
groups the walk activates. Research notes: ``research/lock-formats.md`` §2.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional
from urllib.parse import SplitResult, unquote, urlsplit

from attrs import frozen
from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ..errors import EnvmatError
from ..target import Target
from .model import FileRef, LockedDist, Selection, url_problem

#: The newest ``version`` of the uv.lock schema this reader understands. uv rejects any greater
#: version (a schema change is a breaking event); ``revision`` changes are backward compatible.
SUPPORTED_VERSION = 1

#: The kinds of ``source`` uv writes, each an inline table with exactly one of these keys.
_SOURCE_KINDS = ("registry", "git", "url", "path", "directory", "editable", "virtual")

_SOURCE_TREE_HINT = (
    "build a wheel of it and lock that, or install this package with pip or uv; "
    "envmat installs wheels only"
)

#: A queued unit of the walk: a package index and the extra whose dependencies it contributes.
_Node = tuple[int, Optional[str]]


# --- the lock, lightly typed ----------------------------------------------------------------


@frozen(kw_only=True)
class _Package:
    """One ``[[package]]`` entry, with its position for messages."""

    index: int
    name: str
    version: str | None
    source: Mapping[str, Any]
    raw: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"package[{self.index}]"

    @property
    def key_path(self) -> str:
        return f"package[{self.index}] ({self.name})"

    @property
    def source_kind(self) -> str:
        return next((k for k in _SOURCE_KINDS if k in self.source), "unknown")

    @property
    def source_value(self) -> str:
        return str(self.source.get(self.source_kind, ""))

    def table(self, key: str) -> Mapping[str, list[Mapping[str, Any]]]:
        """``optional-dependencies`` or ``dev-dependencies``: name -> edges, names normalized."""
        value = self.raw.get(key) or {}
        return {canonicalize_name(k): list(v) for k, v in value.items()}

    @property
    def extras(self) -> set[str]:
        """Every extra the package declares; ``provides-extras`` also lists empty extras."""
        declared = self.raw.get("metadata", {}).get("provides-extras", [])
        return set(self.table("optional-dependencies")) | {canonicalize_name(e) for e in declared}

    @property
    def groups(self) -> set[str]:
        """Every dependency group (PEP 735) the package declares, empty ones included."""
        declared = self.raw.get("metadata", {}).get("requires-dev", {})
        return set(self.table("dev-dependencies")) | {canonicalize_name(g) for g in declared}


@frozen(kw_only=True)
class _Lock:
    path: Path
    packages: tuple[_Package, ...]
    by_name: Mapping[str, tuple[int, ...]]
    data: Mapping[str, Any]

    @property
    def has_conflicts(self) -> bool:
        return bool(self.data.get("conflicts"))

    def error(
        self, message: str, where: str, *, hint: str | None = None, details: Sequence[str] = ()
    ) -> EnvmatError:
        return EnvmatError(
            message, context=[f"in {self.path}: {where}"], hint=hint, details=details
        )


@frozen(kw_only=True)
class _Project:
    """What ``uv sync`` reads from ``pyproject.toml`` beside the lock (it is not in uv.lock)."""

    name: str | None = None
    #: ``tool.uv.default-groups``: "all" or the group names; uv's default is ``["dev"]``
    default_groups: str | tuple[str, ...] = ("dev",)
    #: ``[dependency-groups]`` names, for validating ``--group``
    groups: tuple[str, ...] = ()


@frozen(kw_only=True)
class _Request:
    """The selection resolved against the roots (uv's ``DependencyGroupsWithDefaults``)."""

    #: False under ``--only-group``: the roots and their own dependencies are left out
    prod: bool
    all_groups: bool
    include_groups: frozenset[str]
    exclude_groups: frozenset[str]
    all_extras: bool
    extras: frozenset[str]

    def includes_group(self, group: str) -> bool:
        # uv: "exclude always trumps include" (dependency_groups.rs, DependencyGroupsInner::contains)
        return group not in self.exclude_groups and (
            self.all_groups or group in self.include_groups
        )

    def root_extras(self, root: _Package) -> list[str]:
        declared = sorted(root.table("optional-dependencies"))
        return declared if self.all_extras else [e for e in declared if e in self.extras]


# --- entry point ------------------------------------------------------------------------------


def select_uvlock(
    lock_path: Path, data: Mapping[str, Any], target: Target, selection: Selection
) -> list[LockedDist]:
    """The distributions ``uv sync --frozen`` would install from ``lock_path`` for ``target``."""
    check_version(lock_path, data)
    check_python(lock_path, data, target)
    check_supported_markers(lock_path, data, target)
    lock = _parse(lock_path, data)
    project = read_project(lock_path.parent / "pyproject.toml")
    roots = find_roots(lock, project)
    request = resolve_request(lock, roots, project, selection)
    reached = walk(lock, roots, request, dict(target.environment))
    root_indexes = {r.index for r in roots}
    dists: list[LockedDist] = []
    errors: list[EnvmatError] = []
    for index in sorted(reached):
        pkg = lock.packages[index]
        try:
            dist = to_dist(lock, pkg, target, is_root=index in root_indexes, selection=selection)
        except EnvmatError as e:
            errors.append(e)
            continue
        if dist is not None:
            dists.append(dist)
    _raise_collected(lock, errors)
    return dists


def _raise_collected(lock: _Lock, errors: list[EnvmatError]) -> None:
    """One failure is raised as it is; several are reported together (DESIGN §6)."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise EnvmatError(
            f"{len(errors)} packages in {lock.path.name} cannot be installed by envmat",
            context=[f"in {lock.path}"],
            details=[f"{e.message} ({'; '.join(e.context)})" for e in errors],
            hint=errors[0].hint,
        )


# --- step 1: the lock as a whole (installable.rs callers: version, requires-python, environments)


def check_version(lock_path: Path, data: Mapping[str, Any]) -> None:
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise EnvmatError(
            f"{lock_path.name} has no integer `version`; it does not look like a uv.lock",
            context=[f"in {lock_path}: version"],
            hint="run `uv lock` again to rewrite the lock",
        )
    if version > SUPPORTED_VERSION:
        raise EnvmatError(
            f"{lock_path.name} uses uv.lock version {version}; envmat reads version {SUPPORTED_VERSION}",
            context=[f"in {lock_path}: version = {version}"],
            hint="upgrade envmat, or relock with a uv release that writes version 1",
        )


def check_python(lock_path: Path, data: Mapping[str, Any], target: Target) -> None:
    raw = data.get("requires-python")
    if not raw:
        return
    try:
        spec = SpecifierSet(raw)
    except InvalidSpecifier:
        raise EnvmatError(
            f"{lock_path.name} has an invalid requires-python {raw!r}",
            context=[f"in {lock_path}: requires-python"],
            hint="run `uv lock` again",
        ) from None
    full = target.environment.get("python_full_version") or ".".join(map(str, target.version))
    # A "+" local suffix (3.12.1+ on some builds) is not part of the release number.
    if not spec.contains(full.rstrip("+"), prereleases=True):
        raise EnvmatError(
            f"{target.describe()} is outside the Python range {raw} the lock allows (Python {full})",
            context=[f"in {lock_path}: requires-python"],
            hint="use --python with a version in that range, or change requires-python and run `uv lock`",
        )


def check_supported_markers(lock_path: Path, data: Mapping[str, Any], target: Target) -> None:
    """``supported-markers`` (from ``tool.uv.environments``): at least one must hold."""
    markers = data.get("supported-markers")
    if not markers:
        return
    env = dict(target.environment)
    if not any(
        _evaluate(m, env, frozenset(), f"in {lock_path}: supported-markers") for m in markers
    ):
        raise EnvmatError(
            f"{target.describe()} is not one of the environments {lock_path.name} supports",
            context=[f"in {lock_path}: supported-markers"],
            details=list(markers),
            hint="use --python for an interpreter the lock supports, or add this platform to "
            "tool.uv.environments and run `uv lock`",
        )


def _parse(lock_path: Path, data: Mapping[str, Any]) -> _Lock:
    packages: list[_Package] = []
    by_name: dict[str, list[int]] = {}
    for i, raw in enumerate(data.get("package") or []):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
            raise EnvmatError(
                f"{lock_path.name}: a [[package]] entry has no name",
                context=[f"in {lock_path}: package[{i}]"],
                hint="run `uv lock` again",
            )
        name = canonicalize_name(raw["name"])
        source = raw.get("source") or {}
        if not isinstance(source, Mapping):
            source = {}
        version = raw.get("version")
        packages.append(
            _Package(
                index=i,
                name=name,
                version=str(version) if version is not None else None,
                source=source,
                raw=raw,
            )
        )
        by_name.setdefault(name, []).append(i)
    return _Lock(
        path=lock_path,
        packages=tuple(packages),
        by_name={k: tuple(v) for k, v in by_name.items()},
        data=data,
    )


# --- step 2: roots and the selection -------------------------------------------------------------


def read_project(pyproject: Path) -> _Project:
    """The project name, ``tool.uv.default-groups`` and ``[dependency-groups]`` beside the lock."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _Project()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise EnvmatError(
            f"cannot read {pyproject.name} beside the lock: {e}",
            context=[f"in {pyproject}"],
            hint="uv sync reads the project's default groups from it; fix the file",
        ) from None
    name = doc.get("project", {}).get("name")
    uv = doc.get("tool", {}).get("uv", {})
    defaults: str | tuple[str, ...] = ("dev",)
    raw = uv.get("default-groups")
    if raw == "all":
        defaults = "all"
    elif isinstance(raw, list):
        defaults = tuple(canonicalize_name(g) for g in raw)
    groups: tuple[str, ...] = tuple(canonicalize_name(g) for g in doc.get("dependency-groups", {}))
    if uv.get("dev-dependencies") is not None:
        groups += ("dev",)  # the legacy tool.uv.dev-dependencies table is the `dev` group
    return _Project(
        name=canonicalize_name(name) if isinstance(name, str) else None,
        default_groups=defaults,
        groups=groups,
    )


def find_roots(lock: _Lock, project: _Project) -> list[_Package]:
    """The project beside the lock, else the workspace members (uv's ``InstallTarget``).

    ``uv sync`` in a workspace whose root is a project syncs that project only; in a non-project
    workspace root (no ``[project]``) it syncs every member of ``[manifest] members``.
    """
    name = project.name
    if name is None:
        local = [
            p
            for p in lock.packages
            if p.source_kind in ("editable", "virtual", "directory") and p.source_value == "."
        ]
        if len(local) == 1:
            name = local[0].name
    if name is not None:
        return [_find_root(lock, name)]
    members = lock.data.get("manifest", {}).get("members") or []
    if members:
        return [_find_root(lock, canonicalize_name(m)) for m in members]
    if lock.data.get("manifest", {}).get("dependency-groups") or lock.data.get("manifest", {}).get(
        "requirements"
    ):
        return []  # a non-project root with only dependency groups or script requirements
    raise lock.error(
        f"cannot tell which project {lock.path.name} belongs to",
        "package[*].source",
        hint="keep the lock next to its pyproject.toml, as `uv lock` writes it",
    )


def _find_root(lock: _Lock, name: str) -> _Package:
    found = lock.by_name.get(name, ())
    if len(found) != 1:
        what = "has no package" if not found else "has several packages"
        raise lock.error(
            f"{lock.path.name} {what} named {name!r}, the project to sync",
            "package",
            hint="the lock is out of date with pyproject.toml; run `uv lock`",
        )
    return lock.packages[found[0]]


def resolve_request(
    lock: _Lock, roots: Sequence[_Package], project: _Project, selection: Selection
) -> _Request:
    """uv's extras and groups flags (``dependency_groups.rs`` ``from_history``) for these roots."""
    extras = frozenset(canonicalize_name(e) for e in selection.extras)
    groups: list[str] = [canonicalize_name(g) for g in selection.groups]
    only: list[str] = [canonicalize_name(g) for g in selection.only_groups]
    _check_known(lock, "extra", extras, set().union(*(r.extras for r in roots)))
    manifest_groups = {
        canonicalize_name(g) for g in lock.data.get("manifest", {}).get("dependency-groups") or {}
    }
    known_groups = set().union(*(r.groups for r in roots)) | manifest_groups | set(project.groups)
    _check_known(lock, "dependency group", set(groups) | set(only), known_groups)
    # `--only-group` implies `--no-default-groups` and leaves out the project itself.
    use_defaults = not selection.no_default_groups and not only
    include: set[str] = set(groups) | set(only)
    all_groups = selection.all_groups
    if use_defaults:
        if project.default_groups == "all":
            all_groups = True
        else:
            include |= set(project.default_groups)
    return _Request(
        prod=not only,
        all_groups=all_groups,
        include_groups=frozenset(include),
        exclude_groups=frozenset({"dev"} if selection.no_dev else ()),
        all_extras=selection.all_extras,
        extras=extras,
    )


def _check_known(lock: _Lock, kind: str, asked: Iterable[str], known: set[str]) -> None:
    unknown = sorted(set(asked) - known)
    if unknown:
        have = ", ".join(sorted(known)) or "none"
        raise EnvmatError(
            f"the project has no {kind} {', '.join(map(repr, unknown))}",
            context=[f"in {lock.path}: the project declares {kind}s: {have}"],
            hint=f"choose one of the {kind}s the project declares",
        )


# --- step 3: the walk -------------------------------------------------------------------------


def encode_extra(package: str, extra: str) -> str:
    """uv's conflict-marker encoding (``universal_marker.rs``): ``extra-<len>-<pkg>-<extra>``."""
    return f"extra-{len(package)}-{package}-{extra}"


def encode_group(package: str, group: str) -> str:
    return f"group-{len(package)}-{package}-{group}"


def encode_project(package: str) -> str:
    return f"project-{len(package)}-{package}"


# uv writes conflict markers as `extra == '<encoded>'`; a PEP 508 `extra` holds one name, so we
# evaluate them as the PEP 751 set form `'<encoded>' in extras` over everything activated.
_EXTRA_LEFT = re.compile(r"""\bextra\s*(==|!=)\s*(['"])([^'"]*)\2""")
_EXTRA_RIGHT = re.compile(r"""(['"])([^'"]*)\1\s*(==|!=)\s*extra\b""")


@functools.lru_cache(maxsize=4096)
def _marker(text: str) -> Marker:
    def left(m: re.Match[str]) -> str:
        return f"'{m.group(3)}' {'in' if m.group(1) == '==' else 'not in'} extras"

    def right(m: re.Match[str]) -> str:
        return f"'{m.group(2)}' {'in' if m.group(3) == '==' else 'not in'} extras"

    return Marker(_EXTRA_RIGHT.sub(right, _EXTRA_LEFT.sub(left, text)))


def _evaluate(text: str, env: Mapping[str, str], activated: frozenset[str], where: str) -> bool:
    try:
        return _evaluate_cached(text, frozenset(env.items()), activated)
    except InvalidMarker as e:
        raise EnvmatError(
            f"invalid marker {text!r}: {e}", context=[where], hint="run `uv lock` again"
        ) from None


# A lock repeats a few marker texts over many edges; packaging's evaluate rebuilds the default
# environment on every call, so remember answers (the environment is part of the key).
@functools.lru_cache(maxsize=8192)
def _evaluate_cached(text: str, env: frozenset[tuple[str, str]], activated: frozenset[str]) -> bool:
    full: dict[str, str | frozenset[str]] = {
        **dict(env),
        "extras": activated,
        "dependency_groups": frozenset(),
    }
    return _marker(text).evaluate(full, context="lock_file")


def _edge_marker_holds(
    lock: _Lock,
    dep: Mapping[str, Any],
    env: Mapping[str, str],
    activated: frozenset[str],
    where: str,
) -> bool:
    text = dep.get("marker")
    return True if not text else _evaluate(text, env, activated, f"in {lock.path}: {where}")


def resolve_edge(lock: _Lock, dep: Mapping[str, Any], where: str) -> _Package:
    """The package an edge names; ``version``/``source`` are written only when the name is ambiguous."""
    name = canonicalize_name(str(dep.get("name", "")))
    candidates = [lock.packages[i] for i in lock.by_name.get(name, ())]
    if "version" in dep:
        candidates = [p for p in candidates if p.version == str(dep["version"])]
    if "source" in dep:
        candidates = [p for p in candidates if dict(p.source) == dict(dep["source"])]
    if len(candidates) != 1:
        what = "no package" if not candidates else f"{len(candidates)} packages"
        raise lock.error(
            f"the dependency {name} {dep.get('version', '')}".rstrip()
            + f" matches {what} in {lock.path.name}",
            where,
            hint="the lock is inconsistent; run `uv lock` again",
        )
    return candidates[0]


def _edges(pkg: _Package, extra: str | None) -> list[tuple[str, Mapping[str, Any]]]:
    """The edges a queued node contributes, with their key paths."""
    if extra is None:
        return [
            (f"{pkg.where}.dependencies[{i}]", d)
            for i, d in enumerate(pkg.raw.get("dependencies") or [])
        ]
    deps = pkg.table("optional-dependencies").get(extra, [])
    return [(f"{pkg.where}.optional-dependencies.{extra}[{i}]", d) for i, d in enumerate(deps)]


def _edge_extras(dep: Mapping[str, Any]) -> list[str]:
    """``extra = [..]`` on an edge pulls in the target's ``optional-dependencies[extra]``."""
    return [canonicalize_name(e) for e in dep.get("extra") or []]


def walk(
    lock: _Lock, roots: Sequence[_Package], request: _Request, env: Mapping[str, str]
) -> set[int]:
    """The indexes of the packages to install, before their sources are looked at."""
    activated: set[str] = set()
    if lock.has_conflicts:
        activated |= _activated_by_roots(roots, request)
    install: set[int] = set()
    queue: deque[_Node] = deque()
    seen: set[_Node] = set()

    def push(pkg: _Package, extras: Iterable[str]) -> None:
        for node in [(pkg.index, None), *((pkg.index, e) for e in extras)]:
            if node not in seen:
                seen.add(node)
                queue.append(node)

    # The roots: under --only-group they stay out (uv's `non_installable_node`) unless a group
    # reaches them again below.
    if request.prod:
        for root in roots:
            install.add(root.index)
            push(root, request.root_extras(root))
    # The roots' dependency groups are followed in every mode.
    for root in roots:
        for group, deps in sorted(root.table("dev-dependencies").items()):
            if not request.includes_group(group):
                continue
            for i, dep in enumerate(deps):
                where = f"{root.where}.dev-dependencies.{group}[{i}]"
                child = resolve_edge(lock, dep, where)
                newly = {encode_extra(child.name, e) for e in _edge_extras(dep)}
                if not _edge_marker_holds(lock, dep, env, frozenset(activated | newly), where):
                    continue
                activated |= newly
                install.add(child.index)
                push(child, _edge_extras(dep))
    for child, extras in _manifest_roots(lock, request, env):
        install.add(child.index)
        activated |= {encode_extra(child.name, e) for e in extras}
        push(child, extras)

    if lock.has_conflicts:
        # uv walks twice when the lock has conflicts: the first pass only gathers the extras that
        # edges such as `foo[cpu]` activate, so that conflict markers on packages met early are
        # judged against the complete set in the second pass (installable.rs, "twice").
        activated |= _activated_by_walk(lock, deque(queue), set(seen), env, frozenset(activated))
        _check_conflicts(lock, activated)
    frozen_activated = frozenset(activated)
    while queue:
        index, extra = queue.popleft()
        for where, dep in _edges(lock.packages[index], extra):
            if not _edge_marker_holds(lock, dep, env, frozen_activated, where):
                continue
            child = resolve_edge(lock, dep, where)
            install.add(child.index)
            push(child, _edge_extras(dep))
    return install


def _activated_by_roots(roots: Sequence[_Package], request: _Request) -> set[str]:
    activated: set[str] = set()
    for root in roots:
        if request.prod:
            activated.add(encode_project(root.name))
            activated |= {encode_extra(root.name, e) for e in request.root_extras(root)}
        activated |= {encode_group(root.name, g) for g in root.groups if request.includes_group(g)}
    return activated


def _activated_by_walk(
    lock: _Lock,
    queue: deque[_Node],
    seen: set[_Node],
    env: Mapping[str, str],
    activated: frozenset[str],
) -> set[str]:
    gathered = set(activated)
    while queue:
        index, extra = queue.popleft()
        for where, dep in _edges(lock.packages[index], extra):
            child = resolve_edge(lock, dep, where)
            newly = {encode_extra(child.name, e) for e in _edge_extras(dep)}
            if not _edge_marker_holds(lock, dep, env, frozenset(gathered | newly), where):
                continue
            gathered |= newly
            for node in [(child.index, None), *((child.index, e) for e in _edge_extras(dep))]:
                if node not in seen:
                    seen.add(node)
                    queue.append(node)
    return gathered


def _check_conflicts(lock: _Lock, activated: set[str]) -> None:
    """``tool.uv.conflicts``: two items of one set may not be active together (uv errors too)."""
    for i, items in enumerate(lock.data.get("conflicts") or []):
        active = []
        for item in items:
            pkg = canonicalize_name(str(item.get("package", "")))
            if "extra" in item and encode_extra(pkg, canonicalize_name(item["extra"])) in activated:
                active.append(f"extra {item['extra']!r} of {pkg}")
            elif (
                "group" in item and encode_group(pkg, canonicalize_name(item["group"])) in activated
            ):
                active.append(f"group {item['group']!r} of {pkg}")
        if len(active) > 1:
            raise lock.error(
                f"the selection activates {' and '.join(active)}, which the project declares as conflicting",
                f"conflicts[{i}]",
                hint="choose only one of them (tool.uv.conflicts in pyproject.toml)",
            )


def _manifest_roots(
    lock: _Lock, request: _Request, env: Mapping[str, str]
) -> list[tuple[_Package, list[str]]]:
    """``[manifest] requirements`` and ``[manifest.dependency-groups]`` of a non-project root.

    uv picks the entry whose ``resolution-markers`` hold (``Lock::find_by_markers``).
    """
    manifest = lock.data.get("manifest") or {}
    wanted: list[tuple[str, Mapping[str, Any]]] = []
    if request.prod:
        wanted += [
            (f"manifest.requirements[{i}]", r)
            for i, r in enumerate(manifest.get("requirements") or [])
        ]
    for group, reqs in (manifest.get("dependency-groups") or {}).items():
        if request.includes_group(canonicalize_name(group)):
            wanted += [(f"manifest.dependency-groups.{group}[{i}]", r) for i, r in enumerate(reqs)]
    found: list[tuple[_Package, list[str]]] = []
    for where, req in wanted:
        if not _edge_marker_holds(lock, req, env, frozenset(), where):
            continue
        name = canonicalize_name(str(req.get("name", "")))
        extras = [str(canonicalize_name(e)) for e in req.get("extras") or []]
        found.append((_find_by_markers(lock, name, env, where), extras))
    return found


def _find_by_markers(lock: _Lock, name: str, env: Mapping[str, str], where: str) -> _Package:
    fits = [
        p
        for p in (lock.packages[i] for i in lock.by_name.get(name, ()))
        if not p.raw.get("resolution-markers")
        or any(
            _evaluate(m, env, frozenset(), f"in {lock.path}: {p.where}.resolution-markers")
            for m in p.raw["resolution-markers"]
        )
    ]
    if len(fits) != 1:
        raise lock.error(
            f"{lock.path.name} has {len(fits) or 'no'} packages named {name!r} for this target",
            where,
            hint="the lock is out of date with pyproject.toml; run `uv lock`",
        )
    return fits[0]


# --- step 4: a distribution for each package ----------------------------------------------------


def to_dist(
    lock: _Lock, pkg: _Package, target: Target, *, is_root: bool, selection: Selection
) -> LockedDist | None:
    """The file uv would install for ``pkg`` (``Package::to_dist``), or None when nothing is installed."""
    kind = pkg.source_kind
    if kind == "virtual":
        return None  # never built or installed; its dependencies were followed
    if kind in ("editable", "directory"):
        if is_root and selection.no_install_project:
            return None  # `uv sync --no-install-project`: the project's dependencies only
        what = "editable project" if kind == "editable" else "local directory"
        hint = _SOURCE_TREE_HINT
        if is_root:
            hint = (
                "pass --no-install-project to install only its dependencies (as uv sync does), or "
                + hint
            )
        raise _source_tree_error(lock, pkg, what, pkg.source_value, hint)
    if kind == "git":
        raise _source_tree_error(lock, pkg, "git checkout", pkg.source_value, _SOURCE_TREE_HINT)
    if kind not in ("registry", "url", "path"):
        raise lock.error(
            f"{pkg.name} has a source envmat does not know: {dict(pkg.source)}",
            f"{pkg.where}.source",
            hint="upgrade envmat, or run `uv lock` with the uv release that wrote this lock",
        )
    wheels = list(pkg.raw.get("wheels") or [])
    if not wheels:
        if kind != "registry":
            # A direct url or path source without wheels is an archive of a source tree.
            raise _source_tree_error(
                lock, pkg, "source archive", pkg.source_value, _SOURCE_TREE_HINT
            )
        if "sdist" in pkg.raw:
            raise _sdist_only_error(lock, pkg, target, [])
        raise _no_wheel_error(lock, pkg, target, [])
    best = best_wheel(lock, pkg, target.tags)
    if best is None:
        names = [_wheel_filename(lock, pkg, i, w) for i, w in enumerate(wheels)]
        if "sdist" in pkg.raw:
            raise _sdist_only_error(lock, pkg, target, names)
        raise _no_wheel_error(lock, pkg, target, names)
    return _wheel_dist(lock, pkg, best, wheels[best])


def best_wheel(lock: _Lock, pkg: _Package, tags: Sequence[str]) -> int | None:
    """The wheel whose best tag ranks highest for the target; a higher build tag breaks ties.

    As uv's ``Package::find_best_wheel`` (priority, then build tag; the first wins a full tie).
    """
    rank = _tag_rank(tuple(tags))
    best: tuple[tuple[int, Any], int] | None = None
    for i, wheel in enumerate(pkg.raw.get("wheels") or []):
        filename = _wheel_filename(lock, pkg, i, wheel)
        try:
            _, _, build, wheel_tags = parse_wheel_filename(filename)
        except InvalidWheelFilename as e:
            raise lock.error(
                f"{pkg.name}: invalid wheel file name {filename!r} ({e})",
                f"{pkg.where}.wheels[{i}]",
            ) from None
        positions = [rank[str(t)] for t in wheel_tags if str(t) in rank]
        if not positions:
            continue
        priority = (-min(positions), build)
        if best is None or priority > best[0]:
            best = (priority, i)
    return best[1] if best else None


@functools.lru_cache(maxsize=16)
def _tag_rank(tags: tuple[str, ...]) -> Mapping[str, int]:
    rank: dict[str, int] = {}
    for i, tag in enumerate(tags):
        rank.setdefault(tag, i)
    return rank


def _wheel_filename(lock: _Lock, pkg: _Package, i: int, wheel: Mapping[str, Any]) -> str:
    """``filename`` (direct url/path wheels), else the last segment of ``url`` or ``path``."""
    if wheel.get("filename"):
        return str(wheel["filename"])
    location = wheel.get("url") or wheel.get("path")
    if not location:
        raise lock.error(
            f"{pkg.name}: a wheel has no url, path or filename",
            f"{pkg.where}.wheels[{i}]",
            hint="run `uv lock` again",
        )
    key = "url" if wheel.get("url") else "path"
    parts = _split_url(lock, str(location), f"{pkg.where}.wheels[{i}].{key}")
    return unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])


def _split_url(lock: _Lock, url: str, where: str) -> SplitResult:
    """``urlsplit(url)``, or the lock's error naming the key when it is not a URL at all."""
    problem = url_problem(url)
    if problem:
        raise lock.error(
            f"{url!r} is not a valid URL ({problem})",
            where,
            hint="run `uv lock` again, or fix the URL",
        )
    return urlsplit(url)


def parse_hash(lock: _Lock, raw: Any, where: str) -> dict[str, str]:
    """uv writes ``hash = "sha256:<hex>"`` (pylock uses a table); returns ``{alg: hex}``."""
    if raw is None:
        return {}
    alg, sep, digest = str(raw).partition(":")
    if not sep or not alg or not re.fullmatch(r"[0-9a-fA-F]+", digest):
        raise lock.error(
            f"invalid hash {raw!r}",
            f"{where}.hash",
            hint="expected 'sha256:<hex>'; run `uv lock` again",
        )
    return {alg.lower(): digest.lower()}


def _wheel_dist(lock: _Lock, pkg: _Package, i: int, wheel: Mapping[str, Any]) -> LockedDist:
    where = f"{pkg.where}.wheels[{i}]"
    filename = _wheel_filename(lock, pkg, i, wheel)
    hashes = parse_hash(lock, wheel.get("hash"), where)
    size = wheel.get("size")
    size = size if isinstance(size, int) and not isinstance(size, bool) else None
    base = lock.path.parent.resolve()
    kind = pkg.source_kind
    if kind == "registry":
        url: str | None = wheel.get("url")
        path: str | None = None
        if wheel.get("path"):
            # A local registry (find-links directory): wheel paths are relative to the registry
            # directory, which is relative to the lock (``to_registry_wheel``).
            path = os.path.normpath(base / pkg.source_value / str(wheel["path"]))
        elif url and url.startswith("file://"):
            path = unquote(urlsplit(url).path)
        ref = FileRef(filename=filename, url=url, path=path, size=size, hashes=hashes)
        return LockedDist(
            name=pkg.name, version=pkg.version, kind="wheel", wheel=ref, key_path=pkg.key_path
        )
    if kind == "url":
        _split_url(lock, pkg.source_value, f"{pkg.where}.source")
        ref = FileRef(filename=filename, url=pkg.source_value, size=size, hashes=hashes)
        direct = _direct_url(pkg.source_value, hashes)
    else:
        # `source = { path = ... }` is the wheel itself, relative to the lock's directory.
        path = os.path.normpath(base / pkg.source_value)
        ref = FileRef(filename=filename, path=path, size=size, hashes=hashes)
        direct = _direct_url(Path(path).as_uri(), hashes)
    return LockedDist(
        name=pkg.name,
        version=pkg.version,
        kind="archive",
        wheel=ref,
        key_path=pkg.key_path,
        direct_url=direct,
        source_desc=f"{kind} {pkg.source_value}",
    )


def _direct_url(url: str, hashes: Mapping[str, str]) -> dict[str, Any]:
    """PEP 610 ``direct_url.json`` for an archive: the URL and its hashes."""
    archive_info: dict[str, Any] = {"hashes": dict(hashes)}
    if "sha256" in hashes:
        archive_info["hash"] = f"sha256={hashes['sha256']}"  # the deprecated single-hash key
    return {"url": url, "archive_info": archive_info}


# --- errors -------------------------------------------------------------------------------------


def _source_tree_error(
    lock: _Lock, pkg: _Package, what: str, location: str, hint: str
) -> EnvmatError:
    return lock.error(
        f"{pkg.name} is locked as a {what} ({location}); envmat does not build source trees yet",
        pkg.key_path,
        hint=hint,
    )


def _shown(names: Sequence[str]) -> list[str]:
    return list(names[:8]) + ([f"... and {len(names) - 8} more"] if len(names) > 8 else [])


def _sdist_only_error(
    lock: _Lock, pkg: _Package, target: Target, wheels: Sequence[str]
) -> EnvmatError:
    message = (
        f"{pkg.name} {pkg.version or ''}".rstrip()
        + f" only has a source distribution for {target.describe()}"
    )
    message += "; envmat does not build sdists yet"
    context = [f"in {lock.path}: {pkg.key_path}"]
    context.append("the lock has these wheels:" if wheels else "the lock has no wheels for it")
    return EnvmatError(
        message,
        context=context,
        details=_shown(wheels),
        hint="use --python for an interpreter one of its wheels fits, or install this package with pip or uv",
    )


def _no_wheel_error(
    lock: _Lock, pkg: _Package, target: Target, wheels: Sequence[str]
) -> EnvmatError:
    return EnvmatError(
        f"no wheel in the lock fits {target.describe()} for {pkg.name} {pkg.version or ''}".rstrip(),
        context=[f"in {lock.path}: {pkg.key_path}", "the lock has these wheels:"],
        details=_shown(wheels),
        hint="use --python for an interpreter one of these wheels fits",
    )
