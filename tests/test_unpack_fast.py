"""The direct (mmap + zlib) member reader of unpack_wheel: what it writes and what it refuses.

Every test runs with both inflaters: ISA-L (``isal``, a dependency where it ships wheels) and
the standard library's zlib (everywhere else).

Broken archives are made by patching real zip bytes at the offsets of PKWARE APPNOTE.TXT:
the central directory file header (4.3.12) and the local file header (4.3.7).
"""

from __future__ import annotations

import hashlib
import os
import random
import stat
import struct
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envmat import wheel
from envmat.errors import EnvmatError
from envmat.wheel import _CHUNK, _IN_CHUNK, unpack_wheel
from envmat.wheelstream import StreamUnpacker, finish

MakeWheel = Callable[..., Path]

# central directory file header (APPNOTE 4.3.12): field offsets
CD_FLAGS, CD_METHOD, CD_CRC, CD_CSIZE, CD_USIZE = 8, 10, 16, 20, 24
CD_NAME_LEN, CD_EXTRA_LEN, CD_COMMENT_LEN, CD_LOCAL_OFFSET, CD_NAME = 28, 30, 32, 42, 46
# local file header (APPNOTE 4.3.7)
LH_NAME_LEN, LH_EXTRA_LEN, LH_NAME = 26, 28, 30


@pytest.fixture(autouse=True, params=["isal", "zlib"])
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "isal":
        lib = pytest.importorskip("isal.isal_zlib", reason="isal has no wheel for this platform")
    else:
        import zlib as lib
    monkeypatch.setattr(wheel, "_INFLATE", lib)
    assert wheel.inflate_library() is lib
    return str(request.param)


def recompress(whl: Path, methods: dict[str, int]) -> None:
    """Rewrite ``whl`` with the named members stored with another compression method."""
    with zipfile.ZipFile(whl) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(whl, "w") as zf:
        for info, data in members:
            info.compress_type = methods.get(info.filename, info.compress_type)
            zf.writestr(info, data)


def central_entry(data: bytes | bytearray, name: str) -> int:
    """Offset of ``name``'s central directory header in the archive bytes."""
    with zipfile.ZipFile(_BytesFile(bytes(data))) as zf:
        pos = zf.start_dir  # type: ignore[attr-defined]
    while data[pos : pos + 4] == b"PK\x01\x02":
        n, m, k = struct.unpack_from("<HHH", data, pos + CD_NAME_LEN)
        if data[pos + CD_NAME : pos + CD_NAME + n].decode("utf-8") == name:
            return pos
        pos += CD_NAME + n + m + k
    raise AssertionError(f"{name} is not in the central directory")


def data_offset(data: bytes | bytearray, name: str) -> int:
    """Offset of ``name``'s (compressed) data: after its local header, name and extra field."""
    local = struct.unpack_from("<I", data, central_entry(data, name) + CD_LOCAL_OFFSET)[0]
    n, m = struct.unpack_from("<HH", data, local + LH_NAME_LEN)
    return local + LH_NAME + n + m


def patch(whl: Path, edit: Callable[[bytearray], None]) -> None:
    data = bytearray(whl.read_bytes())
    edit(data)
    whl.write_bytes(bytes(data))


def set_central(whl: Path, name: str, field: int, fmt: str, value: int) -> None:
    patch(whl, lambda d: struct.pack_into(fmt, d, central_entry(d, name) + field, value))


class _BytesFile:
    """A minimal seekable file over bytes, so zipfile can find the central directory."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos + (0, self.pos, len(self.data))[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        out, self.pos = self.data[self.pos : end], min(end, len(self.data))
        return out


def unpacked(out: Path) -> Iterator[tuple[str, bytes, int]]:
    for dirpath, _, names in os.walk(out):
        for name in names:
            p = Path(dirpath, name)
            yield p.relative_to(out).as_posix(), p.read_bytes(), stat.S_IMODE(p.stat().st_mode)


def noise(n: int, seed: int) -> bytes:
    """Bytes that deflate to about half: random words, so the compressed size is big too."""
    rng = random.Random(seed)
    words = [bytes(rng.randrange(97, 123) for _ in range(rng.randrange(2, 9))) for _ in range(4096)]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + bytes([rng.randrange(256)])
    return bytes(out[:n])


# --- what gets written ---------------------------------------------------------------------


def test_stored_and_deflated_members(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel(
        "mix", "1.0", files={"mix/a.py": "a = 1\n" * 100, "mix/b.bin": bytes(range(256)) * 3}
    )
    recompress(whl, {"mix/a.py": zipfile.ZIP_STORED})
    index = unpack_wheel(whl, tmp_path / "out")
    assert (tmp_path / "out/purelib/mix/a.py").read_bytes() == b"a = 1\n" * 100
    assert (tmp_path / "out/purelib/mix/b.bin").read_bytes() == bytes(range(256)) * 3
    by = {f.path: f for f in index.files}
    assert by["mix/a.py"].sha256 == hashlib.sha256(b"a = 1\n" * 100).hexdigest()
    assert by["mix/a.py"].size == 600


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_big_members_are_copied_in_pieces(
    make_wheel: MakeWheel, tmp_path: Path, method: int
) -> None:
    # bigger than one piece in and out; zeros inflate ~1000:1, so one input slice gives many
    # capped outputs (the unconsumed tail path); noise needs many input slices
    zeros = bytes(5 * _CHUNK + 12345)
    mixed = noise(3 * _CHUNK + 7, seed=1)
    whl = make_wheel(
        "big",
        "1.0",
        files={"big/zeros.bin": zeros, "big/mixed.bin": mixed},
        data={"scripts": {"tool": b"#!python\n" + mixed}},
    )
    recompress(whl, dict.fromkeys(["big/zeros.bin", "big/mixed.bin"], method))
    with zipfile.ZipFile(whl) as zf:
        assert zf.getinfo("big/mixed.bin").compress_size > 2 * _IN_CHUNK
    index = unpack_wheel(whl, tmp_path / "out")
    assert (tmp_path / "out/purelib/big/zeros.bin").read_bytes() == zeros
    assert (tmp_path / "out/purelib/big/mixed.bin").read_bytes() == mixed
    assert (tmp_path / "out/scripts/tool").read_bytes() == b"#!python\n" + mixed
    by = {f.path: f for f in index.files}
    assert by["big/zeros.bin"].sha256 == hashlib.sha256(zeros).hexdigest()
    assert by["big/mixed.bin"].size == len(mixed)
    # the shebang flag is read from the first piece of a big script too
    assert by["tool"].rewrite_shebang and by["tool"].executable


def test_modes_ignore_the_umask_and_stamps_match_stat(
    make_wheel: MakeWheel, tmp_path: Path
) -> None:
    whl = make_wheel(
        "modes",
        "1.0",
        files={"modes/lib.py": "x = 1\n", "modes/run.sh": "#!/bin/sh\n"},
        data={"scripts": {"tool": "#!python\n"}, "data": {"share/d.txt": "d"}},
        executable=["modes/run.sh"],
    )
    old = os.umask(0o077)
    try:
        index = unpack_wheel(whl, tmp_path / "out")
    finally:
        os.umask(old)
    modes = {path: mode for path, _, mode in unpacked(tmp_path / "out")}
    assert modes == {
        "purelib/modes/lib.py": 0o644,
        "purelib/modes/run.sh": 0o755,
        "purelib/modes-1.0.dist-info/METADATA": 0o644,
        "purelib/modes-1.0.dist-info/WHEEL": 0o644,
        "scripts/tool": 0o755,
        "data/share/d.txt": 0o644,
    }
    out = tmp_path / "out"
    assert index.stamps == tuple(os.stat(out / f.scheme / f.path).st_mtime_ns for f in index.files)
    assert len(index.stamps) == len(index.files) == 6


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    contents=st.lists(
        st.tuples(
            st.binary(max_size=3000), st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
        ),
        min_size=1,
        max_size=6,
    )
)
def test_unpacks_what_zipfile_reads(
    make_wheel: MakeWheel,
    tmp_path_factory: pytest.TempPathFactory,
    contents: list[tuple[bytes, int]],
) -> None:
    files = {f"p/f{i}.bin": data for i, (data, _) in enumerate(contents)}
    whl = make_wheel("prop", "1.0", files=files)
    recompress(whl, {f"p/f{i}.bin": method for i, (_, method) in enumerate(contents)})
    out = tmp_path_factory.mktemp("prop") / "out"
    index = unpack_wheel(whl, out)
    with zipfile.ZipFile(whl) as zf:
        for name in files:
            assert (out / "purelib" / name).read_bytes() == zf.read(name)
    assert {f.path: f.sha256 for f in index.files if f.path.startswith("p/")} == {
        name: hashlib.sha256(data).hexdigest() for name, data in files.items()
    }


# --- what gets refused ---------------------------------------------------------------------


def refused(whl: Path, out: Path) -> str:
    with pytest.raises(EnvmatError) as ei:
        unpack_wheel(whl, out)
    assert ei.value.message.startswith(f"invalid wheel {whl.name}: ")
    # unpacking while downloading never accepts what unpack_wheel refuses (wheelstream.py)
    streamed = StreamUnpacker(str(out.with_name(out.name + "-streamed")))
    data = whl.read_bytes()
    for i in range(0, len(data), 1000):
        streamed.feed(data[i : i + 1000])
    assert finish(streamed, str(whl), whl.name) is None
    assert not Path(streamed.dest).exists()
    return ei.value.message


@pytest.mark.parametrize(("method", "number"), [(zipfile.ZIP_BZIP2, 12), (zipfile.ZIP_LZMA, 14)])
def test_other_compression_methods_are_refused(
    make_wheel: MakeWheel, tmp_path: Path, method: int, number: int
) -> None:
    whl = make_wheel("comp", "1.0", files={"comp/a.py": "a = 1\n"})
    recompress(whl, {"comp/a.py": method})
    message = refused(whl, tmp_path / "out")
    assert f"'comp/a.py' uses ZIP compression method {number}" in message
    assert "only stored (0) and deflate (8)" in message


def test_corrupt_deflate_stream(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.py": "a = 1\n" * 50})
    # a first block header with BTYPE 11 (reserved, RFC 1951 3.2.3)
    patch(whl, lambda d: d.__setitem__(data_offset(d, "bad/a.py"), 0x07))
    message = refused(whl, tmp_path / "out")
    assert "the compressed data of 'bad/a.py' is corrupt" in message
    # each library's own words for the reserved block type
    assert "invalid block type" in message or "Invalid deflate block" in message


def test_corrupt_deflate_stream_in_a_big_member(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/big.bin": noise(2 * _CHUNK, seed=2)})
    patch(whl, lambda d: d.__setitem__(data_offset(d, "bad/big.bin"), 0x07))
    assert "the compressed data of 'bad/big.bin' is corrupt" in refused(whl, tmp_path / "out")


@pytest.mark.parametrize("size", [100, 2 * _CHUNK])
def test_truncated_deflate_stream(make_wheel: MakeWheel, tmp_path: Path, size: int) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.bin": noise(size, seed=3)})
    with zipfile.ZipFile(whl) as zf:
        csize = zf.getinfo("bad/a.bin").compress_size
    # the directory now ends the member's data half-way through its deflate stream
    set_central(whl, "bad/a.bin", CD_CSIZE, "<I", csize // 2)
    assert "the compressed data of 'bad/a.bin' is truncated" in refused(whl, tmp_path / "out")


def test_crc_mismatch_of_a_stored_member(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.py": "a = 1\n"})
    recompress(whl, {"bad/a.py": zipfile.ZIP_STORED})
    patch(whl, lambda d: d.__setitem__(data_offset(d, "bad/a.py"), ord("b")))
    assert "'bad/a.py' does not match its CRC-32" in refused(whl, tmp_path / "out")


@pytest.mark.parametrize("size", [10, 2 * _CHUNK])
def test_crc_mismatch_of_a_deflated_member(
    make_wheel: MakeWheel, tmp_path: Path, size: int
) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.bin": noise(size, seed=4)})
    with zipfile.ZipFile(whl) as zf:
        crc = zf.getinfo("bad/a.bin").CRC
    set_central(whl, "bad/a.bin", CD_CRC, "<I", crc ^ 1)
    assert "'bad/a.bin' does not match its CRC-32" in refused(whl, tmp_path / "out")


@pytest.mark.parametrize("size", [10, 2 * _CHUNK])
def test_size_in_the_directory_differs(make_wheel: MakeWheel, tmp_path: Path, size: int) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.bin": noise(size, seed=5)})
    set_central(whl, "bad/a.bin", CD_USIZE, "<I", size - 1)
    message = refused(whl, tmp_path / "out")
    assert f"'bad/a.bin' inflates to more than the {size - 1} bytes" in message


def test_size_of_a_stored_member_differs(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.py": "a = 1\n"})
    recompress(whl, {"bad/a.py": zipfile.ZIP_STORED})
    set_central(whl, "bad/a.py", CD_USIZE, "<I", 5)
    message = refused(whl, tmp_path / "out")
    assert "'bad/a.py' is stored with 6 bytes but the archive's directory says 5" in message


def test_local_header_past_the_end(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.py": "a = 1\n"})
    size = whl.stat().st_size
    set_central(whl, "bad/a.py", CD_LOCAL_OFFSET, "<I", size - 10)
    assert "the local header of 'bad/a.py' lies past the end" in refused(whl, tmp_path / "out")


def test_data_past_the_end(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.py": "a = 1\n"})
    set_central(whl, "bad/a.py", CD_CSIZE, "<I", 10 * whl.stat().st_size)
    message = refused(whl, tmp_path / "out")
    assert "the data of 'bad/a.py' runs past the end of the archive" in message


def test_data_overlapping_the_next_member(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.py": "a = 1\n", "bad/b.py": "b = 2\n"})
    with zipfile.ZipFile(whl) as zf:
        csize = zf.getinfo("bad/a.py").compress_size
    set_central(whl, "bad/a.py", CD_CSIZE, "<I", csize + 40)
    message = refused(whl, tmp_path / "out")
    assert "the data of 'bad/a.py' runs past the next member" in message


def test_bad_local_signature(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.py": "a = 1\n"})

    def edit(d: bytearray) -> None:
        local = struct.unpack_from("<I", d, central_entry(d, "bad/a.py") + CD_LOCAL_OFFSET)[0]
        d[local : local + 4] = b"PK\x09\x09"

    patch(whl, edit)
    assert "the local header of 'bad/a.py' is broken" in refused(whl, tmp_path / "out")


def test_local_header_of_another_member(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.py": "a = 1\n", "bad/b.py": "b = 2\n"})
    with zipfile.ZipFile(whl) as zf:
        other = zf.getinfo("bad/b.py").header_offset
    # two directory entries sharing one local header (an overlapping-members zip bomb)
    set_central(whl, "bad/a.py", CD_LOCAL_OFFSET, "<I", other)
    message = refused(whl, tmp_path / "out")
    assert "the local header of 'bad/a.py' names b'bad/b.py'" in message


def test_encrypted_member(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("bad", "1.0", files={"bad/a.py": "a = 1\n"})
    set_central(whl, "bad/a.py", CD_FLAGS, "<H", 0x0001)
    assert "'bad/a.py' is encrypted" in refused(whl, tmp_path / "out")


def test_duplicate_member(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("dup", "1.0", files={"dup/a.py": "a = 1\n"})
    with zipfile.ZipFile(whl) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(whl, "a") as zf:
        zf.writestr(members[0][0], members[0][1])
    assert "'dup/a.py' is in the archive twice" in refused(whl, tmp_path / "out")


def test_truncated_archive(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("cut", "1.0", files={"cut/a.py": "a = 1\n"})
    whl.write_bytes(whl.read_bytes()[:-30])  # the end of central directory record is gone
    assert "not a zip archive" in refused(whl, tmp_path / "out")


def test_errors_in_metadata_members_are_wheel_errors(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("meta", "1.0", files={"meta/a.py": "a = 1\n"})
    with zipfile.ZipFile(whl) as zf:
        crc = zf.getinfo("meta-1.0.dist-info/RECORD").CRC
    set_central(whl, "meta-1.0.dist-info/RECORD", CD_CRC, "<I", crc ^ 1)
    message = refused(whl, tmp_path / "out")
    assert "'meta-1.0.dist-info/RECORD' does not match its CRC-32" in message
