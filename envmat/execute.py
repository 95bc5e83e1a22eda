"""The executor: applies a FilePlan to the venv as one transaction, in parallel (DESIGN.md §4).

1. journal every path about to change (fsynced) before the first change;
2. stage new bytes beside their targets, in parallel, one worker per path;
3. move replaced and removed files into the stash;
4. rename staged files into place, RECORDs and the state file last;
5. commit (rename the journal), then drop the stash and emptied directories.
Any failure before step 5 rolls everything back; a killed process is recovered by the next run.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from attrs import frozen

from . import fs
from . import journal as jr
from .errors import EnvmatError
from .fs import Linker, op, write_bytes
from .installed import STATE_DIR
from .manifest import TargetFile
from .plan import FilePlan, pycache_prefix
from .progress import NoProgress, Progress

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from .fs import LinkMode

T = TypeVar("T")
_BATCH = 64  # files per task: a thread pool task per tiny file costs more than the link


class SourceGone(Exception):
    """A cache file vanished while being linked (a concurrent ``cache clean``); retried by the caller."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@frozen(kw_only=True)
class ApplyResult:
    written: int
    removed: int
    link_mode: str
    fallbacks: tuple[str, ...]


def _batches(items: Sequence[T], size: int = _BATCH) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class _Workers:
    """A thread pool made on first use: a sync that only links never starts (or imports) one."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool: ThreadPoolExecutor | None = None

    def run(
        self, fn: Callable[[Sequence[T]], None], items: Sequence[T], *, parallel: bool = True
    ) -> None:
        if not items:
            return
        if not parallel or self.jobs <= 1 or len(items) <= _BATCH:
            fn(items)
            return
        if self.pool is None:
            # `from` form: safe when another thread is importing it too (see fetch._manager_for)
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=self.jobs)
        futures = [self.pool.submit(fn, b) for b in _batches(items)]
        for f in futures:
            # the first error ends the wait; apply() stops the other workers before undoing anything
            f.result()

    def stop(self) -> None:
        """Wait for running batches and drop queued ones; a second Ctrl-C only waits again."""
        while self.pool is not None:
            try:
                self.pool.shutdown(wait=True, cancel_futures=True)
                return
            except KeyboardInterrupt:
                continue


def stale_pycache(prefix: Path, modules: Sequence[str]) -> list[str]:
    """``__pycache__`` files of removed or rewritten modules (they would shadow nothing, but rot)."""
    out: list[str] = []
    listings: dict[str, list[str]] = {}
    for mod in modules:
        d, stem = pycache_prefix(mod)
        if d not in listings:
            try:
                listings[d] = os.listdir(prefix / d)
            except OSError:
                listings[d] = []
        out += [
            f"{d}/{n}"
            for n in listings[d]
            if n.startswith(stem) and n.endswith(".pyc") and n.count(".") == 2
        ]
    return out


def scheme_roots(prefix_rels: Sequence[str]) -> set[str]:
    roots = {"", STATE_DIR}
    for r in prefix_rels:
        while r:
            roots.add(r)
            r = posixpath.dirname(r)
    return roots


def _missing_dirs(root: str, writes: Sequence[TargetFile]) -> list[str]:
    """The directories the writes need that do not exist yet, parents first."""
    dirs: list[str] = []
    seen: set[str] = set()
    for tf in writes:
        d = tf.path.rpartition("/")[0]
        chain = []
        while d and d not in seen:
            seen.add(d)
            if os.path.isdir(root + d):
                break
            chain.append(d)
            d = d.rpartition("/")[0]
        dirs += reversed(chain)
    dirs.sort(key=lambda x: x.count("/"))
    return dirs


def apply(
    prefix: Path,
    plan: FilePlan,
    *,
    link_mode: LinkMode = "auto",
    jobs: int = 8,
    stop: set[str] | None = None,
    progress: Progress | None = None,
    durable: bool = True,
    placed: Mapping[str, str] | None = None,
    linker: Linker | None = None,
) -> ApplyResult:
    """Apply ``plan``; on any error or interrupt before the commit point, restore the venv.

    ``placed``: the files a new venv got while its wheels downloaded (ahead.py), path -> cache
    file; a write of those very bytes is done already, any other write to such a path replaces
    it. ``linker``: the one that placed them (its link mode, fallbacks said once)."""
    progress = progress or NoProgress()
    stop = stop or {""}
    txid = os.urandom(6).hex()  # (uuid would import platform)
    root = str(prefix) + "/"  # string joins: these loops run once per file
    removes = [p for p in plan.removes if os.path.lexists(root + p)]
    planned = set(removes)
    removes += [p for p in stale_pycache(prefix, plan.stale_modules) if p not in planned]
    todo: Sequence[TargetFile] = plan.writes
    if placed:
        todo = [tf for tf in todo if tf.link is None or placed.get(tf.path) != tf.link]
    done_ahead = len(plan.writes) - len(todo)
    dirs = _missing_dirs(root, todo)
    # a file in a directory this transaction creates cannot exist yet: no lstat for it (on a
    # fresh venv that is nearly every file)
    fresh = set(dirs)
    placed = placed or {}
    writes = [
        (
            tf,
            tf.path in placed
            or (tf.path.rpartition("/")[0] not in fresh and os.path.lexists(root + tf.path)),
        )
        for tf in todo
    ]
    journal = jr.Journal(
        txid=txid,
        writes=tuple((tf.path, e) for tf, e in writes),
        removes=tuple(removes),
        dirs=tuple(dirs),
    )
    linker = linker or Linker(link_mode)
    workers = _Workers(jobs)
    try:
        jr.write_journal(prefix, journal, durable)
        progress.install_started(len(writes) + len(removes))
        _apply(prefix, journal, writes, linker, workers, progress)
        workers.stop()
        jr.commit(prefix, durable)
    except BaseException as e:
        # workers still placing files (Ctrl-C interrupts only the main thread's wait) must be
        # done before anything is undone, or they would re-add what the rollback removes
        workers.stop()
        try:
            jr.rollback(prefix, journal)
        except OSError as re_:
            raise EnvmatError(
                f"applying the changes failed ({_describe(e)}) and so did restoring the venv ({re_.strerror})",
                hint="run envmat sync again once the cause is fixed: it finishes the rollback first",
            ) from None
        if isinstance(e, OSError):
            raise EnvmatError(
                f"applying the changes failed: {_describe(e)}; the venv was restored to what it was before",
                hint="free disk space or fix permissions, then run envmat sync again",
            ) from None
        if isinstance(e, KeyboardInterrupt):
            raise EnvmatError(
                "interrupted; the venv was restored to what it was before",
                hint="run the same envmat sync again to make the change",
            ) from None
        raise
    jr.finish(prefix, journal, stop, durable)
    return ApplyResult(
        written=len(writes) + done_ahead,
        removed=len(removes),
        link_mode=linker.mode,
        fallbacks=tuple(linker.fallbacks),
    )


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError):
        where = f" ({e.filename})" if e.filename else ""
        return f"{e.strerror or e}{where}"
    return type(e).__name__ if isinstance(e, KeyboardInterrupt) else str(e)


def _apply(
    prefix: Path,
    journal: jr.Journal,
    writes: list[tuple[TargetFile, bool]],
    linker: Linker,
    workers: _Workers,
    progress: Progress,
) -> None:
    txid = journal.txid
    root = str(prefix) + "/"
    # many directories and links: two threads (fs.SPLIT_AT); hardlinks are known to be cheap
    # only once the first batch has settled the link mode
    split = len(journal.dirs) + len(writes) >= fs.SPLIT_AT

    def mkdirs(dirs: Sequence[str]) -> None:
        for d in dirs:
            op()
            try:
                os.mkdir(root + d)
            except FileExistsError:
                if not os.path.isdir(root + d):
                    raise

    if split:
        fs.in_two(mkdirs, fs.by_depth(journal.dirs))
    else:
        mkdirs(journal.dirs)  # parents come first in journal.dirs
    # a new path whose bytes come by hardlink or symlink is placed directly: a link appears
    # whole, and rollback removes what did not exist before, so staging it would only double
    # the syscalls. Copies and generated files are staged and renamed (never seen half-written).
    placed = [False] * len(writes)

    def stage(batch: Sequence[tuple[int, TargetFile, bool]]) -> None:
        for i, tf, existed in batch:
            final = root + tf.path
            src = tf.link
            if src is not None:
                try:
                    if not existed and linker.place(src, final, tf.executable, atomic_only=True):
                        placed[i] = True
                        continue
                    linker.place(src, root + jr.staging_name(tf.path, txid), tf.executable)
                except FileNotFoundError:
                    if not os.path.exists(src):
                        raise SourceGone(src) from None
                    raise
            else:
                assert tf.data is not None
                write_bytes(root + jr.staging_name(tf.path, txid), tf.data, tf.executable)
        progress.install_advanced(len(batch))

    items = [(i, tf, e) for i, (tf, e) in enumerate(writes)]
    # the first batch settles the link mode (auto falls back from reflink on its first file).
    # Hard and symbolic links are single metadata syscalls shorter than a GIL hand-off: one
    # thread places a few hundred fastest (a pool measured 1.2-2x slower), two halves many
    # (fs.SPLIT_AT); copies run in the pool.
    stage(items[:_BATCH])
    if linker.mode not in ("hardlink", "symlink"):
        workers.run(stage, items[_BATCH:])
    elif split:
        fs.in_two(stage, [items[_BATCH:]])
    else:
        stage(items[_BATCH:])

    stash = root + jr.stash_dir(txid) + "/"
    to_stash = [(i, tf.path) for i, (tf, existed) in enumerate(writes) if existed]
    base = len(writes)
    to_stash += [(base + j, p) for j, p in enumerate(journal.removes)]
    if to_stash:
        op()
        os.mkdir(stash)
        for i, path in to_stash:
            op()
            os.rename(root + path, stash + str(i))
        progress.install_advanced(len(journal.removes))

    # RECORDs and the state file are renamed last, after every file they describe
    staged = [(i, tf) for i, (tf, _) in enumerate(writes) if not placed[i]]
    late = [
        (i, tf)
        for i, tf in staged
        if tf.path.endswith(".dist-info/RECORD") or tf.path.startswith(STATE_DIR)
    ]
    early = [
        (i, tf)
        for i, tf in staged
        if not (tf.path.endswith(".dist-info/RECORD") or tf.path.startswith(STATE_DIR))
    ]

    def commit_files(batch: Sequence[tuple[int, TargetFile]]) -> None:
        for _, tf in batch:
            op()
            os.replace(root + jr.staging_name(tf.path, txid), root + tf.path)

    workers.run(commit_files, early)
    commit_files(late)
