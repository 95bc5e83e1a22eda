"""A new venv's files placed while the rest of its wheels still download.

A sync into a venv that does not exist yet used to fetch every wheel first and only then make
the venv, build the manifest and place every file: on the ``large`` workload that last part is
~0.8 s in which one core works and the other waits (16,500 links, the manifest, the RECORDs).
``PlaceAhead`` does it per wheel instead, in a thread of its own, as each cache entry is filled
(``Cache.prepare``'s ``on_fill``): the venv is made first, then each wheel's part of the manifest
(``manifest.dist_files``) is computed and its cache files are linked into place. What remains for
the transaction (``execute.apply``) is what only the whole set decides: the generated files
(launchers, rewritten scripts, dist-info files, RECORDs, the state file) and the paths that
several wheels ship (the manifest's rule picks their source; a path placed from another wheel
is replaced then).

Nothing here is a half-made state anyone can mistake for a venv: the creation marker stands
beside the venv from before its first file until its first sync is complete, so a run killed
meanwhile leaves a venv the next run removes and makes again (``api._Engine.open``), and a failed
run removes it itself (``api._Engine.create``). Placement stops at the first error it meets; the
transaction then places what is left the usual way, and reports what is wrong.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

from .cache import CachedWheel, cache_key
from .fs import SPLIT_AT, Linker, in_two
from .manifest import DistManifest, TargetFile, dist_files
from .target import Target

#: the suffix of a file being placed by a copy or reflink, renamed into place once whole
_PARTIAL = ".envmat-partial"
#: files linked between two looks at whether finish() has begun
_STEP = 128


class PlaceAhead:
    """Makes the venv (``make_venv``), then places each submitted wheel's cache files in it."""

    def __init__(
        self,
        venv: str,
        target: Target,
        python: str,
        linker: Linker,
        make_venv: Callable[[], None],
    ) -> None:
        self._root = venv.rstrip("/") + "/"
        self._target = target
        self._python = python
        self._linker = linker
        self._make_venv = make_venv
        self._queue: queue.SimpleQueue[CachedWheel | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._placing = True
        #: each handled wheel's part of the manifest, by cache key (``build_manifest`` reuses it)
        self.parts: dict[str, tuple[DistManifest, list[TargetFile]]] = {}
        #: venv-relative path -> the cache file placed there
        self.placed: dict[str, str] = {}
        self._dirs: set[str] = set()
        #: set by finish(): the thread then lists what it has not placed in _left
        self._draining = threading.Event()
        self._left: list[TargetFile] = []
        self._thread = threading.Thread(target=self._run, name="envmat-place-ahead")
        self._thread.start()

    def submit(self, cached: CachedWheel) -> None:
        """Place ``cached``'s files (called from the thread that filled its cache entry)."""
        self._queue.put(cached)

    def finish(self) -> None:
        """Wait for every submitted wheel; raise why the venv could not be made, if it could not.

        The thread places while downloads hold the GIL, so it usually has a backlog when the
        last wheel is filled (on ``large``, 100-200 ms of links on one core while the other
        waited). From here on it only lists what is left, and two threads link that (the link
        and mkdir calls run without the GIL: fs.in_two)."""
        self._draining.set()
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        left, self._left = self._left, []
        if not (left and self._placing):
            return
        try:
            if len(left) < SPLIT_AT:
                self._link(left)
            else:
                half = len(left) // 2
                # contiguous halves: each thread mostly in directories of its own
                in_two(lambda part: self._link(part[0]), [[left[:half], left[half:]]])
        except Exception:
            self._placing = False  # the transaction places the rest (see _run)

    def _run(self) -> None:
        try:
            self._make_venv()
        except BaseException as e:  # raised by finish(), in the thread that waits for it
            self._error = e
            self._placing = False
        while True:
            cached = self._queue.get()
            if cached is None:
                return
            if not self._placing:
                continue
            try:
                self._place(cached)
            except Exception:
                # a full disk, a link the filesystem refuses, an entry gone: the transaction
                # places the rest and meets (and reports) the cause itself
                self._placing = False

    def _place(self, cached: CachedWheel) -> None:
        assert cached.dist.wheel is not None
        dm, files = dist_files(cached, self._target, self._python)
        self.parts[cache_key(cached.dist.wheel)] = (dm, files)
        if self._draining.is_set():
            self._left += files
            return
        for start in range(0, len(files), _STEP):
            if self._draining.is_set():  # finish() is waiting: it links the rest in two threads
                self._left += files[start:]
                return
            self._link(files[start : start + _STEP])

    def _link(self, files: list[TargetFile]) -> None:
        root, dirs, placed, linker = self._root, self._dirs, self.placed, self._linker
        for tf in files:
            src = tf.link
            if src is None or tf.path in placed:
                continue  # generated bytes, or a path another wheel ships too: the transaction's
            parent = tf.path.rpartition("/")[0]
            if parent not in dirs:
                os.makedirs(root + parent, exist_ok=True)
                while parent and parent not in dirs:
                    dirs.add(parent)
                    parent = parent.rpartition("/")[0]
            final = root + tf.path
            try:
                if not linker.place(src, final, tf.executable, atomic_only=True):
                    # a copy or reflink appears whole only by rename (O_EXCL: a second thread
                    # staging the same path meets FileExistsError)
                    linker.place(src, final + _PARTIAL, tf.executable)
                    if os.path.lexists(final):
                        os.unlink(final + _PARTIAL)
                        continue
                    os.rename(final + _PARTIAL, final)
            except FileExistsError:
                continue  # the venv itself has it (bin/python?), or the other thread placed it
            placed[tf.path] = src
