"""Lock readers: every supported lock format becomes a list of ``LockedDist`` for one target."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import EnvmatError
from ..target import Target
from .model import FileRef, LockedDist, Selection

__all__ = ["FileRef", "LockedDist", "Selection", "read_toml", "select_from_lock"]


def read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EnvmatError(
            f"lock file {path} does not exist",
            hint="pass the path of a pylock.toml or uv.lock (e.g. envmat sync pylock.toml)",
        ) from None
    except IsADirectoryError:
        raise EnvmatError(
            f"{path} is a directory, not a lock file", hint="pass the lock file itself"
        ) from None
    except OSError as e:
        raise EnvmatError(f"cannot read the lock file {path}: {e.strerror}") from None
    try:
        loaded: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
        return loaded
    except UnicodeDecodeError as e:
        raise EnvmatError(
            f"{path} is not UTF-8 text ({e})", hint="a lock file is TOML text"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise EnvmatError(
            f"{path.name} is not valid TOML: {e}",
            context=[f"in {path}"],
            hint="fix the syntax error, or run the lock command that wrote it again",
        ) from None


def is_uv_lock(path: Path) -> bool:
    return path.name == "uv.lock"


def select_from_lock(
    path: Path, data: dict[str, Any], target: Target, selection: Selection
) -> tuple[list[LockedDist], list[str]]:
    """The distributions the lock selects for ``target``, and warnings about the lock."""
    if is_uv_lock(path):
        from .uvlock import select_uvlock

        return select_uvlock(path, data, target, selection), []
    from .lint import lint_pylock, raise_if_errors
    from .pylock import parse_pylock, select_pylock

    issues = lint_pylock(data, path.name)
    warnings = [
        f"{path.name}: {i.key_path + ': ' if i.key_path else ''}{i.message}"
        for i in raise_if_errors(issues, str(path), selection.strict)
    ]
    lock = parse_pylock(path, data)
    return select_pylock(path, lock, target, selection), warnings
