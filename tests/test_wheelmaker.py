"""The wheels and locks tests.wheelmaker writes are real: pip installs them, packaging reads them."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import tree_snapshot
from tests.wheelmaker import (
    dumps_toml,
    make_wheel,
    package_entry,
    record_hash,
    sha256_file,
    wheel_entry,
    write_pylock,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    tomllib = pytest.importorskip("tomli")

BIN = "Scripts" if os.name == "nt" else "bin"


def record_problems(whl: Path) -> list[str]:
    """Return every way the wheel's RECORD disagrees with its zip entries (empty when sound)."""
    problems = []
    with zipfile.ZipFile(whl) as zf:
        names = zf.namelist()
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        rows = list(csv.reader(io.StringIO(zf.read(record_name).decode("utf-8"))))
        listed = {row[0]: row for row in rows}
        for name in names:
            if name not in listed:
                problems.append(f"not in RECORD: {name}")
        for path, digest, size in rows:
            if path == record_name:
                if digest or size:
                    problems.append("RECORD lists a hash for itself")
                continue
            if path not in names:
                problems.append(f"missing from zip: {path}")
                continue
            data = zf.read(path)
            if digest != record_hash(data):
                problems.append(f"hash mismatch: {path}")
            if size != str(len(data)):
                problems.append(f"size mismatch: {path}")
    return problems


def installed_record_problems(site_packages: Path, dist_info: str) -> list[str]:
    """Check an installed RECORD (PEP 376) against the files on disk."""
    problems = []
    record = site_packages / dist_info / "RECORD"
    for path, digest, size in csv.reader(io.StringIO(record.read_text("utf-8"))):
        target = (site_packages / path).resolve()
        if not digest:
            continue
        if not target.is_file():
            problems.append(f"missing: {path}")
        elif record_hash(target.read_bytes()) != digest or str(target.stat().st_size) != size:
            problems.append(f"differs: {path}")
    return problems


def demo_wheel(out_dir: Path) -> Path:
    return make_wheel(
        out_dir,
        "Demo.Pkg",
        "1.2.3",
        files={
            "demo_pkg/__init__.py": "VALUE = 42\n",
            "demo_pkg/cli.py": "def main():\n    print('hello from demo')\n",
        },
        data={
            "scripts": {"demo-raw": "#!python\nprint('raw script')\n"},
            "data": {"share/demo/info.txt": "shared data\n"},
        },
        entry_points={"console_scripts": {"demo-hello": "demo_pkg.cli:main"}},
        executable=["scripts/demo-raw"],
        metadata_extra="Requires-Dist: nothing-at-all ; extra == 'never'",
    )


def make_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(path)
    return path


def venv_site_packages(env: Path) -> Path:
    out = subprocess.run(
        [str(env / BIN / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def pip_install(env: Path, whl: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env / BIN / "python"),
            "install",
            "--no-deps",
            "--no-index",
            "--no-compile",
            str(whl),
        ],
        capture_output=True,
        text=True,
    )


def test_filename_and_layout(tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "Foo.Bar-baz", "1.0", tag="py2.py3-none-any", build="7")
    assert whl.name == "foo_bar_baz-1.0-7-py2.py3-none-any.whl"
    with zipfile.ZipFile(whl) as zf:
        names = zf.namelist()
        wheel_text = zf.read("foo_bar_baz-1.0.dist-info/WHEEL").decode()
        metadata = zf.read("foo_bar_baz-1.0.dist-info/METADATA").decode()
    assert names[-1] == "foo_bar_baz-1.0.dist-info/RECORD"
    assert "Tag: py2-none-any\nTag: py3-none-any\n" in wheel_text
    assert "Build: 7\n" in wheel_text
    assert "Root-Is-Purelib: true" in wheel_text
    assert "Name: Foo.Bar-baz\nVersion: 1.0\n" in metadata
    assert record_problems(whl) == []


def test_modes_and_reproducible_bytes(tmp_path: Path) -> None:
    a = demo_wheel(tmp_path / "a")
    b = demo_wheel(tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
    assert modes["demo_pkg-1.2.3.data/scripts/demo-raw"] == 0o755
    assert modes["demo_pkg/__init__.py"] == 0o644
    assert record_problems(a) == []


def test_pip_installs_it_and_scripts_run(tmp_path: Path) -> None:
    whl = demo_wheel(tmp_path / "wheels")
    env = make_venv(tmp_path / "venv")
    result = pip_install(env, whl)
    assert result.returncode == 0, result.stderr
    hello = subprocess.run(
        [str(env / BIN / "demo-hello")], capture_output=True, text=True, check=True
    )
    assert hello.stdout == "hello from demo\n"
    raw = subprocess.run([str(env / BIN / "demo-raw")], capture_output=True, text=True, check=True)
    assert raw.stdout == "raw script\n"
    assert (env / "share" / "demo" / "info.txt").read_text() == "shared data\n"
    site = venv_site_packages(env)
    assert installed_record_problems(site, "demo_pkg-1.2.3.dist-info") == []
    snap = tree_snapshot(env)
    assert snap[f"{BIN}/demo-raw"][1] & 0o111
    assert not any("__pycache__" in p for p in snap)


def test_broken_record_variants_are_broken(tmp_path: Path) -> None:
    files = {"pkg/__init__.py": "x = 1\n", "pkg/mod.py": "y = 2\n"}
    lying = make_wheel(
        tmp_path / "lying",
        "pkg",
        "1.0",
        files=files,
        record="pkg/__init__.py,sha256=AAAA,6\npkg/mod.py,,\npkg-1.0.dist-info/RECORD,,\n",
    )
    assert "hash mismatch: pkg/__init__.py" in record_problems(lying)
    omitted = make_wheel(
        tmp_path / "omit", "pkg", "1.0", files=files, omit_from_record=["pkg/mod.py"]
    )
    assert record_problems(omitted) == ["not in RECORD: pkg/mod.py"]
    evil = make_wheel(
        tmp_path / "evil", "pkg", "1.0", files=files, extra_entries={"../evil.py": "boom = 1\n"}
    )
    with zipfile.ZipFile(evil) as zf:
        assert "../evil.py" in zf.namelist()
    assert record_problems(evil) == ["not in RECORD: ../evil.py"]
    result = pip_install(make_venv(tmp_path / "venv"), evil)
    assert result.returncode != 0
    assert "outside" in result.stderr
    assert not (tmp_path / "venv" / "lib" / "evil.py").exists()


def test_platlib_wheel(tmp_path: Path) -> None:
    whl = make_wheel(
        tmp_path,
        "native",
        "0.1",
        files={"native/__init__.py": ""},
        data={"purelib": {"native_pure.py": "P = 1\n"}},
        tag="cp311-cp311-linux_x86_64",
        root_is_purelib=False,
    )
    with zipfile.ZipFile(whl) as zf:
        assert "Root-Is-Purelib: false" in zf.read("native-0.1.dist-info/WHEEL").decode()
        assert "native-0.1.data/purelib/native_pure.py" in zf.namelist()


def test_write_pylock_is_valid_pep751(tmp_path: Path) -> None:
    packaging_pylock = pytest.importorskip("packaging.pylock")
    whl = demo_wheel(tmp_path / "wheels")
    entry = wheel_entry(whl, base=tmp_path)
    assert entry["path"] == f"wheels/{whl.name}"
    assert entry["size"] == whl.stat().st_size
    assert entry["hashes"] == {"sha256": sha256_file(whl)}
    other = make_wheel(tmp_path / "wheels", "other", "2.0")
    remote = wheel_entry(
        other, url=f"http://127.0.0.1:1/f/{other.name}", with_size=False, name=False
    )
    assert set(remote) == {"url", "hashes"}
    lock = write_pylock(
        tmp_path / "pylock.toml",
        [
            package_entry("demo-pkg", "1.2.3", [entry], requires_python=">=3.8"),
            package_entry(
                "other",
                "2.0",
                [remote],
                marker='python_version >= "3.9"',
                dependencies=[{"name": "demo-pkg"}],
            ),
        ],
        requires_python=">=3.8",
        environments=['sys_platform == "linux"'],
        extras=[],
        tool={"envmat-tests": {"note": 'quotes " and \\ survive'}},
    )
    text = lock.read_text()
    assert "[[packages.wheels]]" in text
    doc = tomllib.loads(text)
    assert doc["lock-version"] == "1.0"
    assert doc["created-by"] == "envmat-tests"
    assert doc["requires-python"] == ">=3.8"
    assert doc["tool"]["envmat-tests"]["note"] == 'quotes " and \\ survive'
    assert doc["packages"][0]["wheels"][0]["hashes"]["sha256"] == sha256_file(whl)
    parsed = packaging_pylock.Pylock.from_dict(doc)
    assert [p.name for p in parsed.packages] == ["demo-pkg", "other"]


def test_dumps_toml_round_trips() -> None:
    doc = {
        "a": 1,
        "b": True,
        "c": ["x", "y"],
        "weird key": "tab\there\nnewline \u00e9",
        "t": {"inner": {"k": "v"}, "n": 2},
        "arr": [{"k": 1, "sub": [{"z": "z"}]}, {"k": 2}],
    }
    assert tomllib.loads(dumps_toml(doc)) == doc


def test_fixture_factory(make_wheel: Callable[..., Path], wheel_dir: Path) -> None:
    whl = make_wheel("fixture-made", "0.1")
    assert whl.parent == wheel_dir
    assert record_problems(whl) == []
