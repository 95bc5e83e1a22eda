"""The shared cache: wheels content-addressed by their locked hash, and unpacked wheel trees.

Layout (DESIGN.md §3)::

    archives-v1/<key>.whl          a verified wheel that could not be unpacked as it downloaded
                                   (local paths are read in place)
    unpacked-v1/<key>/index.json   the wheel's WheelIndex, written before the directory is renamed in
    unpacked-v1/<key>/<scheme>/…   its files, laid out by install scheme
    interpreters/<key>.json        answers of target interpreters (target.py)

Every entry is built in a sibling work directory and renamed into place, so a reader sees a whole
entry or none, and processes filling one entry at once all succeed (the loser discards its copy).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import frozen

from .cachedir import default_cache_dir as default_cache_dir
from .errors import EnvmatError
from .fetch import check_file, hash_local, redact
from .lock.model import FileRef, LockedDist
from .logs import Logger
from .progress import NoProgress, Progress
from .wheel import WheelIndex, unpack_wheel

if TYPE_CHECKING:  # concurrent.futures only when something is fetched
    from concurrent.futures import Future

    from .fillhelper import Helper

T = TypeVar("T")

log = Logger(__name__)

_SUPPORTED = ("sha256", "sha512", "sha384", "sha3_256", "blake2b", "sha224")


_DOWNLOADS = 3  # the default number of downloads at once (``--jobs`` sets it)
#: how long the costliest jobs wait for the helper process before this one takes them (``_fill``)
_RESERVED_FOR = 0.1


def cache_key(ref: FileRef) -> str:
    for algo in _SUPPORTED:
        if algo in ref.hashes:
            return ref.hashes[algo] if algo == "sha256" else f"{algo}-{ref.hashes[algo]}"
    raise EnvmatError(
        f"{ref.filename} has no hash envmat can check (the lock has {', '.join(ref.hashes) or 'none'})",
        hint="lock again with sha256 hashes",
    )


@frozen(kw_only=True)
class CachedWheel:
    dist: LockedDist
    index: WheelIndex
    #: the unpacked tree: ``<root>/<scheme>/<path>``
    root: Path
    downloaded: int = 0


class Cache:
    def __init__(
        self,
        root: Path,
        *,
        offline: bool = False,
        jobs: int = 8,
        downloads: int | None = None,
        timeout: float = 30.0,
        progress: Progress | None = None,
    ) -> None:
        self.progress: Progress = progress or NoProgress()
        self._prepared: dict[str, CachedWheel] = {}
        self.root = root
        self.offline = offline
        self.jobs = jobs
        #: downloads at once: each one also unpacks as it goes (wheelstream.py), which is Python
        #: work under one GIL whatever the core count; past a few, more threads only trade places
        #: on it (measured on 2 cores, medium cold: 8 at once were ~15% slower than 2-4; with the
        #: helper's 3, large cold: 3 here ~8% faster than 4, small to medium the same)
        self.downloads = downloads or min(jobs, _DOWNLOADS)
        self.timeout = timeout
        self._fetcher: object | None = None

    def forget(self) -> None:
        """Drop what this sync remembered of the cache (an entry was removed under it)."""
        self._prepared.clear()

    def _mark_used(self, key: str) -> None:
        # index.json's mtime is the entry's last use, for `envmat cache prune`
        with contextlib.suppress(OSError):
            os.utime(self.unpacked_dir(key) / "index.json")

    def entry_unchanged(self, key: str, index: WheelIndex) -> bool:
        """Cheap check before every use: each file's size and mtime are what unpacking left."""
        if len(index.stamps) != len(index.files):
            return True  # an index from before stamps were kept: nothing to compare
        root = f"{self.unpacked_dir(key)}/"
        try:
            for f, stamp in zip(index.files, index.stamps):
                st = os.stat(f"{root}{f.scheme}/{f.path}")
                if st.st_size != f.size or st.st_mtime_ns != stamp:
                    return False
        except OSError:
            return False
        return True

    def entry_intact(self, key: str, index: WheelIndex) -> bool:
        """Every file of an unpacked entry still has the bytes its index records."""
        root = self.unpacked_dir(key)
        for f in index.files:
            try:
                size, digests = hash_local(root / f.scheme / f.path, {})
            except OSError:
                return False
            if size != f.size or digests["sha256"] != f.sha256:
                return False
        return True

    def unpacked_dir(self, key: str) -> Path:
        return self.root / "unpacked-v1" / key

    def archive_path(self, key: str) -> Path:
        return self.root / "archives-v1" / f"{key}.whl"

    def _work_dir(self, kind: str) -> Path:
        d = self.root / kind / f".tmp-{os.urandom(16).hex()}"
        try:
            d.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EnvmatError(
                f"cannot write to the cache directory {self.root}: {e.strerror}",
                hint="pass a writable --cache-dir, or set ENVMAT_CACHE_DIR",
            ) from None
        return d

    def cached_index(self, key: str) -> WheelIndex | None:
        try:
            raw = (self.unpacked_dir(key) / "index.json").read_bytes()
            return WheelIndex.from_json(json.loads(raw))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def missing(self, dists: Iterable[LockedDist]) -> list[LockedDist]:
        """The dists whose bytes are neither unpacked, nor archived, nor at a local path."""
        out = []
        for d in dists:
            assert d.wheel is not None
            key = cache_key(d.wheel)
            if (
                key in self._prepared
                or (self.unpacked_dir(key) / "index.json").is_file()
                or self.archive_path(key).is_file()
            ):
                continue
            if d.wheel.path and os.path.isfile(d.wheel.path):
                continue
            out.append(d)
        return out

    def prepare(
        self,
        dists: Sequence[LockedDist],
        verify: Collection[str] = (),
        on_fill: Callable[[CachedWheel], None] | None = None,
    ) -> list[CachedWheel]:
        """Every dist's wheel unpacked in the cache, fetching and verifying what is missing.

        ``on_fill`` is called with each entry this call fills as soon as it is ready, from the
        thread that filled it (ahead.py places a new venv's files meanwhile)."""
        if self.offline:
            missing = self.missing(dists)
            if missing:
                raise EnvmatError(
                    f"--offline: {len(missing)} locked file(s) are not in the cache",
                    details=[
                        f"{d.name} {d.version}: {redact(d.wheel.location) if d.wheel else ''}"
                        for d in missing
                    ],
                    hint="run once without --offline to fill the cache (or point --cache-dir at a filled one)",
                )
        todo: list[tuple[int, LockedDist]] = []
        results: list[CachedWheel | None] = [None] * len(dists)
        for i, d in enumerate(dists):
            assert d.wheel is not None
            key = cache_key(d.wheel)
            known = self._prepared.get(key)
            if known is not None and d.name not in verify:
                results[i] = known  # prepared earlier in this sync (before creating the venv)
                continue
            index = self.cached_index(key)
            if index is not None and not (
                self.entry_unchanged(key, index)
                and (d.name not in verify or self.entry_intact(key, index))
            ):
                # never install from a tampered entry (an installed hardlink edited in place
                # edits the cache's copy too): rebuild it from the wheel
                log.warning("the cache entry of %s was modified; rebuilding it", d.name)
                _remove_entry(self.unpacked_dir(key))
                index = None
            if index is not None:
                self._mark_used(key)
                results[i] = CachedWheel(dist=d, index=index, root=self.unpacked_dir(key))
            else:
                todo.append((i, d))
        if todo:
            errors: list[EnvmatError] = []
            from . import fillhelper

            # the costliest first: the last one to finish should be a cheap one
            todo.sort(key=lambda t: -_fill_cost(t[1].wheel) if t[1].wheel else 0)
            filled = self._fill(todo, fillhelper.take(str(self.root)), on_fill)
            for i, _ in todo:
                try:
                    results[i] = filled[i].result()
                except EnvmatError as e:
                    errors.append(e)
            if len(errors) == 1:
                raise errors[0]
            if errors:
                messages = list(dict.fromkeys(e.message for e in errors))
                if len(messages) == 1:  # one cause for all (TLS, a proxy, DNS): said once
                    raise EnvmatError(
                        f"{len(errors)} locked files could not be fetched: {messages[0]}",
                        hint=errors[0].hint,
                    )
                raise EnvmatError(
                    f"{len(errors)} locked files could not be fetched",
                    details=messages,
                    hint=errors[0].hint,
                )
        done = [r for r in results if r is not None]
        for r in done:
            assert r.dist.wheel is not None
            self._prepared[cache_key(r.dist.wheel)] = r
        return done

    def _fill(
        self,
        todo: Sequence[tuple[int, LockedDist]],
        helper: Helper | None,
        on_fill: Callable[[CachedWheel], None] | None = None,
    ) -> dict[int, Future[CachedWheel]]:
        """Fetch and unpack ``todo`` (costliest first): download threads, and the helper process
        when there is one, take the next job from one queue (the helper's first jobs kept for
        it, below); each job's entry or error."""
        from collections import deque

        from .fetch import wait_tls

        queue = deque(todo)
        tls = any(d.wheel is not None and (d.wheel.url or "").startswith("https:") for _, d in todo)
        qlock = threading.Lock()
        filled: dict[int, Future[CachedWheel]] = {}
        # The helper's first jobs are the costliest: this process also places every wheel's
        # files (ahead.py) and runs the transaction, and a big wheel sharing it with two other
        # downloads and the placement ended a cold sync alone. They are kept for the helper
        # until it is gone or _RESERVED_FOR seconds have passed (it is usually ready by now).
        reserved: deque[tuple[int, LockedDist]] = deque()
        release_at = [0.0]
        if helper is not None:
            from .fillhelper import AT_ONCE

            while len(reserved) < AT_ONCE and len(queue) > 1:
                reserved.append(queue.popleft())
            hold = float(os.environ.get("ENVMAT_FAULT_HELPER_RESERVE") or _RESERVED_FOR)  # (tests)
            release_at[0] = time.monotonic() + hold

        def next_job(helper_side: bool = False) -> tuple[int, LockedDist] | None:
            with qlock:
                if reserved and (helper_side or not queue or time.monotonic() >= release_at[0]):
                    return reserved.popleft()
                return queue.popleft() if queue else None

        def after_helper() -> None:
            release_at[0] = 0.0  # what it left (all of it, if it never came) goes to this process
            download()

        def download() -> None:
            if tls:
                # take a job only when it can start: a thread that took the costliest wheel and
                # then waited for the TLS set-up would leave it to wait behind cheaper ones
                wait_tls()
            job = next_job()
            while job is not None:
                filled[job[0]] = self._start(job[1], unpackers, on_fill)
                job = next_job()

        # downloads wait on the network, unpacks on the CPU and the disk: separate pools, so
        # that no download waits behind an unpack
        unpackers = _Unpackers(max(1, min(self.jobs, os.cpu_count() or 1)))
        threads = [
            threading.Thread(target=download) for _ in range(max(1, min(self.downloads, len(todo))))
        ]
        stopping = threading.Event()
        if helper is not None:
            threads.append(
                threading.Thread(
                    target=self._with_helper,
                    args=(
                        helper,
                        lambda: next_job(helper_side=True),
                        filled,
                        unpackers,
                        after_helper,
                        stopping,
                        on_fill,
                    ),
                )
            )
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        except BaseException:  # Ctrl-C: the threads stop after their current file
            stopping.set()
            with qlock:
                queue.clear()
                reserved.clear()
            raise
        finally:
            unpackers.shutdown()
        return filled

    def _start(
        self,
        dist: LockedDist,
        unpackers: _Unpackers,
        on_fill: Callable[[CachedWheel], None] | None = None,
    ) -> Future[CachedWheel]:
        """Fetch ``dist`` in this thread; its entry (or error) once unpacked."""
        assert dist.wheel is not None
        try:
            source, downloaded, streamed = self._fetch(dist)
        except Exception as e:  # the thread that collects the results raises it
            return _failed(e)
        if streamed is not None:  # unpacked while it downloaded
            entry = CachedWheel(
                dist=dist,
                index=streamed,
                root=self.unpacked_dir(cache_key(dist.wheel)),
                downloaded=downloaded,
            )
            if on_fill is not None:
                on_fill(entry)
            return _done(entry)
        assert source is not None
        cost = int(_fill_cost(dist.wheel))
        future = unpackers.submit(-cost, self._unpacked, dist, source, downloaded)
        if on_fill is not None:
            report = on_fill

            def filled(f: Future[CachedWheel]) -> None:
                if f.exception() is None:
                    report(f.result())

            future.add_done_callback(filled)
        return future

    def _with_helper(
        self,
        helper: Helper,
        next_job: Callable[[], tuple[int, LockedDist] | None],
        filled: dict[int, Future[CachedWheel]],
        unpackers: _Unpackers,
        download: Callable[[], None],
        stopping: threading.Event,
        on_fill: Callable[[CachedWheel], None] | None = None,
    ) -> None:
        """Feed the helper process jobs from the queue once it is ready (fillhelper.py); what it
        leaves unanswered, and the rest of the queue if it goes, are done in this thread."""
        from .fillhelper import AT_ONCE, HelperGone, error_from

        out: dict[int, LockedDist] = {}
        try:
            if helper.receive()["id"] != -1:  # ready: imports and TLS done
                raise HelperGone
            while True:
                while len(out) < AT_ONCE:
                    job = next_job()
                    if job is None:
                        break
                    out[job[0]] = job[1]
                    assert job[1].wheel is not None
                    self.progress.download_started(job[1].wheel.filename, job[1].wheel.size)
                    helper.send(*job)
                if not out:
                    break
                reply = helper.receive()
                i = reply["id"]
                dist = out.pop(i, None)
                if dist is None:
                    raise HelperGone  # an answer to nothing: stop trusting it
                assert dist.wheel is not None
                key = cache_key(dist.wheel)
                index = self.cached_index(key) if "downloaded" in reply else None
                if "error" not in reply and index is None:
                    out[i] = dist  # it crashed on this one, or the entry is not there: redo here
                    raise HelperGone
                log.debug("%s: fetched by the helper process", dist.name)
                self.progress.download_finished(dist.wheel.filename)
                if index is None:
                    filled[i] = _failed(error_from(reply))
                else:
                    root = self.unpacked_dir(key)
                    downloaded = int(reply["downloaded"])
                    entry = CachedWheel(dist=dist, index=index, root=root, downloaded=downloaded)
                    if on_fill is not None:
                        on_fill(entry)
                    filled[i] = _done(entry)
        except HelperGone:
            log.debug("the helper process is gone; this one fetches what it left")
        finally:
            helper.close()
        if not stopping.is_set():  # (after Ctrl-C, the helper died of it too)
            for i, dist in out.items():
                assert dist.wheel is not None
                self.progress.download_finished(dist.wheel.filename)
                filled[i] = self._start(dist, unpackers, on_fill)
        download()  # whatever is still queued

    def _fetch(self, dist: LockedDist) -> tuple[Path | None, int, WheelIndex | None]:
        """The verified wheel of ``dist`` (downloaded when not in the cache), the bytes
        downloaded for it, and its index when it was unpacked into the cache as it came (the
        wheel is None then: a streamed download is not kept)."""
        ref = dist.wheel
        assert ref is not None
        key = cache_key(ref)
        downloaded = 0
        streamed = None
        archive = self.archive_path(key)
        source: Path | None
        if ref.path is not None and (ref.url is None or os.path.isfile(ref.path)):
            source = Path(ref.path)
            try:
                got, digests = hash_local(source, ref.hashes)
            except FileNotFoundError:
                raise EnvmatError(
                    f"the wheel {ref.path} for {dist.name} does not exist",
                    context=[f"lock entry: {dist.key_path}"],
                    hint="paths in a lock are relative to the lock file's directory; build or restore the wheel",
                ) from None
            except OSError as e:  # a directory, no permission
                raise EnvmatError(
                    f"cannot read the wheel {ref.path} for {dist.name}: {e.strerror or e}",
                    context=[f"lock entry: {dist.key_path}"],
                    hint="the path must name a readable wheel file",
                ) from None
            check_file(str(source), got, digests, ref.size, ref.hashes)
        elif archive.is_file():
            source = archive
        elif ref.url is not None:
            source, streamed, downloaded = self._download(ref, archive, key)
        else:
            raise EnvmatError(
                f"{dist.name} has neither a path nor a url in the lock", context=[dist.key_path]
            )
        return source, downloaded, streamed

    def _unpacked(self, dist: LockedDist, source: Path, downloaded: int) -> CachedWheel:
        assert dist.wheel is not None
        key = cache_key(dist.wheel)
        index = self._unpack(source, key, dist.wheel.filename)
        return CachedWheel(
            dist=dist, index=index, root=self.unpacked_dir(key), downloaded=downloaded
        )

    def _download(
        self, ref: FileRef, archive: Path, key: str
    ) -> tuple[Path | None, WheelIndex | None, int]:
        """Download ``ref``, unpacking it into the cache as it comes: (None, its index, bytes).

        The archive itself is not written: like uv, the cache keeps unpacked wheels, and a cold
        sync writes the compressed bytes a second time for nothing (large: 137 MB on top of
        429). A wheel that cannot be proven streamed (wheelstream.py: a data descriptor, ZIP64,
        anything unusual; rare) is downloaded again into ``archive`` and unpacked from there the
        proven way, which also reports what is wrong with it: (archive, None, bytes).
        """
        from .wheelstream import StreamUnpacker, finish

        if self.offline:
            raise EnvmatError(f"--offline: {ref.filename} is not in the cache")
        streams = [StreamUnpacker(str(self._work_dir("unpacked-v1")))]

        def again() -> None:  # a broken-off download starts over, and so does its unpacking
            streams[0].discard()
            streams[0] = StreamUnpacker(str(self._work_dir("unpacked-v1")))

        try:
            got = self._get(ref, None, lambda chunk: streams[0].feed(chunk), again)
        except BaseException:
            streams[0].discard()
            raise
        stream = streams[0]
        index = finish(stream, str(archive), ref.filename)  # (None: it discarded the stream)
        if index is not None:
            try:
                return None, self._commit(Path(stream.dest), key, index), got
            except OSError:
                pass  # unpacked again from the archive, which reports the cause
            finally:
                stream.discard()  # (a no-op once the entry was renamed into place)
        # one temporary file beside the entry (a temporary directory would cost two more
        # inode operations per wheel, the dearest thing a cold cache does)
        tmp = self._work_dir("archives-v1")
        try:
            got += self._get(ref, tmp)
            # only verified bytes enter the cache (DESIGN.md §3)
            os.replace(tmp, archive)
        except OSError as e:  # the network's own errors are EnvmatErrors by now: this is the disk
            raise EnvmatError(
                f"cannot write {ref.filename} into the cache {self.root}: {e.strerror or e}",
                hint="check free space and permissions of the cache directory (--cache-dir)",
            ) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return archive, None, got

    def _get(
        self,
        ref: FileRef,
        dest: Path | None,
        on_chunk: Callable[[bytes], None] | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> int:
        """Download and verify ``ref`` into ``dest`` (None: to ``on_chunk`` only); its size."""
        from .fetch import Fetcher

        if self._fetcher is None:
            self._fetcher = Fetcher(timeout=self.timeout)
        fetcher = self._fetcher
        assert isinstance(fetcher, Fetcher) and ref.url is not None
        got = 0

        def advanced(n: int) -> None:
            nonlocal got
            got += n
            self.progress.download_advanced(ref.filename, n)

        def retried() -> None:
            nonlocal got
            got = 0
            if on_retry is not None:
                on_retry()

        self.progress.download_started(ref.filename, ref.size)
        try:
            fetcher.download(
                ref.url,
                dest,
                size=ref.size,
                hashes=ref.hashes,
                on_bytes=advanced,
                on_chunk=on_chunk,
                on_retry=retried,
            )
        finally:
            self.progress.download_finished(ref.filename)
        return got

    def _unpack(self, wheel: Path, key: str, filename: str) -> WheelIndex:
        existing = self.cached_index(key)
        if existing is not None:
            return existing
        work = self._work_dir("unpacked-v1")
        try:
            index = unpack_wheel(wheel, work, filename)  # with each file's mtime (stamps)
            index = self._commit(work, key, index)
        except OSError as e:
            raise EnvmatError(
                f"cannot unpack {filename} into the cache {self.root}: {e.strerror or e}",
                hint="check free space and permissions of the cache directory (--cache-dir)",
            ) from None
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        return index

    def _commit(self, work: Path, key: str, index: WheelIndex) -> WheelIndex:
        """Move an unpacked ``work`` directory into place as ``key``'s entry (index.json
        first: an entry without one is torn); the entry already there when another process
        made it first."""
        final = self.unpacked_dir(key)
        (work / "index.json").write_text(json.dumps(index.to_json(), separators=(",", ":")))
        try:
            os.rename(work, final)
        except OSError:
            # another process won the race, or a torn entry without index.json sits there
            existing = self.cached_index(key)
            if existing is not None:
                return existing
            shutil.rmtree(final, ignore_errors=True)
            os.rename(work, final)
        return index


def _fill_cost(ref: FileRef) -> float:
    """What fetching and unpacking ``ref`` is expected to cost, in compressed bytes of a binary
    wheel: the lock gives only the size, and a pure-Python wheel (``none-any``) holds many
    small files where a binary one holds a few large libraries. Measured on the ``large``
    benchmark's wheels: ~0.2 ms per file plus ~15 ms per compressed MB, and pure-Python wheels
    have ~300 files per MB against ~70: ~3x the cost per byte. (jedi, 4.9 MB in 5,626 files,
    costs more than scipy's 35 MB: started by size, 10th, it was the last to finish, alone,
    for over a second of a cold sync.)"""
    size = float(ref.size or 0)
    return size * 3 if ref.filename.endswith("-none-any.whl") else size


def _done(value: CachedWheel) -> Future[CachedWheel]:
    from concurrent.futures import Future

    fut: Future[CachedWheel] = Future()
    fut.set_result(value)
    return fut


def _failed(error: BaseException) -> Future[CachedWheel]:
    from concurrent.futures import Future

    fut: Future[CachedWheel] = Future()
    fut.set_exception(error)
    return fut


class _Unpackers:
    """One unpack per core at a time (more only trade places on the GIL), the costliest waiting
    wheel first (``_fill_cost``): a cold sync ends with its last unpack, which should not be a
    long one that waited behind short ones."""

    def __init__(self, workers: int) -> None:
        self._heap: list[tuple[int, int, Future[Any], Callable[[], Any]]] = []
        self._ready = threading.Condition()
        self._closed = False
        self._seq = 0
        self._threads = [threading.Thread(target=self._work) for _ in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, priority: int, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` in a worker; lower ``priority`` first."""
        from concurrent.futures import Future

        fut: Future[T] = Future()
        with self._ready:
            self._seq += 1
            heapq.heappush(self._heap, (priority, self._seq, fut, lambda: fn(*args)))
            self._ready.notify()
        return fut

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._heap and not self._closed:
                    self._ready.wait()
                if not self._heap:
                    return
                _, _, fut, call = heapq.heappop(self._heap)
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(call())
                except BaseException as e:  # the waiting thread raises it
                    fut.set_exception(e)

    def shutdown(self) -> None:
        """Finish what was submitted, then stop the workers."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        for t in self._threads:
            t.join()


def _tree_size(path: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                size += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
            except OSError:
                pass
    return files, size


def cache_info(root: Path) -> dict[str, object]:
    archives = list((root / "archives-v1").glob("*.whl")) if (root / "archives-v1").is_dir() else []
    unpacked = (
        [p for p in (root / "unpacked-v1").iterdir() if not p.name.startswith(".")]
        if (root / "unpacked-v1").is_dir()
        else []
    )
    files, size = _tree_size(root) if root.is_dir() else (0, 0)
    return {
        "path": str(root),
        "wheel archives": len(archives),  # (kept only for wheels that could not stream)
        "unpacked wheels": len(unpacked),
        "files": files,
        "size": f"{size / 2**20:.1f} MiB",
        "bytes": size,
    }


def _remove_entry(path: Path) -> int:
    """Rename first (atomic: readers see the whole entry or none), then delete."""
    if not os.path.lexists(path):
        return 0
    doomed = path.with_name(f".tmp-delete-{os.urandom(16).hex()}")
    try:
        os.rename(path, doomed)
    except OSError:
        return 0
    size = _tree_size(doomed)[1] if doomed.is_dir() else doomed.stat().st_size
    if doomed.is_dir():
        shutil.rmtree(doomed, ignore_errors=True)
    else:
        doomed.unlink()
    return size


def _in_progress(p: Path) -> bool:
    """A work directory another envmat is filling right now (crashed ones age out in an hour)."""
    if not p.name.startswith(".tmp-"):
        return False
    try:
        return p.stat().st_mtime > time.time() - 3600
    except OSError:
        return False


def clean_cache(root: Path) -> dict[str, int]:
    """Remove every entry; work directories of syncs running right now are left to them."""
    entries = freed = 0
    for kind in (
        "archives-v1",
        "unpacked-v1",
        "selections-v1",
        "replays-v2",
        "interpreters",
        "venv-templates",
    ):
        d = root / kind
        if d.is_dir():
            for p in d.iterdir():
                if _in_progress(p):
                    continue
                freed += _remove_entry(p)
                entries += 1
    return {"entries": entries, "bytes": freed}


def prune_cache(root: Path, *, older_than_days: float) -> dict[str, int]:
    """Remove wheels no sync installed from in the last ``older_than_days`` days, and leftovers."""
    limit = time.time() - older_than_days * 86400
    entries = freed = 0
    # remembered selections (lock/memo.py) and replay records (replay.py) go by when they were
    # made: cheap to make again
    for d in (
        root / "unpacked-v1",
        root / "archives-v1",
        root / "selections-v1",
        root / "replays-v2",
    ):
        if not d.is_dir():
            continue
        for p in d.iterdir():
            unpacked = d.name == "unpacked-v1" and not p.name.startswith(".")
            stamp = p / "index.json" if unpacked else p
            try:
                used = stamp.stat().st_mtime
            except OSError:
                used = 0.0
            # work directories of a crashed fill (older than an hour: not a running one)
            stale_tmp = p.name.startswith(".tmp-") and used < time.time() - 3600
            if stale_tmp or (not p.name.startswith(".") and used < limit):
                freed += _remove_entry(p)
                entries += 1
    return {"entries": entries, "bytes": freed}


@contextlib.contextmanager
def cache_lock(
    root: Path, *, shared: bool, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Syncs share the cache; ``cache clean``/``prune`` wait for them and hold it alone.

    An flock on ``<cache>/.lock``: shared while a sync reads and fills entries, exclusive while
    entries are deleted, so a running sync never loses an entry it is linking from.
    """
    import fcntl

    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield  # a read-only cache: nobody can delete from it either
        return
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except OSError:
            if on_wait is not None:
                on_wait(f"waiting for other envmat processes using the cache {root}")
            fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)
