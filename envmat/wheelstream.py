"""Unpacking a wheel while it downloads, proven against the whole archive before it is used.

A cold sync otherwise downloads every wheel and only then unpacks it: the biggest wheels end
their downloads last, and their unpacking then makes the sync's critical path. ``StreamUnpacker``
reads the members as their bytes arrive, by their local file headers (APPNOTE.TXT 4.3.7), and
writes each one, inflated, hashed and CRC-checked, into a work directory.

Local headers are not what zip readers trust: the central directory at the archive's end is.
So nothing streamed is used until ``finish`` has checked, once the whole archive has come and
its hash was verified, that the central directory (kept as it streamed, with the dist-info's
metadata files: the archive is not read again) lists exactly the streamed members (same
offsets, names, flags, method, sizes and CRC-32), that the directory starts where the last
member ended and the end record where the directory ends (APPNOTE 4.3.12, 4.3.16), and that
every file matches its RECORD row. Anything unusual (a data descriptor, ZIP64 sizes, a
member whose place depends on metadata that disagrees with the guess made while streaming, any
error at all) makes the streamed copy worthless, never wrong: ``finish`` returns None and the
caller unpacks the archive with ``wheel.unpack_wheel``, which then also reports what is wrong.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from typing import Any

from .record import b64_digest
from .wheel import (
    _CHUNK,
    _DEFLATED,
    _FLAG_ENCRYPTED,
    _FLAG_PATCHED,
    _FLAG_STRONG_ENCRYPTION,
    _FLAG_UTF8,
    _GENERATED_DIST_INFO,
    _LOCAL_HEADER,
    _LOCAL_HEADER_SIZE,
    _LOCAL_SIGNATURE,
    _STORED,
    _ZIP_IXUSR,
    METADATA_FILES,
    SCHEMES,
    WheelFile,
    WheelIndex,
    _index,
    _read_metadata,
    _write_all,
    inflate_library,
    safe_relpath,
)

_CENTRAL_SIGNATURE = b"PK\x01\x02"  # APPNOTE 4.3.12
_DATA_DESCRIPTOR = 0x0008  # general purpose bit 3: sizes and CRC follow the data
_ROOT = "_root"  # streamed root members wait here until WHEEL says purelib or platlib
_HEADER = struct.Struct(_LOCAL_HEADER)
_LENGTHS = struct.Struct("<HH")  # a local header's name and extra field lengths, at 26
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # a central directory header, APPNOTE 4.3.12
_END = struct.Struct("<4s4H2LH")  # the end of central directory record, APPNOTE 4.3.16
_END_SIGNATURE = b"PK\x05\x06"
#: the most of the archive's tail (central directory and end record) or of one metadata file
#: kept in memory; past it, the archive is unpacked the proven way
_KEEP_LIMIT = 64 << 20


class _GiveUp(Exception):
    pass


class _Member:
    """One member as streamed: its local header's fields and what its data turned out to be."""

    __slots__ = (
        "crc",
        "csize",
        "fd",
        "first",
        "flags",
        "got_crc",
        "inflater",
        "keep",
        "left",
        "method",
        "mtime",
        "name",
        "offset",
        "rel",
        "sha",
        "size",
        "usize",
        "where",
    )  # fmt: skip

    def __init__(
        self, offset: int, name: str, rel: str, fields: tuple[Any, ...], where: str | None
    ) -> None:
        _, _, self.flags, self.method, _, _, self.crc, self.csize, self.usize, _, _ = fields
        self.offset = offset
        self.name = name
        self.rel = rel  # safe_relpath(name)
        #: the bytes of a dist-info metadata file (_read_metadata reads them)
        self.keep: bytearray | None = None
        self.where = where  # path under the work directory; None: a directory or not written
        self.left = self.csize
        self.fd = -1
        self.inflater: Any = None
        self.sha = hashlib.sha256()
        self.got_crc = 0
        self.size = 0
        self.first = b""
        self.mtime = 0


class StreamUnpacker:
    """``feed`` it the archive's bytes in order; then ``finish`` (or ``discard``) it."""

    def __init__(self, dest: str) -> None:
        self.dest = dest
        self.members: list[_Member] = []
        self.central_offset: int | None = None  # where the central directory began
        self.tail = bytearray()  # the archive from there on
        #: the dist-info metadata files, by member name
        self.kept: dict[str, bytes] = {}
        self.gave_up = False
        self._pos = 0  # archive offset of the next byte fed
        self._head = bytearray()
        self._cur: _Member | None = None
        self._made: set[str] = set()
        self._lib = inflate_library()

    def feed(self, chunk: bytes) -> None:
        if self.gave_up:
            return
        if self.central_offset is not None:
            self.tail += chunk
            if len(self.tail) > _KEEP_LIMIT:
                self._give_up()
            return
        try:
            self._feed(memoryview(chunk))
        except Exception:  # whatever it was, the archive is unpacked the proven way instead
            self._give_up()

    def discard(self) -> None:
        """Remove everything streamed (a failed or retried download, or a wasted copy)."""
        self._give_up()
        shutil.rmtree(self.dest, ignore_errors=True)

    def _give_up(self) -> None:
        self.gave_up = True
        cur, self._cur = self._cur, None
        if cur is not None and cur.fd >= 0:
            os.close(cur.fd)

    def _feed(self, view: memoryview) -> None:
        i, n = 0, len(view)
        while i < n:
            cur = self._cur
            if cur is not None:
                take = min(cur.left, n - i)
                self._data(cur, view[i : i + take])
                i += take
                self._pos += take
                cur.left -= take
                if not cur.left:
                    self._close(cur)
                continue
            head = self._head
            if not head and n - i >= _LOCAL_HEADER_SIZE and view[i : i + 4] == _LOCAL_SIGNATURE:
                # the usual case: the whole local header is in this chunk
                name_len, extra_len = _LENGTHS.unpack_from(view, i + 26)
                total = _LOCAL_HEADER_SIZE + name_len + extra_len
                if n - i >= total:
                    self._open(bytes(view[i : i + total]), self._pos)
                    i += total
                    self._pos += total
                    continue
            if len(head) < _LOCAL_HEADER_SIZE:
                want = _LOCAL_HEADER_SIZE
            else:
                name_len, extra_len = _LENGTHS.unpack_from(head, 26)
                want = _LOCAL_HEADER_SIZE + name_len + extra_len
            take = min(want - len(head), n - i)
            head += view[i : i + take]
            i += take
            self._pos += take
            if len(head) == _LOCAL_HEADER_SIZE:
                if head[:4] == _CENTRAL_SIGNATURE:
                    self.central_offset = self._pos - len(head)
                    self.tail = head + view[i:]
                    return
                if head[:4] != _LOCAL_SIGNATURE:
                    raise _GiveUp
            if len(head) < _LOCAL_HEADER_SIZE:
                continue
            name_len, extra_len = _LENGTHS.unpack_from(head, 26)
            if len(head) == _LOCAL_HEADER_SIZE + name_len + extra_len:
                self._open(bytes(head), self._pos - len(head))
                head.clear()

    def _open(self, header: bytes, offset: int) -> None:
        fields = _HEADER.unpack_from(header)
        flags, method, csize, usize, name_len = (
            fields[2],
            fields[3],
            fields[7],
            fields[8],
            fields[9],
        )
        if (
            flags & (_DATA_DESCRIPTOR | _FLAG_ENCRYPTED | _FLAG_PATCHED | _FLAG_STRONG_ENCRYPTION)
            or method not in (_STORED, _DEFLATED)
            or 0xFFFFFFFF in (csize, usize)  # ZIP64 sizes live in the extra field
        ):
            raise _GiveUp
        raw = header[_LOCAL_HEADER_SIZE : _LOCAL_HEADER_SIZE + name_len]
        # (ASCII reads the same in both, and its codec is the fast one)
        name = raw.decode("ascii" if raw.isascii() else "utf-8" if flags & _FLAG_UTF8 else "cp437")
        rel = safe_relpath(name)
        if rel is None:
            raise _GiveUp
        where = _streamed_path(name, rel)
        member = _Member(offset, name, rel, fields, where)
        top, _, rest = rel.partition("/")
        if top.endswith(".dist-info") and rest in METADATA_FILES:
            if name in self.kept:
                raise _GiveUp  # twice: the proven path says which one counts
            member.keep = bytearray()
        self.members.append(member)
        if where is not None:
            path = f"{self.dest}/{where}"
            parent = path.rpartition("/")[0]
            if parent not in self._made:
                os.makedirs(parent, exist_ok=True)
                self._made.add(parent)
            # O_EXCL: two members for one path are an error the proven path reports
            member.fd = os.open(path, _NEW_FILE, 0o644)
        if method == _DEFLATED:
            member.inflater = self._lib.decompressobj(-15)  # raw deflate, APPNOTE 4.4.5
        self._cur = member
        if not member.left:
            self._close(member)

    def _data(self, m: _Member, data: memoryview) -> None:
        if m.inflater is None:
            self._out(m, data)
            return
        pending: memoryview | bytes = data
        while pending:
            # at most _CHUNK out per call, and never more than one byte past the size the
            # header announces: a member cannot make this buffer or the file balloon
            out = m.inflater.decompress(pending, min(_CHUNK, m.usize - m.size + 1))
            self._out(m, out)
            pending = m.inflater.unconsumed_tail
            if m.size > m.usize:
                raise _GiveUp

    def _out(self, m: _Member, out: bytes | memoryview) -> None:
        if not out:
            return
        m.size += len(out)
        if m.size > m.usize:
            raise _GiveUp
        m.sha.update(out)
        m.got_crc = self._lib.crc32(out, m.got_crc)
        if m.keep is not None:
            m.keep += out
            if len(m.keep) > _KEEP_LIMIT:
                raise _GiveUp
        if len(m.first) < 8:
            m.first += bytes(out[: 8 - len(m.first)])
        if m.fd >= 0:
            _write_all(m.fd, out)

    def _close(self, m: _Member) -> None:
        self._cur = None
        if m.inflater is not None:
            rest = m.inflater.flush()
            if rest:
                self._out(m, rest)
            if not m.inflater.eof or m.inflater.unused_data:
                raise _GiveUp
            m.inflater = None
        if m.size != m.usize or m.got_crc != m.crc:
            raise _GiveUp
        if m.keep is not None:
            self.kept[m.name] = bytes(m.keep)
            m.keep = None
        if m.fd >= 0:
            st = os.fstat(m.fd)
            if st.st_mode & 0o7777 != 0o644:
                os.fchmod(m.fd, 0o644)  # the umask's doing; executables get 0o755 in finish
            m.mtime = st.st_mtime_ns  # fchmod and chmod leave it
            os.close(m.fd)
            m.fd = -1


def _streamed_path(name: str, rel: str) -> str | None:
    """Where a member is written before the metadata is known (None: not written).

    ``<x>.data/<scheme>/<path>`` goes to ``<scheme>/<path>`` and anything else under ``_root/``
    (renamed to purelib or platlib by ``finish``); the files the installer writes itself
    (RECORD, INSTALLER, ... of a ``.dist-info``) and directory entries are not written.
    ``finish`` checks every guess against the metadata. ``rel`` is ``safe_relpath(name)``.
    """
    if name.endswith("/"):
        return None
    top, _, rest = rel.partition("/")
    if top.endswith(".dist-info") and rest in _GENERATED_DIST_INFO:
        return None
    if top.endswith(".data"):
        scheme, _, spath = rest.partition("/")
        if scheme in SCHEMES and spath:
            return f"{scheme}/{spath}"
    return f"{_ROOT}/{rel}"


def finish(stream: StreamUnpacker, archive_path: str, filename: str) -> WheelIndex | None:
    """The index of the streamed work directory, once proven equal to what
    ``unpack_wheel(archive_path)`` would make; None (and the work directory removed) when it
    cannot be."""
    try:
        index = _prove(stream, archive_path, filename)
    except Exception:
        index = None
    if index is None:
        stream.discard()
    return index


def _central(tail: bytes | bytearray, start: int) -> list[tuple[Any, ...]] | None:
    """The central directory's entries (header offset, name, flags, method, CRC-32, sizes,
    external attributes) when ``tail`` (the archive from ``start`` on) is exactly that
    directory and the end record, and describes a plain zip (no ZIP64, one disk); None
    otherwise."""
    end = tail.rfind(_END_SIGNATURE, max(0, len(tail) - _END.size - 0xFFFF))
    if end < 0 or end + _END.size > len(tail):
        return None
    _, disk, cd_disk, on_disk, count, cd_size, cd_offset, comment_len = _END.unpack_from(tail, end)
    if (
        end + _END.size + comment_len != len(tail)
        or disk
        or cd_disk
        or on_disk != count
        or cd_offset != start  # (ZIP64 archives say 0xFFFFFFFF here)
        or cd_size != end
    ):
        return None
    entries = []
    pos = 0
    for _ in range(count):
        if pos + _CENTRAL.size > end:
            return None
        f = _CENTRAL.unpack_from(tail, pos)
        if f[0] != _CENTRAL_SIGNATURE:
            return None
        name_start = pos + _CENTRAL.size
        raw = bytes(tail[name_start : name_start + f[12]])
        name = raw.decode("utf-8" if f[5] & _FLAG_UTF8 else "cp437")
        if "\0" in name:
            return None  # zipfile cuts such a name short: leave it to the proven path
        # header offset, name, flags, method, CRC-32, compressed and file size, attributes
        entries.append((f[18], name, f[5], f[6], f[9], f[10], f[11], f[17]))
        pos = name_start + f[12] + f[13] + f[14]
    return entries if pos == end else None


def _prove(stream: StreamUnpacker, archive_path: str, filename: str) -> WheelIndex | None:
    if stream.gave_up or stream.central_offset is None or stream._cur is not None:
        return None
    entries = _central(stream.tail, stream.central_offset)
    if entries is None:
        return None
    streamed = {m.offset: m for m in stream.members}
    if len(streamed) != len(stream.members) or len(entries) != len(streamed):
        return None
    for offset, name, flags, method, crc, csize, usize, _ in entries:
        m = streamed.get(offset)
        if (
            m is None
            or m.name != name
            or m.flags != flags
            or m.method != method
            or m.csize != csize
            or m.usize != usize
            or m.crc != crc
        ):
            return None
    files_in = [e for e in entries if not e[1].endswith("/")]
    names = [e[1] for e in files_in]
    listed = set(names)

    def read(name: str) -> bytes:
        if name not in listed:
            raise KeyError(name)
        return stream.kept[name]  # (a KeyError here too: finish gives up)

    meta = _read_metadata(archive_path, names, read, filename)
    place = meta.placer(archive_path)
    files: list[WheelFile] = []
    stamps: list[int] = []
    executables: list[str] = []
    for offset, name, _, _, _, _, _, external_attr in files_in:
        m = streamed[offset]
        placed = place(name, m.rel)
        if placed is None:
            if m.where is not None:
                return None
            continue
        scheme, spath = placed
        top = m.rel.partition("/")[0]
        if m.where != (f"{scheme}/{spath}" if top == meta.data_dir else f"{_ROOT}/{spath}"):
            return None  # streamed to another place than the metadata says
        entry = meta.record.get(name)
        if entry is None or not entry.hash or entry.hash[:7].lower() != "sha256=":
            return None  # not in RECORD, or hashed otherwise: the proven path decides
        raw = m.sha.digest()
        # RECORD's own form (PEP 376: urlsafe base64, no padding); another spelling of the
        # same digest only costs the streamed copy (the proven path decodes it)
        if b64_digest(raw) != entry.hash[7:]:
            return None
        digest = raw.hex()
        if entry.size is not None and entry.size != m.size:
            return None
        executable = bool(external_attr & _ZIP_IXUSR) or scheme == "scripts"
        if executable:
            executables.append(m.where)
        files.append(
            WheelFile(
                scheme=scheme,
                path=spath,
                size=m.size,
                sha256=digest,
                executable=executable,
                rewrite_shebang=scheme == "scripts" and m.first.startswith(b"#!python"),
            )
        )
        stamps.append(m.mtime)
    os.makedirs(stream.dest, exist_ok=True)  # (an archive of directories only wrote nothing)
    root = f"{stream.dest}/{_ROOT}"
    final_root = f"{stream.dest}/{meta.root_scheme}"
    if os.path.isdir(root):
        if os.path.lexists(final_root):
            return None  # .data/<root scheme> members too: placed by the proven path
        os.rename(root, final_root)
    prefix = f"{_ROOT}/"
    for where in executables:
        if where.startswith(prefix):
            where = f"{meta.root_scheme}/{where[len(prefix) :]}"
        # chmod keeps the mtime recorded in stamps
        os.chmod(f"{stream.dest}/{where}", 0o755)
    return _index(meta, files, stamps, [], filename, archive_path)
