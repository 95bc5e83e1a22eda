"""The venv lock: a hidden file lock beside the venv, held by the main thread for each command."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import EnvmatError, LockTimeoutError

log = logging.getLogger(__name__)


def lock_path(venv: Path) -> Path:
    return venv.parent / f".{venv.name}.envmat.lock"


@contextmanager
def venv_lock(
    venv: Path, timeout: float | None, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    from filelock import FileLock, Timeout

    path = lock_path(venv)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EnvmatError(
            f"cannot create {path.parent}: {e.strerror}",
            hint="pass a --venv in a writable directory",
        ) from None
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait(f"waiting for another envmat process that holds {path}")
        start = time.monotonic()
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise LockTimeoutError(
                f"another envmat process still holds the venv lock after {time.monotonic() - start:.0f}s",
                context=[f"lock file: {path}"],
                hint="wait for the other sync to finish, or raise --lock-timeout; if no envmat is running, "
                "the lock is released with its process, so retry",
            ) from None
    except OSError as e:
        raise EnvmatError(
            f"cannot take the venv lock {path}: {e.strerror}",
            hint="check permissions of the venv's directory",
        ) from None
    try:
        yield
    finally:
        lock.release()
