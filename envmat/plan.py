"""The diff engine: lock selection + installed state -> per-distribution changes -> file operations.

Pure: no filesystem access. ``plan_dists`` needs only the lock and the scan (so ``envmat plan``
and a no-op sync never touch the cache); ``plan_files`` adds the manifest of what changes.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

from attrs import evolve, frozen

from .cache import cache_key
from .installed import STATE_FILE, InstalledState
from .lock.model import LockedDist
from .manifest import Manifest, TargetFile

Action = Literal["add", "replace", "remove", "keep"]


@frozen(kw_only=True)
class DistChange:
    action: Action
    name: str
    version: str | None
    old_version: str | None = None
    wheel: str | None = None
    download_size: int | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "name": self.name,
            "version": self.version,
            "old_version": self.old_version,
            "wheel": self.wheel,
            "download_size": self.download_size,
            "reason": self.reason,
        }


@frozen(kw_only=True)
class FilePlan:
    #: files to stage and rename into place; dist-info RECORDs and the state file come last
    writes: tuple[TargetFile, ...]
    removes: tuple[str, ...]
    #: modules whose ``__pycache__`` entries are now stale (removed or rewritten ``.py`` files)
    stale_modules: tuple[str, ...]
    #: files that stay because their bytes did not change (minimal change, DESIGN.md §4)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not self.writes and not self.removes


def same_version(a: str | None, b: str | None) -> bool:
    if a is None or b is None or a == b:
        return a == b
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def plan_dists(
    locked: Sequence[LockedDist],
    installed: InstalledState,
    *,
    inexact: bool = False,
    reinstall: Collection[str] = (),
    cached: Collection[str] = (),
) -> list[DistChange]:
    """keep / add / replace per locked dist, remove per installed dist the lock does not select.

    ``cached`` holds the cache keys already in the cache, so the plan can say what it downloads.
    """
    changes: list[DistChange] = []
    for d in sorted(locked, key=lambda d: d.name):
        assert d.wheel is not None
        key = cache_key(d.wheel)
        inst = installed.dists.get(d.name)
        if inst is None:
            action, reason = "add", "not installed"
        elif not same_version(inst.version, d.version):
            action, reason = "replace", f"version {inst.version} is installed"
        elif inst.wheel_key is not None and inst.wheel_key != key:
            action, reason = "replace", "the locked wheel changed"
        elif d.name in reinstall:
            action, reason = "replace", "installed files were modified"
        else:
            action, reason = "keep", "up to date"
        fetch = action != "keep" and key not in cached and not d.wheel.path
        changes.append(
            DistChange(
                action=action,  # type: ignore[arg-type]
                name=d.name,
                version=d.version,
                old_version=inst.version if inst is not None and action == "replace" else None,
                wheel=d.wheel.filename,
                download_size=d.wheel.size if fetch else None,
                reason=reason,
            )
        )
    if not inexact:
        wanted = {d.name for d in locked}
        for name in sorted(set(installed.dists) - wanted):
            inst = installed.dists[name]
            changes.append(
                DistChange(
                    action="remove",
                    name=name,
                    version=inst.version,
                    old_version=inst.version,
                    reason="not in the lock",
                )
            )
    forced = _conflicting_kept(changes, installed)
    if forced:
        by_name = {d.name: d for d in locked}
        for i, c in enumerate(changes):
            if c.name in forced:
                d = by_name[c.name]
                assert d.wheel is not None
                fetch = cache_key(d.wheel) not in cached and not d.wheel.path
                changes[i] = evolve(
                    c,
                    action="replace",
                    old_version=installed.dists[c.name].version,
                    download_size=d.wheel.size if fetch else None,
                    reason=forced[c.name],
                )
    return changes


def _conflicting_kept(changes: Sequence[DistChange], installed: InstalledState) -> dict[str, str]:
    """Kept distributions sharing a path, with other bytes, with one that is replaced or removed.

    The file holds the bytes of one owner only (a conflict, manifest.py); once the other owner
    changes, the kept one must be installed again so that the path ends as a fresh sync leaves it.
    """
    going: dict[str, tuple[str, str | None]] = {}
    kept: list[str] = []
    for c in changes:
        if c.action in ("replace", "remove"):
            going.update((f.path, (c.name, f.sha256)) for f in installed.dists[c.name].files)
        elif c.action == "keep":
            kept.append(c.name)
    out: dict[str, str] = {}
    if not going:
        return out
    for name in kept:
        for f in installed.dists[name].files:
            hit = going.get(f.path)
            if hit is not None and hit[1] != f.sha256:
                out[name] = f"shares {f.path} (other contents) with {hit[0]}, which changes"
                break
    return out


def _state_file(state: Mapping[str, Any]) -> TargetFile:
    data = json.dumps(state, sort_keys=True, indent=1).encode()
    return TargetFile(
        path=STATE_FILE,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        executable=False,
        owners=(),
        data=data,
    )


def plan_files(
    changes: Sequence[DistChange],
    manifest: Manifest,
    installed: InstalledState,
    extra_state: Mapping[str, Any] | None = None,
    *,
    untrusted: Collection[str] = (),
) -> FilePlan:
    """The file operations that turn the installed state into the target one."""
    by_action: dict[str, set[str]] = {
        "add": set(),
        "replace": set(),
        "remove": set(),
        "keep": set(),
    }
    for c in changes:
        by_action[c.action].add(c.name)
    kept_files = {
        f.path: f.sha256 for name in by_action["keep"] for f in installed.dists[name].files
    }
    # the first kept owner by name: it keeps a conflicting path, as in build_manifest
    kept_owner: dict[str, str] = {}
    for name in sorted(by_action["keep"]):
        for f in installed.dists[name].files:
            kept_owner.setdefault(f.path, name)
    old_files: dict[str, str | None] = {}
    for name in by_action["replace"] | by_action["remove"]:
        for f in installed.dists[name].files:
            # owners that disagree on a path's bytes (a conflict): which bytes are there is unknown
            same = old_files.get(f.path, f.sha256) == f.sha256
            old_files[f.path] = f.sha256 if same else None
    writes: list[TargetFile] = []
    unchanged = 0
    stale: set[str] = set()
    if not (untrusted or kept_files or kept_owner or old_files):
        # nothing installed stays or goes (a new venv): every file of the manifest is written
        writes = list(manifest.files.values())
    else:
        for path, tf in manifest.files.items():
            if path in untrusted:
                pass  # modified on disk (envmat check): rewrite whatever RECORD says
            elif kept_files.get(path) == tf.sha256 and tf.sha256:
                unchanged += 1  # already there, owned by a distribution that stays
                continue
            elif path in kept_owner and kept_owner[path] < min(tf.owners):
                unchanged += 1  # a conflict the kept distribution wins (first by name, manifest.py)
                continue
            elif old_files.get(path) == tf.sha256 and not path.endswith(".dist-info/RECORD"):
                unchanged += 1  # same bytes as the version being replaced: keep the file
                continue
            writes.append(tf)
            if path.endswith(".py") and path in old_files:
                stale.add(path)
    removes = sorted(p for p in old_files if p not in manifest.files and p not in kept_files)
    stale.update(p for p in removes if p.endswith(".py"))

    dists_state: dict[str, Any] = {}
    old_state = installed.state.get("dists", {})
    for name in by_action["keep"]:
        inst = installed.dists[name]
        prev = old_state.get(name) if isinstance(old_state, dict) else None
        dists_state[name] = (
            prev
            if isinstance(prev, dict)
            else {"version": inst.version, "wheel": None, "dist_info": inst.dist_info}
        )
    for dm in manifest.dists.values():
        dists_state[dm.name] = {
            "version": dm.version,
            "wheel": dm.wheel_key,
            "dist_info": dm.dist_info,
        }
    gone = by_action["replace"] | by_action["remove"]
    left = [d.dist_info for n, d in installed.dists.items() if n not in gone]
    new_state = {
        **(extra_state or {}),
        "version": 1,
        "dists": dict(sorted(dists_state.items())),
        # what the no-op fast path compares with one scandir (fastpath.py)
        "dist_infos": sorted(set(left) | {dm.dist_info for dm in manifest.dists.values()}),
    }
    # RECORDs last, the state file after them (DESIGN.md §4 step 4); otherwise in the
    # manifest's order
    records = [t for t in writes if t.path.endswith(".dist-info/RECORD")]
    if records:
        writes = [t for t in writes if not t.path.endswith(".dist-info/RECORD")] + records
    if writes or removes or new_state != installed.state:
        writes.append(_state_file(new_state))
    return FilePlan(
        writes=tuple(writes),
        removes=tuple(removes),
        stale_modules=tuple(sorted(stale)),
        unchanged=unchanged,
    )


def pycache_prefix(module: str) -> tuple[str, str]:
    """(``pkg/__pycache__``, ``mod.``): the directory and name prefix of a module's ``.pyc`` files."""
    head, tail = posixpath.split(module)
    return posixpath.join(head, "__pycache__"), tail[: -len(".py")] + "."
