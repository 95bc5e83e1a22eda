"""envmat: make a virtual environment match a lockfile exactly.

The public API is imported lazily so that ``import envmat`` (and the CLI's start) stays cheap.
"""

from __future__ import annotations

# not `from typing import TYPE_CHECKING`: importing typing costs the no-op path ~8 ms
TYPE_CHECKING = False

__version__ = "0.1.0"

__all__ = ["EnvmatError", "LockedVenv", "SyncReport", "check", "install_wheels_venv", "sync"]

if TYPE_CHECKING:
    from typing import Any

    from .api import LockedVenv, check, install_wheels_venv, sync
    from .errors import EnvmatError
    from .report import SyncReport


def __getattr__(name: str) -> Any:
    if name in ("sync", "check", "LockedVenv", "install_wheels_venv"):
        from . import api

        return getattr(api, name)
    if name == "EnvmatError":
        from .errors import EnvmatError

        return EnvmatError
    if name == "SyncReport":
        from .report import SyncReport

        return SyncReport
    raise AttributeError(name)
