"""Unpacking while downloading (wheelstream.py): the streamed copy is exactly what
``unpack_wheel`` makes from the whole archive, or it is discarded (the proven path then runs)."""

from __future__ import annotations

import io
import os
import random
import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

import envmat
from envmat import cache as cache_mod
from envmat.wheel import _CHUNK, WheelIndex, unpack_wheel
from envmat.wheelstream import StreamUnpacker, finish
from tests.test_unpack_fast import noise
from tests.wheelmaker import package_entry, wheel_entry, write_pylock

MakeWheel = Callable[..., Path]


def listing(root: Path) -> dict[str, tuple[int, bytes]]:
    out: dict[str, tuple[int, bytes]] = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath, name)
            out[p.relative_to(root).as_posix()] = (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
    return out


def stream(data: bytes, whl: Path, dest: Path, sizes: list[int]) -> WheelIndex | None:
    """Feed ``data`` (the bytes of ``whl``) in pieces of the given sizes (cycled), then finish."""
    s = StreamUnpacker(str(dest))
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        s.feed(data[i : i + n])
        i += n
        k += 1
    return finish(s, str(whl), whl.name)


def assert_streams_like_unpack(whl: Path, tmp: Path, sizes: list[int]) -> WheelIndex:
    reference = unpack_wheel(whl, tmp / "ref")
    index = stream(whl.read_bytes(), whl, tmp / "streamed", sizes)
    assert index is not None
    assert attrs.evolve(index, stamps=()) == attrs.evolve(reference, stamps=())
    assert listing(tmp / "streamed") == listing(tmp / "ref")
    # the stamps are the files' mtimes, as the cache checks them
    for f, stamp in zip(index.files, index.stamps):
        assert (tmp / "streamed" / f.scheme / f.path).stat().st_mtime_ns == stamp
    return index


@pytest.mark.parametrize("sizes", [[1], [7, 100, 3], [4096], [1 << 18], [1 << 30]], ids=["1", "mixed", "4k", "256k", "whole"])
@pytest.mark.parametrize("root_is_purelib", [True, False])
def test_a_streamed_wheel_is_what_unpack_wheel_makes(
    make_wheel: MakeWheel, tmp_path: Path, sizes: list[int], root_is_purelib: bool
) -> None:
    whl = make_wheel(
        "rich-shape",
        "1.0",
        files={
            "pkg/__init__.py": "x = 1\n",
            "pkg/empty.py": "",
            "pkg/big.bin": noise(2 * _CHUNK + 17, seed=1),
            "pkg/tool.sh": "#!/bin/sh\necho hi\n",
        },
        data={
            "scripts": {"run-me": "#!python\nprint('hi')\n", "plain.sh": "#!/bin/sh\n"},
            "headers": {"h.h": "int x;\n"},
            "data": {"share/doc.txt": "doc\n"},
        },
        entry_points={"console_scripts": {"rich-shape": "pkg:main"}},
        executable=["pkg/tool.sh"],
        root_is_purelib=root_is_purelib,
    )
    index = assert_streams_like_unpack(whl, tmp_path, sizes)
    by_path = {f.path: f for f in index.files}
    assert by_path["run-me"].rewrite_shebang and by_path["run-me"].executable
    assert by_path["pkg/tool.sh"].executable and not by_path["pkg/__init__.py"].executable
    root = "purelib" if root_is_purelib else "platlib"
    assert (tmp_path / "streamed" / root / "pkg/big.bin").stat().st_size == 2 * _CHUNK + 17


def test_stored_members_and_directory_entries_stream_too(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("stored", "1.0", files={"s/a.py": "a = 1\n", "s/big.bin": noise(_CHUNK + 5, seed=3)})
    with zipfile.ZipFile(whl) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr(zipfile.ZipInfo("s/"), b"")  # a directory entry
        for info, data in members:
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, data)
    assert_streams_like_unpack(whl, tmp_path, [333])


def test_a_random_shape_streams_like_unpack(make_wheel: MakeWheel, tmp_path: Path) -> None:
    rng = random.Random(7)
    files = {f"r/m{i}.bin": rng.randbytes(rng.randrange(0, 5000)) for i in range(40)}
    whl = make_wheel("rand", "1.0", files=files)
    for k in range(5):
        sizes = [rng.choice([1, 2, 31, 512, 8192, 70000]) for _ in range(20)]
        assert_streams_like_unpack(whl, tmp_path / str(k), sizes)


def rewrite_streaming(whl: Path) -> None:
    """The same members, written as a zip writer on a pipe does: sizes in data descriptors."""
    with zipfile.ZipFile(whl) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist()]

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.buf += b
            return len(b)

    out = Unseekable()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:  # type: ignore[arg-type]
        for name, data in members:
            with zf.open(name, "w") as f:
                f.write(data)
    whl.write_bytes(bytes(out.buf))


def test_data_descriptors_are_left_to_the_proven_path(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("desc", "1.0", files={"d/a.py": "a = 1\n"})
    rewrite_streaming(whl)
    with zipfile.ZipFile(whl) as zf:
        assert all(i.flag_bits & 0x08 for i in zf.infolist())
    assert stream(whl.read_bytes(), whl, tmp_path / "s", [100]) is None
    assert not (tmp_path / "s").exists()  # nothing left behind
    assert unpack_wheel(whl, tmp_path / "ref").name == "desc"


def test_root_and_data_in_one_scheme_are_left_to_the_proven_path(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("both", "1.0", files={"b/a.py": "a = 1\n"}, data={"purelib": {"b/extra.py": "e = 2\n"}})
    assert stream(whl.read_bytes(), whl, tmp_path / "s", [64]) is None
    assert not (tmp_path / "s").exists()
    reference = unpack_wheel(whl, tmp_path / "ref")
    assert {f.path for f in reference.files} >= {"b/a.py", "b/extra.py"}


def test_a_record_mismatch_is_never_streamed(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("lie", "1.0", files={"l/a.py": "a = 1\n"}, record="l/a.py,sha256=AAAA,6\n")
    assert stream(whl.read_bytes(), whl, tmp_path / "s", [50]) is None
    assert not (tmp_path / "s").exists()


def test_a_truncated_stream_is_discarded(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("cut", "1.0", files={"c/a.py": "a = 1\n" * 100})
    data = whl.read_bytes()
    s = StreamUnpacker(str(tmp_path / "s"))
    s.feed(data[: len(data) // 2])
    assert finish(s, str(whl), whl.name) is None
    assert not (tmp_path / "s").exists()


def served_lock(make_wheel: MakeWheel, tmp_path: Path, http_server) -> Path:  # type: ignore[no-untyped-def]
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    whl = make_wheel(
        "streamed-tool",
        "1.0",
        files={"streamed_tool/__init__.py": "def main():\n    print('streamed ok')\n", "streamed_tool/big.bin": noise(3 * _CHUNK, seed=5)},
        entry_points={"console_scripts": {"streamed-tool": "streamed_tool:main"}},
    )
    shutil.copy(whl, served / whl.name)
    pkg = package_entry("streamed-tool", "1.0", [wheel_entry(whl, url=http_server.url_for(whl.name))])
    return write_pylock(tmp_path / "pylock.toml", [pkg])


def test_a_cold_sync_installs_what_it_unpacked_while_downloading(
    make_wheel: MakeWheel, tmp_path: Path, http_server, cache_dir: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    lock = served_lock(make_wheel, tmp_path, http_server)

    def not_again(*args: object, **kwargs: object) -> None:
        raise AssertionError("the wheel was unpacked while it downloaded")

    monkeypatch.setattr(cache_mod, "unpack_wheel", not_again)
    envmat.sync(lock, venv=tmp_path / "venv", cache_dir=cache_dir)
    import subprocess

    out = subprocess.run([tmp_path / "venv/bin/streamed-tool"], capture_output=True, text=True, check=True)
    assert out.stdout == "streamed ok\n"
    # downloaded once, and not kept: the unpacked entry is what the cache holds
    assert [r.path for r in http_server.requests if r.method == "GET"] == ["/streamed_tool-1.0-py3-none-any.whl"]
    assert not list(cache_dir.glob("archives-v1/*"))
    assert not [p for p in (cache_dir / "unpacked-v1").iterdir() if p.name.startswith(".tmp-")]


def test_a_wheel_that_cannot_stream_is_downloaded_again_and_kept(
    make_wheel: MakeWheel, tmp_path: Path, http_server, cache_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    whl = make_wheel(
        "desc-tool",
        "1.0",
        files={"desc_tool/__init__.py": "def main():\n    print('proven ok')\n"},
        entry_points={"console_scripts": {"desc-tool": "desc_tool:main"}},
    )
    rewrite_streaming(whl)  # data descriptors: the streamed copy cannot be proven
    shutil.copy(whl, served / whl.name)
    pkg = package_entry("desc-tool", "1.0", [wheel_entry(whl, url=http_server.url_for(whl.name))])
    lock = write_pylock(tmp_path / "pylock.toml", [pkg])
    report = envmat.sync(lock, venv=tmp_path / "venv", cache_dir=cache_dir)
    import subprocess

    out = subprocess.run([tmp_path / "venv/bin/desc-tool"], capture_output=True, text=True, check=True)
    assert out.stdout == "proven ok\n"
    assert [r.path for r in http_server.requests if r.method == "GET"] == [f"/{whl.name}"] * 2
    assert report.downloaded_bytes == 2 * whl.stat().st_size
    (archive,) = (cache_dir / "archives-v1").glob("*.whl")  # kept: it is what the entry came from
    assert archive.read_bytes() == whl.read_bytes()
    assert not [p for p in (cache_dir / "unpacked-v1").iterdir() if p.name.startswith(".tmp-")]
    # a later venv installs from the cache without the network
    http_server.clear_requests()
    envmat.sync(lock, venv=tmp_path / "venv2", cache_dir=cache_dir, offline=True)
    assert not http_server.requests


def test_a_download_broken_off_midway_unpacks_from_the_start_again(
    make_wheel: MakeWheel, tmp_path: Path, http_server, cache_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    lock = served_lock(make_wheel, tmp_path, http_server)
    http_server.set_fault("streamed_tool-1.0-py3-none-any.whl", "drop-mid-body", count=1)
    envmat.sync(lock, venv=tmp_path / "venv", cache_dir=cache_dir)
    import subprocess

    out = subprocess.run([tmp_path / "venv/bin/streamed-tool"], capture_output=True, text=True, check=True)
    assert out.stdout == "streamed ok\n"
    assert not [p for p in (cache_dir / "unpacked-v1").iterdir() if p.name.startswith(".tmp-")]
    (entry,) = [p for p in (cache_dir / "unpacked-v1").iterdir()]
    assert (entry / "purelib/streamed_tool/big.bin").read_bytes() == noise(3 * _CHUNK, seed=5)


def test_an_archive_comment_streams_like_unpack(make_wheel: MakeWheel, tmp_path: Path) -> None:
    """The end record may carry a comment: the directory is still found and checked."""
    whl = make_wheel("commented", "1.0", files={"c/a.py": "a = 1\n", "c/b.py": "b = 2\n"})
    with zipfile.ZipFile(whl, "a") as zf:
        zf.comment = b"built by hand"
    assert_streams_like_unpack(whl, tmp_path, [37])


def test_a_central_directory_that_disagrees_is_never_streamed(make_wheel: MakeWheel, tmp_path: Path) -> None:
    """The streamed members are checked against the central directory kept from the stream:
    one letter of a name changed there (and only there) is enough to discard the copy."""
    whl = make_wheel("liar", "1.0", files={"liar/a.py": "a = 1\n"})
    data = bytearray(whl.read_bytes())
    at = data.rindex(b"liar/a.py")  # the last occurrence is the central directory's
    assert data.rfind(b"PK\x01\x02", 0, at) > data.rfind(b"PK\x03\x04", 0, at)
    data[at] = ord("L")
    bent = tmp_path / whl.name
    bent.write_bytes(bytes(data))
    assert stream(bytes(data), bent, tmp_path / "s", [64]) is None
    assert not (tmp_path / "s").exists()


def test_bytes_after_the_end_record_are_never_streamed(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("trail", "1.0", files={"t/a.py": "a = 1\n"})
    data = whl.read_bytes() + b"\0" * 10
    assert stream(data, whl, tmp_path / "s", [64]) is None
    assert not (tmp_path / "s").exists()


def test_a_metadata_file_twice_is_left_to_the_proven_path(make_wheel: MakeWheel, tmp_path: Path) -> None:
    """Two METADATA members: the stream gives up rather than choose one, and the proven path
    reports the duplicate."""
    import warnings

    whl = make_wheel("twice", "1.0", files={"t/a.py": "a = 1\n"})
    with zipfile.ZipFile(whl) as zf:
        metadata = zf.read("twice-1.0.dist-info/METADATA")
    with warnings.catch_warnings(), zipfile.ZipFile(whl, "a") as zf:
        warnings.simplefilter("ignore")  # "Duplicate name"
        zf.writestr("twice-1.0.dist-info/METADATA", metadata)
    assert stream(whl.read_bytes(), whl, tmp_path / "s", [64]) is None
    assert not (tmp_path / "s").exists()
    with pytest.raises(envmat.EnvmatError, match="in the archive twice"):
        unpack_wheel(whl, tmp_path / "ref")
