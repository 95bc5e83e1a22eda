"""Where the cache is, and how small entries are written to it: its own module, so that the
stdlib-only fast paths can use it."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def default_cache_dir() -> Path:
    env = os.environ.get("ENVMAT_CACHE_DIR")
    if env:
        return Path(env)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "envmat"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "envmat"


def write_entry(path: Path, text: str) -> None:
    """Write a small cache entry atomically (rename into place); failing is fine: the cache
    is an optimisation, and a read-only cache directory must not fail a sync."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        pass


_CODE = Path(__file__).resolve().parent


def code_stamp() -> str:
    """The identity of envmat's code and of the packaging it uses (each module's size and
    mtime), so that an upgraded or edited envmat never reuses cache entries that other code
    derived (remembered selections, replay records)."""
    import packaging

    from . import __version__

    parts = [__version__, packaging.__version__]
    for base in (_CODE, _CODE / "lock"):
        for name in sorted(os.listdir(base)):
            if name.endswith(".py"):
                st = os.stat(base / name)
                parts.append(f"{base.name}/{name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)
