"""Read a wheel (binary distribution format, PEP 427/491) and unpack it, checked against its RECORD.

Unpacking lays the files out by install scheme (``purelib/``, ``platlib/``, ``scripts/``,
``headers/``, ``data/``) and returns a ``WheelIndex``: every file with its scheme, size, mode and
sha256, plus what installation needs from the metadata (entry points, the dist-info name).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

from .errors import EnvmatError
from .record import RecordEntry, parse_record, record_hash_to_hex
from .scripts import safe_script_name

if TYPE_CHECKING:
    import mmap
    import zipfile

SCHEMES = ("purelib", "platlib", "scripts", "headers", "data")
# Files the installer writes itself (PEP 376/610/627); a wheel's own copies are not installed.
_GENERATED_DIST_INFO = frozenset(
    {"RECORD", "RECORD.jws", "RECORD.p7s", "INSTALLER", "REQUESTED", "direct_url.json"}
)
_DRIVE = re.compile(r"^[A-Za-z]:")
# a member's unix mode is the high 16 bits of its external attributes (APPNOTE 4.4.15, as
# written by Info-ZIP and zipfile with "version made by" = 3, unix)
_ZIP_IXUSR = stat.S_IXUSR << 16

# ZIP structures (PKWARE APPNOTE.TXT 6.3): a local file header (4.3.7) is 30 fixed bytes:
# signature, version needed, general purpose flags, compression method, time, date, CRC-32,
# compressed size, uncompressed size, file name length, extra field length; then the name and
# the extra field, then the member's data. Sizes and CRC are taken from the central directory,
# which is authoritative when bit 3 (data descriptor) is set.
_LOCAL_HEADER = "<4sHHHHHIIIHH"
_LOCAL_HEADER_SIZE = 30
_LOCAL_SIGNATURE = b"PK\x03\x04"
_STORED = 0  # APPNOTE 4.4.5
_DEFLATED = 8
# general purpose bits (APPNOTE 4.4.4): traditional encryption, compressed patched data,
# strong encryption, and the name is UTF-8 (else CP437, APPNOTE appendix D)
_FLAG_ENCRYPTED = 0x0001
_FLAG_PATCHED = 0x0020
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
# A member is inflated in one call when both its compressed and uncompressed sizes are at most
# _CHUNK (nearly all members are); bigger ones go through a decompressor fed _IN_CHUNK bytes
# and giving at most _CHUNK bytes per call, so a thread never holds more than a few MiB
# whatever a member's size. 1 MiB rather than more: several threads unpack at once, and
# glibc keeps freed multi-MiB buffers in each thread's arena (measured: 4 MiB pieces cost
# ~30 MB more peak RSS with 4 threads, and no measurable CPU).
_CHUNK = 1 << 20
_IN_CHUNK = 256 << 10
# Pages of the mapped archive that were read are given back every _DROP_EVERY bytes: they are
# file pages (they stay in the page cache) but count in the process's RSS while mapped.
_DROP_EVERY = 1 << 20


@frozen(kw_only=True)
class WheelFile:
    scheme: str
    #: POSIX path relative to the scheme directory
    path: str
    size: int
    sha256: str
    executable: bool
    #: a ``.data/scripts`` file starting with ``#!python`` whose shebang the installer rewrites
    rewrite_shebang: bool = False


@frozen(kw_only=True)
class WheelIndex:
    name: str  # as in METADATA
    version: str
    dist_info: str  # ``name-1.0.dist-info``
    root_is_purelib: bool
    files: tuple[WheelFile, ...]
    #: ``console_scripts`` / ``gui_scripts``: script name -> ``module:attr``
    console_scripts: Mapping[str, str]
    gui_scripts: Mapping[str, str]
    #: each unpacked file's mtime in the cache, to notice an edit through a hardlink cheaply
    stamps: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "dist_info": self.dist_info,
            "root_is_purelib": self.root_is_purelib,
            "console_scripts": dict(self.console_scripts),
            "gui_scripts": dict(self.gui_scripts),
            "files": [
                [f.scheme, f.path, f.size, f.sha256, int(f.executable), int(f.rewrite_shebang)]
                for f in self.files
            ],
            "stamps": list(self.stamps),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> WheelIndex:
        return cls(
            name=d["name"],
            version=d["version"],
            dist_info=d["dist_info"],
            root_is_purelib=d["root_is_purelib"],
            console_scripts=d["console_scripts"],
            gui_scripts=d["gui_scripts"],
            stamps=tuple(d.get("stamps", ())),
            files=tuple(
                WheelFile(
                    scheme=s, path=p, size=n, sha256=h, executable=bool(x), rewrite_shebang=bool(r)
                )
                for s, p, n, h, x, r in d["files"]
            ),
        )


def wheel_error(wheel: str, message: str, hint: str | None = None) -> EnvmatError:
    return EnvmatError(
        f"invalid wheel {Path(wheel).name}: {message}",
        context=[f"file: {wheel}"],
        hint=hint
        or "the wheel is broken or unsafe; ask its publisher for a fixed build, or lock another version",
    )


def safe_relpath(path: str) -> str | None:
    """The normalized POSIX form of a relative archive path, or None when it could escape.

    Absolute paths, drive letters, backslashes and ``..`` components are refused: a wheel's
    paths must stay inside the directory they are installed to (binary distribution format).
    """
    if not path or path[0] == "/" or "\\" in path or "\0" in path or _DRIVE.match(path):
        return None
    parts = path.split("/")
    if "" not in parts and "." not in parts and ".." not in parts:
        return path  # already normal: the common case, checked without building a new list
    parts = [p for p in parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def parse_entry_points(text: str) -> dict[str, dict[str, str]]:
    import configparser

    cp = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # names are case-sensitive
    cp.read_string(text)
    out: dict[str, dict[str, str]] = {}
    for section in ("console_scripts", "gui_scripts"):
        if cp.has_section(section):
            out[section] = {k.strip(): v.strip() for k, v in cp.items(section)}
    return out


def _split_top(name: str) -> tuple[str, str, str]:
    return name.partition("/")


def _find_dist_info(names: list[str], filename: str) -> str:
    # imported here (packaging.utils pulls in packaging.tags and logging): a sync whose wheels
    # are all unpacked in the cache never needs it
    from packaging.utils import canonicalize_name, parse_wheel_filename

    name, version, _, _ = parse_wheel_filename(filename)
    candidates = {
        top for top, sep, _ in map(_split_top, names) if sep and top.endswith(".dist-info")
    }
    for cand in candidates:
        stem = cand[: -len(".dist-info")]
        cname, _, _cver = stem.rpartition("-")
        if canonicalize_name(cname) == name:
            return cand
    raise wheel_error(filename, f"no {name}-{version}.dist-info directory")


def inflate_library() -> Any:
    """``zlib``'s decompressor and CRC-32, from ISA-L (``isal.isal_zlib``) when it is installed.

    ISA-L inflates the same deflate streams (RFC 1951) about twice as fast as zlib (measured on
    the medium workload's 37 MB: 0.07 s against 0.15 s), and inflating is the biggest share of
    the CPU a cold cache costs; ``isal_zlib`` has zlib's API (``decompressobj(wbits)``,
    ``max_length``, ``unconsumed_tail``, ``eof``, ``error``, ``crc32``). envmat depends on it only
    where it ships wheels; elsewhere zlib does the same work.
    """
    global _INFLATE
    if _INFLATE is None:
        try:
            from isal import isal_zlib

            _INFLATE = isal_zlib
        except ImportError:
            import zlib

            _INFLATE = zlib
    return _INFLATE


_INFLATE: Any = None


class _Archive:
    """A wheel's member data, read from a read-only mapping of the whole file.

    ``zipfile`` parses the central directory; the data is read here without its per-member
    file objects, seeks and locks: each member's local header is checked (APPNOTE 4.3.7) and
    its compressed bytes are a zero-copy slice of the mapping, inflated with ``zlib`` (or ISA-L, ``inflate_library``). Checks
    mirror ``zipfile.ZipFile.open`` (signature, name in the local header, flags) plus the
    sizes and CRC-32 of the central directory, and that no member's data runs into the next
    member's local header (overlapping members are how zip bombs multiply their output).

    The mapping relies on the archive not shrinking while it is read (reading a mapped page
    past a file's new end raises SIGBUS): archives in the cache are only ever replaced by a
    rename, and a local wheel named by a lock would have to be rewritten in place during the
    few milliseconds of its unpacking.
    """

    def __init__(
        self, wheel: str, fileno: int, infos: list[zipfile.ZipInfo], cd_start: int | None
    ) -> None:
        import mmap
        import struct

        self.wheel = wheel
        self.buf: mmap.mmap = mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
        self.view = memoryview(self.buf)
        self.size = len(self.buf)
        self._header = struct.Struct(_LOCAL_HEADER)
        self._zlib = inflate_library()
        # a member's data ends at or before the next local header, or the central directory
        ends = {self.size} if cd_start is None else {cd_start, self.size}
        bounds = sorted({i.header_offset for i in infos} | ends)
        self._limit = dict(zip(bounds, bounds[1:]))
        self._dropped = 0  # pages before this offset were given back
        self._can_drop = hasattr(self.buf, "madvise") and hasattr(mmap, "MADV_DONTNEED")
        self._madv_dontneed = getattr(mmap, "MADV_DONTNEED", 0)
        self._page = mmap.PAGESIZE

    def close(self) -> None:
        self.view.release()
        # BufferError: a slice is still referenced (by a traceback being raised); the mapping
        # goes away with it, and raising here would hide that exception
        with contextlib.suppress(BufferError):
            self.buf.close()

    def error(self, message: str) -> EnvmatError:
        return wheel_error(self.wheel, message)

    def span(self, info: zipfile.ZipInfo) -> tuple[int, int]:
        """Where ``info``'s compressed bytes are: ``[start, end)`` of the archive."""
        name = info.filename
        offset = info.header_offset
        if not 0 <= offset <= self.size - _LOCAL_HEADER_SIZE:
            raise self.error(f"the local header of {name!r} lies past the end of the archive")
        sig, _, flags, _, _, _, _, _, _, name_len, extra_len = self._header.unpack_from(
            self.buf, offset
        )
        if sig != _LOCAL_SIGNATURE:
            raise self.error(f"the local header of {name!r} is broken (bad signature)")
        start = offset + _LOCAL_HEADER_SIZE
        raw_name = self.buf[start : start + name_len]
        try:
            local_name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
        except UnicodeDecodeError:
            local_name = None
        if local_name != info.orig_filename:
            raise self.error(
                f"the local header of {name!r} names {raw_name!r} (a broken or ambiguous archive)"
            )
        start += name_len + extra_len
        end = start + info.compress_size
        if end > self._limit.get(offset, self.size):
            what = "the end of the archive" if end > self.size else "the next member"
            raise self.error(f"the data of {name!r} runs past {what}")
        if info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_PATCHED):
            raise self.error(f"{name!r} is encrypted or patched data, which wheels cannot hold")
        method = info.compress_type
        if method != _DEFLATED and method != _STORED:
            raise self.error(
                f"{name!r} uses ZIP compression method {method}; "
                "only stored (0) and deflate (8) are supported"
            )
        return start, end

    def is_big(self, info: zipfile.ZipInfo, start: int, end: int) -> bool:
        """Whether the member is copied in pieces (``copy_to``) rather than in one buffer."""
        return info.file_size > _CHUNK or end - start > _CHUNK

    def whole(self, info: zipfile.ZipInfo, start: int, end: int) -> bytes | memoryview:
        """The member's content in one buffer, checked against its size and CRC-32.

        A stored member is a slice of the mapping (no copy); a deflated one is inflated with
        its output capped, so the buffer is never bigger than the size the member claims.
        """
        size = info.file_size
        data: bytes | memoryview
        if info.compress_type == _STORED:
            self._check_stored(info, start, end)
            data = self.view[start:end]
        else:
            zlib = self._zlib
            # raw deflate (RFC 1951, no zlib header: wbits -15, APPNOTE 4.4.5); max_length one
            # byte more than announced, so a lying size cannot make the output balloon
            inflater = zlib.decompressobj(-15)
            try:
                data = inflater.decompress(self.view[start:end], size + 1)
            except zlib.error as e:
                raise self.error(
                    f"the compressed data of {info.filename!r} is corrupt ({e})"
                ) from None
            if len(data) != size or not inflater.eof:
                raise self._size_error(info, len(data), inflater.eof)
        if self._zlib.crc32(data) != info.CRC:
            raise self.error(f"{info.filename!r} does not match its CRC-32 (a corrupt archive)")
        return data

    def _check_stored(self, info: zipfile.ZipInfo, start: int, end: int) -> None:
        if end - start != info.file_size:
            raise self.error(
                f"{info.filename!r} is stored with {end - start} bytes "
                f"but the archive's directory says {info.file_size}"
            )

    def _size_error(self, info: zipfile.ZipInfo, got: int, eof: bool) -> EnvmatError:
        if got > info.file_size:
            return self.error(
                f"{info.filename!r} inflates to more than the {info.file_size} bytes "
                "the archive's directory says"
            )
        if not eof:
            return self.error(f"the compressed data of {info.filename!r} is truncated")
        return self.error(
            f"{info.filename!r} inflates to {got} bytes but the archive's directory says "
            f"{info.file_size}"
        )

    def copy_to(
        self, fd: int, info: zipfile.ZipInfo, start: int, end: int, hashes: list[Any]
    ) -> bytes:
        """Write a big member to ``fd`` piece by piece, updating ``hashes``; its first bytes.

        The same checks as ``whole``: size and CRC-32 of the central directory.
        """
        pieces = (
            self._stored_pieces(info, start, end)
            if info.compress_type == _STORED
            else self._inflated_pieces(info, start, end)
        )
        crc32 = self._zlib.crc32
        size = info.file_size
        got = 0
        crc = 0
        first = b""
        for piece in pieces:
            got += len(piece)
            if got > size:
                raise self._size_error(info, got, False)
            if len(first) < 8:
                first += piece[: 8 - len(first)]
            crc = crc32(piece, crc)
            for h in hashes:
                h.update(piece)
            _write_all(fd, piece)
        if got != size:
            raise self._size_error(info, got, True)
        if crc != info.CRC:
            raise self.error(f"{info.filename!r} does not match its CRC-32 (a corrupt archive)")
        return first

    def _stored_pieces(self, info: zipfile.ZipInfo, start: int, end: int) -> Iterator[memoryview]:
        self._check_stored(info, start, end)
        for pos in range(start, end, _CHUNK):
            stop = min(pos + _CHUNK, end)
            yield self.view[pos:stop]
            self.drop_pages(stop)

    def _inflated_pieces(self, info: zipfile.ZipInfo, start: int, end: int) -> Iterator[bytes]:
        """The inflated data in pieces of at most ``_CHUNK`` bytes.

        Input goes in ``_IN_CHUNK`` slices and ``max_length`` caps each output, so neither
        the input's unconsumed tail nor the output ever grows with the member.
        """
        zlib = self._zlib
        inflater = zlib.decompressobj(-15)
        view = self.view
        pos = start
        tail: bytes | memoryview = b""
        while not inflater.eof:
            if tail:
                chunk = tail
            elif pos < end:
                chunk = view[pos : min(pos + _IN_CHUNK, end)]
                pos += len(chunk)
            else:
                chunk = b""  # input used up: drain what the inflater still holds
            try:
                out = inflater.decompress(chunk, _CHUNK)
            except zlib.error as e:
                raise self.error(
                    f"the compressed data of {info.filename!r} is corrupt ({e})"
                ) from None
            tail = inflater.unconsumed_tail
            if out:
                yield out
                self.drop_pages(pos)
            elif not chunk:
                # no input left and nothing more came out: the stream ends early
                raise self.error(f"the compressed data of {info.filename!r} is truncated")

    def read(self, info: zipfile.ZipInfo) -> bytes:
        """A whole member as bytes (the metadata files), with the same checks."""
        start, end = self.span(info)
        return bytes(self.whole(info, start, end))

    def drop_pages(self, upto: int) -> None:
        """Give back the mapping's pages before ``upto`` once ``_DROP_EVERY`` bytes were read.

        ``MADV_DONTNEED`` on a read-only file mapping only unmaps: a later access reads the
        page again from the page cache, so dropping pages still needed is merely slower.
        """
        if upto - self._dropped < _DROP_EVERY or not self._can_drop:
            return
        upto -= upto % self._page
        self.buf.madvise(self._madv_dontneed, self._dropped, upto - self._dropped)
        self._dropped = upto


def _write_all(fd: int, data: bytes | memoryview) -> None:
    written = os.write(fd, data)
    if written < len(data):
        # a short write (a signal, or more than the kernel writes at once): write the rest
        rest = memoryview(data)[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]


def unpack_wheel(wheel_path: Path, dest: Path, filename: str | None = None) -> WheelIndex:
    """Extract ``wheel_path`` into ``dest`` (which must not exist yet), checking every file.

    Every archive member except the RECORD signatures must be listed in RECORD with the hash
    and size it has (binary distribution format, "The .dist-info directory"), and no path may
    leave its scheme directory. The index's ``stamps`` are the files' mtimes as written.
    """
    # imported here: a sync whose wheels are all unpacked in the cache never needs them
    import zipfile

    filename = filename or wheel_path.name
    wheel = str(wheel_path)
    try:
        fp = open(wheel_path, "rb")  # noqa: SIM115  # closed below, after the mapping
    except OSError as e:
        raise wheel_error(wheel, f"not a zip archive ({e})") from None
    with fp:
        try:
            zf = zipfile.ZipFile(fp)
        except (OSError, zipfile.BadZipFile) as e:
            raise wheel_error(wheel, f"not a zip archive ({e})") from None
        infos = zf.infolist()
        archive = _Archive(wheel, fp.fileno(), infos, getattr(zf, "start_dir", None))
        try:
            return _unpack(archive, zf, infos, dest, filename)
        finally:
            archive.close()


@frozen
class _Metadata:
    """What a wheel's dist-info says that unpacking needs (read and checked first)."""

    dist_info: str
    data_dir: str
    root_scheme: str
    record: dict[str, RecordEntry]
    entry_points: dict[str, dict[str, str]]
    name: str
    version: str

    def placer(self, wheel: str) -> Callable[[str, str | None], tuple[str, str] | None]:
        """Where each member goes: ``place(name, rel)`` is (scheme, path in it), or None for the
        files the installer writes itself; an unsafe path or unknown scheme is an error.
        ``rel`` is ``safe_relpath(name)`` when the caller has it already, else None."""
        dist_info, data_dir, root_scheme = self.dist_info, self.data_dir, self.root_scheme

        def place(name: str, rel: str | None) -> tuple[str, str] | None:
            if rel is None:
                rel = safe_relpath(name)
            if rel is None:
                raise wheel_error(wheel, f"unsafe path {name!r} (absolute, '..' or backslash)")
            top, _, rest = rel.partition("/")
            if top == dist_info and rest in _GENERATED_DIST_INFO:
                return None
            if top == data_dir:
                scheme, _, spath = rest.partition("/")
                if scheme not in SCHEMES or not spath:
                    raise wheel_error(wheel, f"{name!r} is not in a known .data scheme {SCHEMES}")
                return scheme, spath
            return root_scheme, rel

        return place


#: the dist-info files ``_read_metadata`` reads
METADATA_FILES = frozenset({"WHEEL", "RECORD", "METADATA", "entry_points.txt"})


def _read_metadata(
    wheel: str, names: list[str], read: Callable[[str], bytes], filename: str
) -> _Metadata:
    """The dist-info's WHEEL, RECORD, METADATA and entry points among the (non-directory)
    member ``names``, each checked; an EnvmatError names what is wrong. ``read(name)`` is a
    member's bytes (KeyError: there is no such member)."""
    import configparser
    from email.parser import HeaderParser

    dist_info = _find_dist_info(names, filename)
    try:
        # read's KeyError names the missing member
        meta = HeaderParser().parsestr(read(f"{dist_info}/WHEEL").decode("utf-8"))
        record_text = read(f"{dist_info}/RECORD").decode("utf-8")
        metadata = HeaderParser().parsestr(read(f"{dist_info}/METADATA").decode("utf-8"))
    except KeyError as e:
        raise wheel_error(wheel, f"missing {e.args[0]}") from None
    except UnicodeDecodeError as e:
        raise wheel_error(wheel, f"metadata is not UTF-8 ({e})") from None
    wheel_version = (meta.get("Wheel-Version") or "1.0").strip()
    if not wheel_version.startswith("1."):
        raise wheel_error(wheel, f"Wheel-Version {wheel_version} is not supported (1.x)")
    root_is_purelib = (meta.get("Root-Is-Purelib") or "true").strip().lower() == "true"
    try:
        record = {e.path: e for e in parse_record(record_text)}
    except ValueError as e:
        raise wheel_error(wheel, f"broken RECORD: {e}") from None
    for rpath in record:
        if safe_relpath(rpath) is None:
            raise wheel_error(wheel, f"RECORD lists an unsafe path {rpath!r}")

    entry_points: dict[str, dict[str, str]] = {}
    entry_points_name = f"{dist_info}/entry_points.txt"
    if entry_points_name in names:
        try:
            entry_points = parse_entry_points(read(entry_points_name).decode("utf-8"))
        except (configparser.Error, UnicodeDecodeError) as e:
            raise wheel_error(wheel, f"broken entry_points.txt: {e}") from None
        for scripts in entry_points.values():
            for script in scripts:
                if not safe_script_name(script):
                    raise wheel_error(wheel, f"entry_points.txt names an unsafe script {script!r}")
    from packaging.utils import parse_wheel_filename

    return _Metadata(
        dist_info=dist_info,
        data_dir=dist_info[: -len(".dist-info")] + ".data",
        root_scheme="purelib" if root_is_purelib else "platlib",
        record=record,
        entry_points=entry_points,
        name=(metadata.get("Name") or "").strip() or parse_wheel_filename(filename)[0],
        version=(metadata.get("Version") or "").strip() or str(parse_wheel_filename(filename)[1]),
    )


def _index(
    meta: _Metadata,
    files: list[WheelFile],
    stamps: list[int],
    problems: list[str],
    filename: str,
    wheel: str,
) -> WheelIndex:
    if problems:
        raise EnvmatError(
            f"invalid wheel {filename}: its files do not match its RECORD",
            context=[f"file: {wheel}"],
            details=problems[:20]
            + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else []),
            hint="the wheel was modified after it was built; rebuild it or lock another version",
        )
    return WheelIndex(
        name=meta.name,
        version=meta.version,
        dist_info=meta.dist_info,
        root_is_purelib=meta.root_scheme == "purelib",
        files=tuple(files),
        console_scripts=meta.entry_points.get("console_scripts", {}),
        gui_scripts=meta.entry_points.get("gui_scripts", {}),
        stamps=tuple(stamps),
    )


def _unpack(
    archive: _Archive,
    zf: zipfile.ZipFile,
    all_infos: list[zipfile.ZipInfo],
    dest: Path,
    filename: str,
) -> WheelIndex:
    wheel = archive.wheel
    infos = [i for i in all_infos if not i.is_dir()]
    # getinfo: the last of duplicate names wins, as in zipfile
    meta = _read_metadata(
        wheel, [i.filename for i in infos], lambda n: archive.read(zf.getinfo(n)), filename
    )
    place = meta.placer(wheel)
    files: list[WheelFile] = []
    stamps: list[int] = []
    problems: list[str] = []
    dest_dir = os.fspath(dest)
    os.makedirs(dest_dir)  # like mkdir(parents=True): an existing dest is an error
    made_dirs: set[str] = set()
    targets: set[str] = set()
    # Names used once per member, bound locally: a global or attribute lookup per member is a
    # measurable part of unpacking thousands of small files.
    record_get = meta.record.get
    sha256 = hashlib.sha256
    new_hash = hashlib.new
    guaranteed = hashlib.algorithms_guaranteed
    whole = archive.whole
    span = archive.span
    is_big = archive.is_big
    drop_pages = archive.drop_pages
    os_open = os.open
    os_mkdir = os.mkdir
    os_fstat = os.fstat
    os_close = os.close
    # O_EXCL: dest is new, so an existing file means two members for one path (checked
    # before) or something else writing there; never follow or overwrite it.
    open_flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for info in infos:
        name = info.filename
        placed = place(name, None)
        if placed is None:
            continue
        scheme, spath = placed
        entry = record_get(name)
        if entry is None or not entry.hash:
            problems.append(f"{name} is not in RECORD with a hash")
            continue
        algo, expected = record_hash_to_hex(entry.hash)
        if algo not in guaranteed:
            problems.append(f"{name}: RECORD hash algorithm {algo!r} is not supported")
            continue
        target = f"{dest_dir}/{scheme}/{spath}"
        if target in targets:
            raise wheel_error(
                wheel, f"{name!r} is in the archive twice (or unpacks to the same path)"
            )
        targets.add(target)
        parent = target.rpartition("/")[0]
        if parent not in made_dirs:
            try:
                os_mkdir(parent)
            except OSError:
                # missing parents, or made as a parent before; makedirs raises real errors
                os.makedirs(parent, exist_ok=True)
            made_dirs.add(parent)
        executable = bool(info.external_attr & _ZIP_IXUSR) or scheme == "scripts"
        mode = 0o755 if executable else 0o644
        start, end = span(info)
        sha = sha256()
        other = None if algo == "sha256" else new_hash(algo)
        fd = os_open(target, open_flags, mode)
        try:
            if is_big(info, start, end):
                first = archive.copy_to(
                    fd, info, start, end, [sha] if other is None else [sha, other]
                )
            else:
                data = whole(info, start, end)
                sha.update(data)
                if other is not None:
                    other.update(data)
                if data:
                    _write_all(fd, data)
                first = bytes(data[:8]) if scheme == "scripts" else b""
            st = os_fstat(fd)
            # The umask (or a default ACL) applies to os.open's mode: set it exactly as
            # intended when it changed it. fchmod leaves the mtime alone.
            if st.st_mode & 0o7777 != mode:
                os.fchmod(fd, mode)
        finally:
            os_close(fd)
        drop_pages(end)
        size = info.file_size  # the data was checked to have exactly this size
        digest = (sha if other is None else other).hexdigest()
        if digest != expected:
            problems.append(f"{name}: hash in RECORD {entry.hash} does not match the file")
        if entry.size is not None and entry.size != size:
            problems.append(f"{name}: size in RECORD {entry.size} but the file has {size} bytes")
        files.append(
            WheelFile(
                scheme=scheme,
                path=spath,
                size=size,
                sha256=digest if other is None else sha.hexdigest(),
                executable=executable,
                # binary distribution format: "#!python" in .data/scripts is rewritten
                rewrite_shebang=scheme == "scripts" and first.startswith(b"#!python"),
            )
        )
        stamps.append(st.st_mtime_ns)
    return _index(meta, files, stamps, problems, filename, wheel)
