"""Where the cache is, and how small entries are written to it: its own module, so that the
stdlib-only fast paths can use it."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pathlib stays off the fast paths (it imports re, fnmatch, urllib)
    from pathlib import Path


def cache_root() -> str:
    env = os.environ.get("ENVMAT_CACHE_DIR")
    if env:
        return env
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "envmat")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "envmat")


def default_cache_dir() -> Path:
    from pathlib import Path

    return Path(cache_root())


def write_entry(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write a small cache entry atomically (rename into place); failing is fine: the cache
    is an optimisation, and a read-only cache directory must not fail a sync."""
    path = os.fspath(path)
    head, name = os.path.split(path)
    try:
        os.makedirs(head, exist_ok=True)
        tmp = os.path.join(head, f".{name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError:
        pass


#: remembered selections (lock/memo.py), one directory per lock content
SELECTIONS = "selections-v1"


def lock_digest(raw: bytes) -> str:
    import hashlib

    return hashlib.sha256(raw).hexdigest()[:40]


def many_new(root: str, lock: str, least: int) -> bool:
    """The lock lists ``least`` packages or more, and the cache has not seen these bytes: a
    sync from it probably downloads much. False when it cannot be read (the engine says why)."""
    try:
        with open(lock, "rb") as f:
            raw = f.read()
    except OSError:
        return False
    # a pylock's [[packages]], a uv.lock's [[package]]: counted, not parsed (no TOML yet)
    if raw.count(b"[[packages]]") + raw.count(b"[[package]]") < least:
        return False
    return not os.path.isdir(os.path.join(root, SELECTIONS, lock_digest(raw)))


_CODE = os.path.dirname(os.path.realpath(__file__))


def code_stamp() -> str:
    """The identity of envmat's code and of the packaging it uses (each module's size and
    mtime), so that an upgraded or edited envmat never reuses cache entries that other code
    derived (remembered selections, replay records)."""
    import packaging

    from . import __version__

    parts = [__version__, packaging.__version__]
    for base in (_CODE, os.path.join(_CODE, "lock")):
        for name in sorted(os.listdir(base)):
            if name.endswith(".py"):
                st = os.stat(os.path.join(base, name))
                parts.append(f"{os.path.basename(base)}/{name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)
