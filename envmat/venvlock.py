"""The venv lock: a hidden file lock beside the venv, held by the main thread for each command."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import fastpath
from .errors import EnvmatError, LockTimeoutError


def lock_path(venv: Path) -> Path:
    return Path(fastpath.lock_file(str(venv)))


@contextmanager
def venv_lock(
    venv: Path, timeout: float | None, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    path = lock_path(venv)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EnvmatError(
            f"cannot create {path.parent}: {e.strerror}",
            hint="pass a --venv in a writable directory",
        ) from None
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - Windows
        with _filelock(path, timeout, on_wait):
            yield
        return
    with _flock(path, timeout, on_wait):
        yield


def _timed_out(path: Path, waited: float) -> LockTimeoutError:
    return LockTimeoutError(
        f"another envmat process still holds the venv lock after {waited:.0f}s",
        context=[f"lock file: {path}"],
        hint="wait for the other sync to finish, or raise --lock-timeout; if no envmat is running, "
        "the lock is released with its process, so retry",
    )


def _cannot(path: Path, e: OSError) -> EnvmatError:
    return EnvmatError(
        f"cannot take the venv lock {path}: {e.strerror}",
        hint="check permissions of the venv's directory",
    )


@contextmanager
def _flock(
    path: Path, timeout: float | None, on_wait: Callable[[str], None] | None
) -> Iterator[None]:
    """An exclusive flock, as filelock's UnixFileLock takes it (fastpath.py probes the same
    lock), without importing filelock: its import costs more than a whole no-op sync."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise _cannot(path, e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(f"waiting for another envmat process that holds {path}")
            start = time.monotonic()
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if timeout is None else fcntl.LOCK_NB))
                    break
                except BlockingIOError:
                    assert timeout is not None
                    if time.monotonic() - start >= timeout:
                        raise _timed_out(path, time.monotonic() - start) from None
                    time.sleep(0.05)
        except OSError as e:
            raise _cannot(path, e) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


@contextmanager
def _filelock(
    path: Path, timeout: float | None, on_wait: Callable[[str], None] | None
) -> Iterator[None]:  # pragma: no cover - platforms without fcntl
    from filelock import FileLock, Timeout

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
            raise _timed_out(path, time.monotonic() - start) from None
    except OSError as e:
        raise _cannot(path, e) from None
    try:
        yield
    finally:
        lock.release()
