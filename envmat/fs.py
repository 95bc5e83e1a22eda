"""Filesystem primitives of the executor: link modes, staging, and the test-only fault hook.

Every change the executor makes to a venv goes through ``op()``, so the fault-injection tests
can stop the process (``ENVMAT_FAULT_KILL_AFTER=k``) or fail an operation
(``ENVMAT_FAULT_ERRNO=ENOSPC:k``) at the k-th change, or slow every change down
(``ENVMAT_FAULT_DELAY=seconds``) so that a signal lands inside a transaction.
"""

from __future__ import annotations

import _thread  # threading's own primitive, loaded at start-up: the replay imports this module
import errno
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, Literal

    LinkMode = Literal["auto", "hardlink", "reflink", "copy", "symlink"]

LINK_MODES: tuple[LinkMode, ...] = ("auto", "hardlink", "reflink", "copy", "symlink")

_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


class _Faults:
    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()
        self.count = 0
        kill = os.environ.get("ENVMAT_FAULT_KILL_AFTER")
        self.kill_after = int(kill) if kill else None
        delay = os.environ.get("ENVMAT_FAULT_DELAY")
        # seconds to sleep at each change: widens the window a test's signal must land in
        self.delay = float(delay) if delay else 0.0
        spec = os.environ.get("ENVMAT_FAULT_ERRNO")
        self.errno_after: tuple[int, int] | None = None
        if spec:
            name, _, k = spec.partition(":")
            self.errno_after = (getattr(errno, name), int(k or 1))

    @property
    def active(self) -> bool:
        return self.kill_after is not None or self.errno_after is not None or self.delay > 0


_faults = _Faults()


def op(cleanup: bool = False) -> None:
    """Count one filesystem change; the test hooks act here (no cost when unset).

    ``cleanup`` marks the renames back, unlinks and rmdirs of a rollback or of the work after the
    commit point: they count (a kill can land there too) but never get the injected errno, which
    stands for a full disk or a denied write, not for the undo of one.
    """
    if not _faults.active:
        return
    if _faults.delay:
        time.sleep(_faults.delay)
    with _faults.lock:
        _faults.count += 1
        n = _faults.count
    if _faults.kill_after is not None and n >= _faults.kill_after:
        os._exit(137)  # as SIGKILL would: no cleanup, no finally blocks
    if cleanup:
        return
    if _faults.errno_after is not None and n >= _faults.errno_after[1]:
        code = _faults.errno_after[0]
        raise OSError(code, os.strerror(code))


def fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: str, data: bytes, executable: bool) -> None:
    op()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755 if executable else 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def _reflink(src: str, dst: str, executable: bool) -> None:
    import fcntl

    sfd = os.open(src, os.O_RDONLY)
    try:
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755 if executable else 0o644)
        try:
            fcntl.ioctl(dfd, _FICLONE, sfd)
        except OSError:
            os.close(dfd)
            os.unlink(dst)
            raise
        os.close(dfd)
    finally:
        os.close(sfd)


def _copy(src: str, dst: str, executable: bool) -> None:
    import shutil

    # copy_file_range/sendfile under the hood on Linux (shutil fast-copy)
    with open(src, "rb") as fsrc:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755 if executable else 0o644)
        with open(fd, "wb") as fdst:
            shutil.copyfileobj(fsrc, fdst, 1 << 20)


class Linker:
    """Places cache files at staging paths in the chosen mode, falling back once and saying so."""

    _FALLBACK_ERRNOS = frozenset(
        {
            errno.EXDEV,
            errno.EOPNOTSUPP,
            errno.ENOTSUP,
            errno.EINVAL,
            errno.EPERM,
            errno.ENOTTY,
            errno.EMLINK,
            errno.ENOSYS,
        }
    )

    def __init__(self, mode: LinkMode) -> None:
        self.requested = mode
        # auto: a reflink costs no space and survives edits; a hardlink needs one filesystem
        chain: list[LinkMode] = (
            ["reflink", "hardlink", "copy"] if mode == "auto" else [mode, "copy"]
        )
        self._chain = chain
        self.mode: LinkMode = chain[0]
        self._lock = _thread.allocate_lock()
        #: fallbacks worth telling the user about (auto's reflink -> hardlink step is expected)
        self.fallbacks: list[str] = []

    def _fall_back(self, failed: LinkMode, err: OSError) -> None:
        with self._lock:
            if self.mode != failed:
                return
            nxt = self._chain[self._chain.index(failed) + 1]
            self.mode = nxt
            if not (self.requested == "auto" and failed == "reflink"):
                self.fallbacks.append(f"{failed} failed ({err.strerror}); using {nxt} instead")

    def place(self, src: str, dst: str, executable: bool, *, atomic_only: bool = False) -> bool:
        """Put ``src``'s bytes at ``dst``; False (nothing done) when ``atomic_only`` and the mode
        could leave ``dst`` half-written (copy, reflink): the caller then stages and renames."""
        op()
        while True:
            mode = self.mode
            if atomic_only and mode not in ("hardlink", "symlink"):
                return False
            try:
                if mode == "hardlink":
                    os.link(src, dst)
                elif mode == "reflink":
                    _reflink(src, dst, executable)
                elif mode == "symlink":
                    os.symlink(src, dst)
                else:
                    _copy(src, dst, executable)
                return True
            except OSError as e:
                if mode == "copy" or e.errno not in self._FALLBACK_ERRNOS:
                    raise
                self._fall_back(mode, e)


# Below this many directories and links one thread places them fastest: a link or a mkdir is
# shorter than a GIL hand-off. Above it two halves run at once: when the filesystem makes inodes
# slowly (ext4 just after a big tree was deleted spends CPU on every new one, measured ~0.5-1 ms
# per mkdir) that is most of the time, and a second core halves it.
SPLIT_AT = 1000


def by_depth(dirs: Sequence[str]) -> list[list[str]]:
    """``dirs`` (relative, ``/``-separated) grouped by depth, shallowest first: every group can be
    made in any order once the groups before it exist."""
    levels: dict[int, list[str]] = {}
    for d in dirs:
        levels.setdefault(d.count("/"), []).append(d)
    return [levels[k] for k in sorted(levels)]


def in_two(work: Callable[[Sequence[Any]], None], batches: Sequence[Sequence[Any]]) -> None:
    """``work(part)`` over each batch's two halves at once, a helper thread taking one; a batch
    is finished before the next starts. Never returns (nor raises, even for Ctrl-C) while the
    helper may still write: the caller may be about to undo what it wrote."""
    errors: list[BaseException] = []
    done = _thread.allocate_lock()

    def run(part: Sequence[Any]) -> None:
        try:
            work(part)
        except BaseException as e:  # raised below, in the calling thread
            errors.append(e)

    def helper(part: Sequence[Any]) -> None:
        try:
            run(part)
        finally:
            done.release()

    for batch in batches:
        done.acquire()
        _thread.start_new_thread(helper, (batch[1::2],))
        run(batch[::2])
        while True:
            try:
                done.acquire()  # released by the helper when it has finished
                break
            except KeyboardInterrupt as e:
                errors.append(e)
        done.release()
        if errors:
            raise errors[0]
