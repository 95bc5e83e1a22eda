"""Unpacking wheels: scheme layout, RECORD checks, unsafe paths refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from envmat.errors import EnvmatError
from envmat.wheel import safe_relpath, unpack_wheel


def test_unpack_lays_out_schemes_and_records_hashes(
    make_wheel: Callable[..., Path], tmp_path: Path
) -> None:
    whl = make_wheel(
        "demo",
        "1.0",
        files={"demo/__init__.py": "x = 1\n"},
        data={
            "scripts": {"run": "#!python\nprint(1)\n"},
            "data": {"share/demo/a.txt": "a"},
            "headers": {"demo.h": "int x;"},
        },
        entry_points={"console_scripts": {"demo": "demo:main"}},
    )
    index = unpack_wheel(whl, tmp_path / "out")
    by = {(f.scheme, f.path): f for f in index.files}
    assert (tmp_path / "out/purelib/demo/__init__.py").read_text() == "x = 1\n"
    assert by[("scripts", "run")].rewrite_shebang and by[("scripts", "run")].executable
    assert ("data", "share/demo/a.txt") in by and ("headers", "demo.h") in by
    assert index.console_scripts == {"demo": "demo:main"}
    assert index.dist_info == "demo-1.0.dist-info"
    # the installer writes its own RECORD/INSTALLER: the wheel's are not part of the index
    assert not any(f.path.endswith("/RECORD") for f in index.files)


def test_platlib_root(make_wheel: Callable[..., Path], tmp_path: Path) -> None:
    whl = make_wheel(
        "plat", "1.0", files={"plat.py": ""}, root_is_purelib=False, tag="cp312-cp312-linux_x86_64"
    )
    index = unpack_wheel(whl, tmp_path / "out")
    assert {f.scheme for f in index.files} == {"platlib"}


@pytest.mark.parametrize("evil", ["../evil.py", "/abs.py", "a/../../evil.py", "a\\b.py"])
def test_unsafe_member_is_refused(
    make_wheel: Callable[..., Path], tmp_path: Path, evil: str
) -> None:
    whl = make_wheel("bad", "1.0", files={"bad.py": ""}, extra_entries={evil: "x"})
    with pytest.raises(EnvmatError, match="unsafe path"):
        unpack_wheel(whl, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists() and not Path("/abs.py").exists()


def test_file_missing_from_record_is_refused(
    make_wheel: Callable[..., Path], tmp_path: Path
) -> None:
    whl = make_wheel(
        "bad", "1.0", files={"bad.py": "", "sneaky.py": ""}, omit_from_record=["sneaky.py"]
    )
    with pytest.raises(EnvmatError, match="do not match its RECORD") as ei:
        unpack_wheel(whl, tmp_path / "out")
    assert any("sneaky.py" in d for d in ei.value.details)


def test_hash_mismatch_is_refused(make_wheel: Callable[..., Path], tmp_path: Path) -> None:
    record = "bad.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\nbad-1.0.dist-info/METADATA,,\nbad-1.0.dist-info/WHEEL,,\nbad-1.0.dist-info/RECORD,,\n"
    whl = make_wheel("bad", "1.0", files={"bad.py": "not empty"}, record=record)
    with pytest.raises(EnvmatError) as ei:
        unpack_wheel(whl, tmp_path / "out")
    assert any("bad.py: hash in RECORD" in d for d in ei.value.details)


def test_broken_record_syntax(make_wheel: Callable[..., Path], tmp_path: Path) -> None:
    whl = make_wheel("bad", "1.0", files={"bad.py": ""}, record="bad.py,only-two\n")
    with pytest.raises(EnvmatError, match="broken RECORD"):
        unpack_wheel(whl, tmp_path / "out")


def test_unsafe_record_path(make_wheel: Callable[..., Path], tmp_path: Path) -> None:
    whl = make_wheel(
        "bad",
        "1.0",
        files={"bad.py": ""},
        record="../../etc/x,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n",
    )
    with pytest.raises(EnvmatError, match="unsafe path"):
        unpack_wheel(whl, tmp_path / "out")


def test_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "fake-1.0-py3-none-any.whl"
    fake.write_bytes(b"not a zip")
    with pytest.raises(EnvmatError, match="not a zip"):
        unpack_wheel(fake, tmp_path / "out")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a/b.py", "a/b.py"),
        ("./a//b.py", "a/b.py"),
        ("../a", None),
        ("/a", None),
        ("C:/a", None),
        ("", None),
    ],
)
def test_safe_relpath(path: str, expected: str | None) -> None:
    assert safe_relpath(path) == expected
