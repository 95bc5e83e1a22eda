"""The shared cache: wheels content-addressed by their locked hash, and unpacked wheel trees.

Layout (DESIGN.md §3)::

    archives-v1/<key>.whl          a verified wheel (downloads only; local paths are read in place)
    unpacked-v1/<key>/index.json   the wheel's WheelIndex, written before the directory is renamed in
    unpacked-v1/<key>/<scheme>/…   its files, laid out by install scheme
    interpreters/<key>.json        answers of target interpreters (target.py)

Every entry is built in a sibling work directory and renamed into place, so a reader sees a whole
entry or none, and processes filling one entry at once all succeed (the loser discards its copy).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from attrs import frozen

from .errors import EnvmatError
from .fetch import check_file, hash_local, redact
from .lock.model import FileRef, LockedDist
from .wheel import WheelIndex, unpack_wheel

_SUPPORTED = ("sha256", "sha512", "sha384", "sha3_256", "blake2b", "sha224")


def default_cache_dir() -> Path:
    env = os.environ.get("ENVMAT_CACHE_DIR")
    if env:
        return Path(env)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "envmat"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "envmat"


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
        self, root: Path, *, offline: bool = False, jobs: int = 8, timeout: float = 30.0
    ) -> None:
        self.root = root
        self.offline = offline
        self.jobs = jobs
        self.timeout = timeout
        self._fetcher: object | None = None

    def unpacked_dir(self, key: str) -> Path:
        return self.root / "unpacked-v1" / key

    def archive_path(self, key: str) -> Path:
        return self.root / "archives-v1" / f"{key}.whl"

    def _work_dir(self, kind: str) -> Path:
        d = self.root / kind / f".tmp-{uuid.uuid4().hex}"
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
            if self.cached_index(key) is not None or self.archive_path(key).is_file():
                continue
            if d.wheel.path and os.path.isfile(d.wheel.path):
                continue
            out.append(d)
        return out

    def prepare(self, dists: Sequence[LockedDist]) -> list[CachedWheel]:
        """Every dist's wheel unpacked in the cache, fetching and verifying what is missing."""
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
            index = self.cached_index(key)
            if index is not None:
                results[i] = CachedWheel(dist=d, index=index, root=self.unpacked_dir(key))
            else:
                todo.append((i, d))
        if todo:
            errors: list[EnvmatError] = []
            with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(todo)))) as pool:
                futures = [(i, pool.submit(self._fill, d)) for i, d in todo]
                for i, fut in futures:
                    try:
                        results[i] = fut.result()
                    except EnvmatError as e:
                        errors.append(e)
            if len(errors) == 1:
                raise errors[0]
            if errors:
                raise EnvmatError(
                    f"{len(errors)} locked files could not be fetched",
                    details=[e.message for e in errors],
                    hint=errors[0].hint,
                )
        return [r for r in results if r is not None]

    def _fill(self, dist: LockedDist) -> CachedWheel:
        ref = dist.wheel
        assert ref is not None
        key = cache_key(ref)
        downloaded = 0
        archive = self.archive_path(key)
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
            check_file(str(source), got, digests, ref.size, ref.hashes)
        elif archive.is_file():
            source = archive
        elif ref.url is not None:
            source = self._download(ref, archive)
            downloaded = ref.size or source.stat().st_size
        else:
            raise EnvmatError(
                f"{dist.name} has neither a path nor a url in the lock", context=[dist.key_path]
            )
        index = self._unpack(source, key, ref.filename)
        return CachedWheel(
            dist=dist, index=index, root=self.unpacked_dir(key), downloaded=downloaded
        )

    def _download(self, ref: FileRef, archive: Path) -> Path:
        from .fetch import Fetcher

        if self.offline:
            raise EnvmatError(f"--offline: {ref.filename} is not in the cache")
        if self._fetcher is None:
            self._fetcher = Fetcher(timeout=self.timeout)
        fetcher = self._fetcher
        assert isinstance(fetcher, Fetcher) and ref.url is not None
        work = self._work_dir("archives-v1")
        work.mkdir()
        tmp = work / "download"
        try:
            fetcher.download(ref.url, tmp, size=ref.size, hashes=ref.hashes)
            # only verified bytes enter the cache (DESIGN.md §3)
            os.replace(tmp, archive)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return archive

    def _unpack(self, wheel: Path, key: str, filename: str) -> WheelIndex:
        final = self.unpacked_dir(key)
        existing = self.cached_index(key)
        if existing is not None:
            return existing
        work = self._work_dir("unpacked-v1")
        try:
            index = unpack_wheel(wheel, work, filename)
            (work / "index.json").write_text(json.dumps(index.to_json(), separators=(",", ":")))
            try:
                os.rename(work, final)
            except OSError:
                # another process won the race, or a torn entry without index.json sits there
                if self.cached_index(key) is not None:
                    return self.cached_index(key)  # type: ignore[return-value]
                shutil.rmtree(final, ignore_errors=True)
                os.rename(work, final)
        except OSError as e:
            raise EnvmatError(
                f"cannot unpack {filename} into the cache {self.root}: {e.strerror or e}",
                hint="check free space and permissions of the cache directory (--cache-dir)",
            ) from None
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        return index
