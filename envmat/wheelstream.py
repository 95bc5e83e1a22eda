"""Unpacking a wheel while it downloads, proven against the whole archive before it is used.

A cold sync otherwise downloads every wheel and only then unpacks it: the biggest wheels end
their downloads last, and their unpacking then makes the sync's critical path. ``StreamUnpacker``
reads the members as their bytes arrive, by their local file headers (APPNOTE.TXT 4.3.7), and
writes each one, inflated, hashed and CRC-checked, into a work directory.

Local headers are not what zip readers trust: the central directory at the archive's end is.
So nothing streamed is used until ``finish`` has checked, on the complete (and hash-verified)
archive, that the central directory lists exactly the streamed members (same offsets, names,
flags, method, sizes and CRC-32), that the directory starts where the last member ended, and
that every file matches its RECORD row. Anything unusual (a data descriptor, ZIP64 sizes, a
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

from .record import record_hash_to_hex
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
    SCHEMES,
    WheelFile,
    WheelIndex,
    _Archive,
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
        "left",
        "method",
        "mtime",
        "name",
        "offset",
        "sha",
        "size",
        "usize",
        "where",
    )  # fmt: skip

    def __init__(self, offset: int, name: str, fields: tuple[Any, ...], where: str | None) -> None:
        _, _, self.flags, self.method, _, _, self.crc, self.csize, self.usize, _, _ = fields
        self.offset = offset
        self.name = name
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
        self.gave_up = False
        self._pos = 0  # archive offset of the next byte fed
        self._head = bytearray()
        self._cur: _Member | None = None
        self._made: set[str] = set()
        self._lib = inflate_library()

    def feed(self, chunk: bytes) -> None:
        if self.gave_up or self.central_offset is not None:
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
            if len(head) < _LOCAL_HEADER_SIZE:
                want = _LOCAL_HEADER_SIZE
            else:
                name_len, extra_len = struct.unpack_from("<HH", head, 26)
                want = _LOCAL_HEADER_SIZE + name_len + extra_len
            take = min(want - len(head), n - i)
            head += view[i : i + take]
            i += take
            self._pos += take
            if len(head) == _LOCAL_HEADER_SIZE:
                if head[:4] == _CENTRAL_SIGNATURE:
                    self.central_offset = self._pos - len(head)
                    return
                if head[:4] != _LOCAL_SIGNATURE:
                    raise _GiveUp
            if len(head) < _LOCAL_HEADER_SIZE:
                continue
            name_len, extra_len = struct.unpack_from("<HH", head, 26)
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
        name = raw.decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
        where = _streamed_path(name)
        member = _Member(offset, name, fields, where)
        self.members.append(member)
        if where is not None:
            path = f"{self.dest}/{where}"
            parent = path.rpartition("/")[0]
            if parent not in self._made:
                os.makedirs(parent, exist_ok=True)
                self._made.add(parent)
            # O_EXCL: two members for one path are an error the proven path reports
            member.fd = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644
            )
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
        if m.fd >= 0:
            st = os.fstat(m.fd)
            if st.st_mode & 0o7777 != 0o644:
                os.fchmod(m.fd, 0o644)  # the umask's doing; executables get 0o755 in finish
            m.mtime = st.st_mtime_ns  # fchmod and chmod leave it
            os.close(m.fd)
            m.fd = -1


def _streamed_path(name: str) -> str | None:
    """Where a member is written before the metadata is known (None: not written).

    ``<x>.data/<scheme>/<path>`` goes to ``<scheme>/<path>`` and anything else under ``_root/``
    (renamed to purelib or platlib by ``finish``); the files the installer writes itself
    (RECORD, INSTALLER, ... of a ``.dist-info``) and directory entries are not written.
    ``finish`` checks every guess against the metadata.
    """
    rel = safe_relpath(name)
    if rel is None:
        raise _GiveUp
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


def _prove(stream: StreamUnpacker, archive_path: str, filename: str) -> WheelIndex | None:
    import zipfile

    if stream.gave_up or stream.central_offset is None or stream._cur is not None:
        return None
    with open(archive_path, "rb") as fp:
        zf = zipfile.ZipFile(fp)
        all_infos = zf.infolist()
        if getattr(zf, "start_dir", None) != stream.central_offset:
            return None
        streamed = {m.offset: m for m in stream.members}
        if len(streamed) != len(stream.members) or len(all_infos) != len(streamed):
            return None
        for info in all_infos:
            m = streamed.get(info.header_offset)
            if (
                m is None
                or m.name != info.orig_filename
                or m.flags != info.flag_bits
                or m.method != info.compress_type
                or m.csize != info.compress_size
                or m.usize != info.file_size
                or m.crc != info.CRC
            ):
                return None
        archive = _Archive(archive_path, fp.fileno(), all_infos, stream.central_offset)
        try:
            infos = [i for i in all_infos if not i.is_dir()]
            meta = _read_metadata(archive, zf, infos, filename)
        finally:
            archive.close()
    place = meta.placer(archive_path)
    files: list[WheelFile] = []
    stamps: list[int] = []
    executables: list[str] = []
    for info in infos:
        m = streamed[info.header_offset]
        placed = place(info.filename)
        if placed is None:
            if m.where is not None:
                return None
            continue
        scheme, spath = placed
        top = (safe_relpath(info.filename) or "").partition("/")[0]
        if m.where != (f"{scheme}/{spath}" if top == meta.data_dir else f"{_ROOT}/{spath}"):
            return None  # streamed to another place than the metadata says
        entry = meta.record.get(info.filename)
        if entry is None or not entry.hash or entry.hash[:7].lower() != "sha256=":
            return None  # not in RECORD, or hashed otherwise: the proven path decides
        if record_hash_to_hex(entry.hash)[1] != m.sha.hexdigest():
            return None
        if entry.size is not None and entry.size != m.size:
            return None
        executable = bool(info.external_attr & _ZIP_IXUSR) or scheme == "scripts"
        if executable:
            executables.append(m.where)
        files.append(
            WheelFile(
                scheme=scheme,
                path=spath,
                size=m.size,
                sha256=m.sha.hexdigest(),
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
