"""What the venv holds now: its distributions (from ``*.dist-info``), their RECORDs, envmat's state."""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from .logs import Logger
from .record import record_rows
from .target import Target

log = Logger(__name__)

STATE_DIR = ".envmat"
STATE_FILE = f"{STATE_DIR}/state.json"


@frozen(kw_only=True)
class InstalledFile:
    path: str  # venv-relative POSIX
    sha256: str | None
    size: int | None


@frozen(kw_only=True)
class InstalledDist:
    name: str  # normalized
    version: str
    dist_info: str  # venv-relative
    installer: str
    files: tuple[InstalledFile, ...]
    #: the locked wheel's cache key when envmat installed it (from the state file), else None
    wheel_key: str | None = None
    #: RECORD paths that point outside the venv; never touched
    outside: tuple[str, ...] = ()


@frozen(kw_only=True)
class InstalledState:
    dists: Mapping[str, InstalledDist]
    state: Mapping[str, Any]


def _metadata_name_version(path: Path) -> tuple[str, str] | None:
    name = version = None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key == "Name":
                    name = value.strip()
                elif key == "Version":
                    version = value.strip()
    except OSError:
        return None
    return (name, version) if name and version else None


def read_state(prefix: Path) -> dict[str, Any]:
    try:
        data = json.loads((prefix / STATE_FILE).read_bytes())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def scan(prefix: Path, target: Target) -> InstalledState:
    """One ``scandir`` per site-packages directory; RECORD read for each distribution."""
    state = read_state(prefix)
    state_dists: Mapping[str, Any] = state.get("dists", {})
    dists: dict[str, InstalledDist] = {}
    site_dirs = dict.fromkeys([target.rel("purelib"), target.rel("platlib")])
    for site in site_dirs:
        try:
            entries = list(os.scandir(prefix / site))
        except FileNotFoundError:
            continue
        for entry in entries:
            if not entry.name.endswith(".dist-info") or not entry.is_dir():
                continue
            dist = _read_dist(prefix, site, entry.name, state_dists)
            if dist is not None:
                dists[dist.name] = dist
    return InstalledState(dists=dists, state=state)


def normalize_name(name: str) -> str:
    """A distribution name as PEP 503 normalizes it: ``re.sub(r"[-_.]+", "-", name).lower()``,
    what ``packaging.utils.canonicalize_name`` returns (a property test holds them equal). Not
    imported from there: packaging.utils imports packaging.tags, logging and subprocess (~20 ms
    that a sync into an existing venv otherwise never needs)."""
    value = name.lower().replace("_", "-").replace(".", "-")
    while "--" in value:
        value = value.replace("--", "-")
    return value


def record_path_in_venv(site: str, path: str) -> str | None:
    """A RECORD path (relative to ``site``, PEP 376) as a normal venv-relative path; None when
    it is absolute. A row that is already normal (nearly all) is joined without ``normpath``."""
    if not (path.startswith("/") or "//" in path or "/." in "/" + path or path.endswith("/")):
        return f"{site}/{path}" if site else path
    return None if posixpath.isabs(path) else posixpath.normpath(posixpath.join(site, path))


def _read_dist(
    prefix: Path, site: str, dirname: str, state_dists: Mapping[str, Any]
) -> InstalledDist | None:
    info = prefix / site / dirname
    nv = _metadata_name_version(info / "METADATA")
    if nv is None:
        log.warning("ignoring %s: no Name and Version in METADATA", info)
        return None
    name = normalize_name(nv[0])
    files: list[InstalledFile] = []
    outside: list[str] = []
    try:
        record = record_rows((info / "RECORD").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        log.warning("%s has no readable RECORD (%s); only its dist-info can be removed", info, e)
        record = []
    for path, _, size, sha256 in record:
        rel = record_path_in_venv(site, path)
        if rel is None or rel.startswith("../") or rel == "..":
            # never touch a path outside the venv, whatever a RECORD says (DESIGN.md §4)
            outside.append(path)
            continue
        files.append(InstalledFile(path=rel, sha256=sha256, size=size))
    try:
        installer = (info / "INSTALLER").read_text(encoding="utf-8").strip()
    except OSError:
        installer = ""
    dist_info = posixpath.join(site, dirname)
    if not any(f.path == f"{dist_info}/RECORD" for f in files):
        # a dist-info without a RECORD (or whose RECORD does not list itself) still goes as a whole
        files += [
            InstalledFile(path=f"{dist_info}/{p.name}", sha256=None, size=None)
            for p in info.iterdir()
            if p.is_file()
        ]
    st = state_dists.get(name)
    wheel_key = (
        st.get("wheel") if isinstance(st, dict) and st.get("dist_info") == dist_info else None
    )
    return InstalledDist(
        name=name,
        version=nv[1],
        dist_info=dist_info,
        installer=installer,
        files=tuple(files),
        wheel_key=wheel_key,
        outside=tuple(outside),
    )
