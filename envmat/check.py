"""``envmat check``: every installed file against its RECORD, unowned files, and the lock.

Hashing is skipped for files whose (size, mtime, inode) match the last check's record of them
(``.envmat/verified.json``), as git's index does: editing a file changes its mtime.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from attrs import frozen

from .installed import STATE_DIR, InstalledState
from .plan import DistChange

IssueKind = Literal[
    "missing", "modified", "unowned", "not-installed", "extra", "wrong-version", "recovered"
]
VERIFIED = f"{STATE_DIR}/verified.json"


@frozen(kw_only=True)
class CheckIssue:
    kind: IssueKind
    dist: str | None
    path: str | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "dist": self.dist, "path": self.path, "detail": self.detail}

    def line(self) -> str:
        where = " ".join(x for x in (self.dist, self.path) if x)
        return f"{self.kind}: {where}: {self.detail}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify_files(prefix: Path, installed: InstalledState, jobs: int = 8) -> list[CheckIssue]:
    """Missing and modified files of every installed distribution."""
    try:
        seen: dict[str, list[int]] = json.loads((prefix / VERIFIED).read_bytes())
    except (OSError, ValueError):
        seen = {}
    todo: list[tuple[str, str, str, int | None]] = []
    issues: list[CheckIssue] = []
    now_seen: dict[str, list[int]] = {}
    for dist in installed.dists.values():
        for f in dist.files:
            if f.sha256 is None:
                continue
            try:
                st = os.stat(prefix / f.path)
            except FileNotFoundError:
                issues.append(
                    CheckIssue(
                        kind="missing",
                        dist=dist.name,
                        path=f.path,
                        detail="listed in RECORD but absent",
                    )
                )
                continue
            if f.size is not None and st.st_size != f.size:
                issues.append(
                    CheckIssue(
                        kind="modified",
                        dist=dist.name,
                        path=f.path,
                        detail=f"size {st.st_size}, RECORD says {f.size}",
                    )
                )
                continue
            stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
            if seen.get(f.path) == [*stamp, int(f.sha256[:12], 16)]:
                now_seen[f.path] = seen[f.path]
                continue
            todo.append((dist.name, f.path, f.sha256, None))
            now_seen[f.path] = [*stamp, int(f.sha256[:12], 16)]

    def hash_one(item: tuple[str, str, str, int | None]) -> CheckIssue | None:
        name, path, expected, _ = item
        try:
            actual = _sha256(prefix / path)
        except OSError as e:
            return CheckIssue(
                kind="missing", dist=name, path=path, detail=f"unreadable ({e.strerror})"
            )
        if actual != expected:
            return CheckIssue(
                kind="modified", dist=name, path=path, detail="contents differ from RECORD"
            )
        return None

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for issue in pool.map(hash_one, todo, chunksize=32):
            if issue is not None:
                issues.append(issue)
                now_seen.pop(issue.path or "", None)
    try:
        (prefix / STATE_DIR).mkdir(exist_ok=True)
        tmp = prefix / f"{VERIFIED}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(now_seen))
        os.replace(tmp, prefix / VERIFIED)
    except OSError:
        pass  # a read-only venv can still be checked
    return issues


def unowned_files(
    prefix: Path, installed: InstalledState, site_dirs: Iterable[str]
) -> list[CheckIssue]:
    """Files in site-packages that no RECORD lists (bytecode caches aside)."""
    owned = {f.path for d in installed.dists.values() for f in d.files}
    issues = []
    for site in dict.fromkeys(site_dirs):
        root = prefix / site
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            rel_dir = Path(dirpath).relative_to(prefix).as_posix()
            for name in filenames:
                rel = f"{rel_dir}/{name}"
                if rel not in owned and not name.startswith("_virtualenv"):
                    issues.append(
                        CheckIssue(
                            kind="unowned",
                            dist=None,
                            path=rel,
                            detail="no installed distribution's RECORD lists it",
                        )
                    )
    return issues


def lock_issues(changes: Sequence[DistChange]) -> list[CheckIssue]:
    """What a sync would change, said as problems of the venv against the lock."""
    out = []
    for c in changes:
        if c.action == "keep":
            continue
        kind, detail = {
            "add": ("not-installed", f"the lock has {c.name}=={c.version}"),
            "remove": ("extra", f"{c.name}=={c.old_version} is not in the lock"),
            "replace": (
                "wrong-version",
                f"installed {c.old_version}, the lock has {c.version} ({c.reason})",
            ),
        }[c.action]
        out.append(CheckIssue(kind=kind, dist=c.name, path=None, detail=detail))  # type: ignore[arg-type]
    return out
