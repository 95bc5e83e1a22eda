"""Remembered selections: a pylock.toml already read for the same target is not read again.

Selecting from a pylock is pure over (the lock's bytes, its directory, the target's marker
environment, tags and version, the user's extras/groups/strict, and the code that selects), so
its result (the chosen files and the lock's warnings) is kept in the cache under
``selections-v1/<lock digest>/<digest of the rest>.json``. A hit skips the TOML parser,
``packaging.pylock``, marker evaluation and the lint: at process start their imports alone cost
more than a whole warm install of a small lock. uv.lock selections also read pyproject.toml, so
they are not remembered. The memo is an optimisation: any unreadable entry is a miss, and a
cache that cannot be written is ignored.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import attrs

from ..cachedir import SELECTIONS, code_stamp, write_entry
from ..target import Target
from .model import LockedDist, Selection, dist_from_json, dist_to_json


def _path(cache_dir: Path, digest: str, lock: Path, target: Target, selection: Selection) -> Path:
    rest = json.dumps(
        [
            code_stamp(),
            str(lock.parent.resolve()),  # local paths in the lock are relative to it
            target.implementation,
            list(target.version),
            sorted(target.environment.items()),
            list(target.tags),
            attrs.asdict(selection),
        ],
        sort_keys=True,
    )
    return (
        cache_dir / SELECTIONS / digest / f"{hashlib.sha256(rest.encode()).hexdigest()[:40]}.json"
    )


def known(cache_dir: Path, digest: str) -> bool:
    """These lock bytes were read (and found valid) before, for some target."""
    return (cache_dir / SELECTIONS / digest).is_dir()


def recall(
    cache_dir: Path, digest: str, lock: Path, target: Target, selection: Selection
) -> tuple[list[LockedDist], list[str]] | None:
    try:
        data = json.loads(_path(cache_dir, digest, lock, target, selection).read_bytes())
        return [dist_from_json(d) for d in data["dists"]], list(data["warnings"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(
    cache_dir: Path,
    digest: str,
    lock: Path,
    target: Target,
    selection: Selection,
    dists: list[LockedDist],
    warnings: list[str],
) -> None:
    data = json.dumps({"dists": [dist_to_json(d) for d in dists], "warnings": warnings})
    write_entry(_path(cache_dir, digest, lock, target, selection), data)
