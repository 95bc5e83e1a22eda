"""Lock readers: every supported lock format becomes a list of ``LockedDist`` for one target."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..cachedir import lock_digest
from ..errors import EnvmatError
from ..target import Target
from .model import FileRef, LockedDist, Selection

__all__ = ["FileRef", "LockReader", "LockedDist", "Selection", "read_toml", "select_from_lock"]


def read_lock_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
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


def parse_toml(path: Path, data: bytes) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
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


def read_toml(path: Path) -> dict[str, Any]:
    return parse_toml(path, read_lock_bytes(path))


class LockReader:
    """One lock file, read once; its selection for a target, remembered in the cache.

    ``check()`` parses the lock unless these exact bytes were selected from before (so a bad
    lock fails before anything is touched); ``select()`` answers from the memo when it can.
    """

    def __init__(self, path: Path, cache_dir: Path | None) -> None:
        self.path = path
        self.raw = read_lock_bytes(path)
        self._cache_dir = cache_dir
        self._digest = lock_digest(self.raw)
        self._data: dict[str, Any] | None = None
        self._parsed: Any = None  # (lint issues, Pylock): what selection needs but the target

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = parse_toml(self.path, self.raw)
        return self._data

    @property
    def remembered(self) -> bool:
        """These exact lock bytes were selected from before (with this cache)."""
        from . import memo

        return (
            self._memo_ok()
            and self._cache_dir is not None
            and memo.known(self._cache_dir, self._digest)
        )

    def _memo_ok(self) -> bool:
        return self._cache_dir is not None and not is_uv_lock(self.path)

    def check(self) -> None:
        from . import memo

        if (
            self._cache_dir is None
            or not self._memo_ok()
            or not memo.known(self._cache_dir, self._digest)
        ):
            _ = self.data  # parses, raising on a broken lock
            self._parse_ahead()

    def _parse_ahead(self) -> None:
        """Lint and parse a pylock now (neither needs the target): a new venv's interpreter is
        being asked meanwhile (prefetch.py), and selection then only evaluates markers."""
        if is_uv_lock(self.path):
            return
        from .lint import lint_pylock
        from .pylock import parse_pylock

        try:
            issues = lint_pylock(self.data, self.path.name)
            self._parsed = (issues, parse_pylock(self.path, self.data))
        except EnvmatError:
            return  # selection meets it again, and reports the lock's errors in their order

    def select(self, target: Target, selection: Selection) -> tuple[list[LockedDist], list[str]]:
        from . import memo

        if not self._memo_ok():
            return select_from_lock(self.path, self.data, target, selection, self._parsed)
        assert self._cache_dir is not None
        hit = memo.recall(self._cache_dir, self._digest, self.path, target, selection)
        if hit is not None:
            return hit
        dists, warnings = select_from_lock(self.path, self.data, target, selection, self._parsed)
        memo.remember(self._cache_dir, self._digest, self.path, target, selection, dists, warnings)
        return dists, warnings


def is_uv_lock(path: Path) -> bool:
    return path.name == "uv.lock"


def select_from_lock(
    path: Path,
    data: dict[str, Any],
    target: Target,
    selection: Selection,
    parsed: Any = None,
) -> tuple[list[LockedDist], list[str]]:
    """The distributions the lock selects for ``target``, and warnings about the lock
    (``parsed``: a pylock's lint issues and parsed form, when ``LockReader`` made them)."""
    if is_uv_lock(path):
        from .uvlock import select_uvlock

        return select_uvlock(path, data, target, selection), []
    from .lint import lint_pylock, raise_if_errors
    from .pylock import parse_pylock, select_pylock

    issues, lock = parsed if parsed is not None else (lint_pylock(data, path.name), None)
    warnings = [
        f"{path.name}: {i.key_path + ': ' if i.key_path else ''}{i.message}"
        for i in raise_if_errors(issues, str(path), selection.strict)
    ]
    if lock is None:
        lock = parse_pylock(path, data)
    return select_pylock(path, lock, target, selection), warnings
