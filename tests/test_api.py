"""The library API: ``envmat.sync`` and the seed's wheel layer (``LockedVenv``, ``install_wheels_venv``)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import envmat
from envmat.record import parse_record, record_hash_of
from tests.wheelmaker import package_entry, wheel_entry, write_pylock

MakeWheel = Callable[..., Path]


def site_packages(venv: Path) -> Path:
    (sp,) = venv.glob("lib/python3.*/site-packages")
    return sp


def lock_for(path: Path, wheels: list[Path]) -> Path:
    pkgs = []
    for whl in wheels:
        name, version = whl.name.split("-")[:2]
        pkgs.append(
            package_entry(name.replace("_", "-"), version, [wheel_entry(whl, base=path.parent)])
        )
    return write_pylock(path, pkgs)


def run_py(venv: Path, code: str) -> str:
    return subprocess.run(
        [venv / "bin/python", "-c", code], capture_output=True, text=True, check=True
    ).stdout


# --- envmat.sync -----------------------------------------------------------------------------


def test_sync_returns_a_report(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path) -> None:
    a1 = make_wheel("pkg-a", "1.0", files={"pkg_a.py": "V = 'a1'\n"})
    b = make_wheel("pkg-b", "1.0", files={"pkg_b.py": "V = 'b'\n"})
    c = make_wheel("pkg-c", "1.0", files={"pkg_c.py": "V = 'c'\n"})
    venv = tmp_path / "venv"

    report = envmat.sync(lock_for(tmp_path / "1" / "pylock.toml", [a1, b, c]), venv)
    assert isinstance(report, envmat.SyncReport)
    assert sorted(report.added) == ["pkg-a", "pkg-b", "pkg-c"]
    assert (report.replaced, report.removed, report.kept) == ([], [], [])
    assert report.changed and report.created_venv
    assert (
        run_py(venv, "import pkg_a, pkg_b, pkg_c; print(pkg_a.V, pkg_b.V, pkg_c.V)") == "a1 b c\n"
    )

    a2 = make_wheel("pkg-a", "2.0", files={"pkg_a.py": "V = 'a2'\n"})
    report = envmat.sync(lock_for(tmp_path / "2" / "pylock.toml", [a2, b]), venv)
    assert report.replaced == ["pkg-a"] and report.removed == ["pkg-c"] and report.kept == ["pkg-b"]
    assert report.added == [] and report.changed and not report.created_venv
    assert run_py(venv, "import pkg_a; print(pkg_a.V)") == "a2\n"
    assert not (site_packages(venv) / "pkg_c.py").exists()

    report = envmat.sync(tmp_path / "2" / "pylock.toml", venv)
    assert not report.changed and sorted(report.kept) == ["pkg-a", "pkg-b"]
    assert report.added == report.replaced == report.removed == []


def test_sync_errors_are_envmat_errors(tmp_path: Path) -> None:
    with pytest.raises(envmat.EnvmatError) as info:
        envmat.sync(tmp_path / "missing.toml", tmp_path / "venv")
    assert "missing.toml" in str(info.value) and info.value.hint
    assert not (tmp_path / "venv").exists()


# --- LockedVenv / install_wheels_venv --------------------------------------------------------


def test_locked_venv_install_add_and_replace(
    make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path
) -> None:
    one = make_wheel(
        "first",
        "1.0",
        files={"first/__init__.py": "V = 1\n", "first/old.py": ""},
        entry_points={"console_scripts": {"first": "first:main"}},
    )
    two = make_wheel("second", "1.0", files={"second.py": "V = 2\n"})
    venv = tmp_path / "new-venv"
    lv = envmat.LockedVenv(venv, cache_dir=cache_dir)

    report = lv.install_wheel(one)
    assert report.added == ["first"] and report.created_venv
    assert (venv / "pyvenv.cfg").is_file() and (venv / "bin/first").is_file()
    sp = site_packages(venv)

    report = lv.install_wheel(two)
    assert report.added == ["second"] and not report.created_venv
    assert "first" not in report.removed  # installing a wheel never removes the others
    assert run_py(venv, "import first, second; print(first.V, second.V)") == "1 2\n"

    one_v2 = make_wheel("first", "2.0", files={"first/__init__.py": "V = 11\n"})
    report = lv.install_wheel(one_v2)
    assert report.replaced == ["first"] and report.removed == []
    assert run_py(venv, "import first, second; print(first.V, second.V)") == "11 2\n"
    assert not (sp / "first/old.py").exists()
    assert not (venv / "bin/first").exists()  # 2.0 has no console script
    assert not (sp / "first-1.0.dist-info").exists() and (sp / "first-2.0.dist-info").is_dir()
    assert sorted(p.name for p in sp.glob("*.dist-info")) == [
        "first-2.0.dist-info",
        "second-1.0.dist-info",
    ]


def test_install_wheels_venv(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path) -> None:
    wheels = [
        make_wheel(f"many-{i}", "1.0", files={f"many_{i}.py": f"V = {i}\n"}) for i in range(5)
    ]
    venv = tmp_path / "venv"
    report = envmat.install_wheels_venv(wheels, venv)
    assert sorted(report.added) == [f"many-{i}" for i in range(5)]
    assert run_py(venv, "import many_0, many_4; print(many_0.V + many_4.V)") == "4\n"
    # the same wheels again: nothing changes
    report = envmat.install_wheels_venv([str(w) for w in wheels], venv)
    assert not report.changed


def test_wheel_that_does_not_fit_raises(
    make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path
) -> None:
    ok = make_wheel("fits", "1.0", files={"fits.py": ""})
    bad = make_wheel(
        "old-only",
        "1.0",
        tag="cp27-cp27mu-manylinux1_x86_64",
        root_is_purelib=False,
        files={"old_only.py": ""},
    )
    venv = tmp_path / "venv"
    lv = envmat.LockedVenv(venv, cache_dir=cache_dir)
    lv.install_wheel(ok)
    sp = site_packages(venv)
    before = sorted(p.relative_to(venv) for p in venv.rglob("*"))
    with pytest.raises(envmat.EnvmatError) as info:
        lv.install_wheel(bad)
    assert bad.name in str(info.value)
    assert not (sp / "old_only.py").exists()
    assert sorted(p.relative_to(venv) for p in venv.rglob("*")) == before


def test_missing_wheel_raises(tmp_path: Path) -> None:
    with pytest.raises(envmat.EnvmatError):
        envmat.LockedVenv(tmp_path / "venv").install_wheel(tmp_path / "nope-1.0-py3-none-any.whl")
    assert not (tmp_path / "venv").exists()


# --- the seed's race: shared namespace files from several threads ------------------------------

NVIDIA_INIT = "# nvidia namespace\n"
N_WHEELS = 6
ROUNDS = 50


@pytest.fixture
def nvidia_wheels(make_wheel: MakeWheel) -> list[Path]:
    """Wheels that, like nvidia-*-cu12, all ship an identical ``nvidia/__init__.py``."""
    return [
        make_wheel(
            f"nvidia-part{i}-cu12",
            "12.0",
            files={
                "nvidia/__init__.py": NVIDIA_INIT,
                f"nvidia/part{i}/__init__.py": f"N = {i}\n",
                f"nvidia/part{i}/lib/libpart{i}.so": bytes([i]) * 2048,
            },
        )
        for i in range(N_WHEELS)
    ]


def install_concurrently(venv: Path, wheels: list[Path], cache_dir: Path) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(wheels))

    def work(whl: Path) -> None:
        try:
            barrier.wait()
            envmat.LockedVenv(venv, cache_dir=cache_dir).install_wheel(whl)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in wheels]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "an install thread hung"
    return errors


def assert_nvidia_complete(venv: Path, wheels: list[Path]) -> None:
    sp = site_packages(venv)
    assert (sp / "nvidia/__init__.py").read_text() == NVIDIA_INIT
    for i in range(len(wheels)):
        assert (sp / f"nvidia/part{i}/__init__.py").read_text() == f"N = {i}\n"
        assert (sp / f"nvidia/part{i}/lib/libpart{i}.so").read_bytes() == bytes([i]) * 2048
        (info,) = sp.glob(f"nvidia_part{i}_cu12-12.0.dist-info")
        entries = {e.path: e for e in parse_record((info / "RECORD").read_text())}
        assert "nvidia/__init__.py" in entries, sorted(entries)
        assert entries["nvidia/__init__.py"].hash == record_hash_of(NVIDIA_INIT.encode())


def test_shared_namespace_file_from_many_threads(
    nvidia_wheels: list[Path], tmp_path: Path, cache_dir: Path
) -> None:
    # warm the cache once so the rounds race on the venv, not on unpacking
    envmat.install_wheels_venv(nvidia_wheels, tmp_path / "warm")
    deadline = time.monotonic() + 60
    rounds = 0
    for n in range(ROUNDS):
        venv = tmp_path / f"venv{n}"
        errors = install_concurrently(venv, nvidia_wheels, cache_dir)
        assert errors == [], f"round {n}: {errors!r}"
        assert_nvidia_complete(venv, nvidia_wheels)
        rounds += 1
        if time.monotonic() > deadline:
            break
    assert rounds >= 5, "too slow to exercise the race"
    last = tmp_path / f"venv{rounds - 1}"
    assert (
        run_py(last, "import nvidia.part0, nvidia.part5; print(nvidia.part0.N + nvidia.part5.N)")
        == "5\n"
    )


def test_shared_namespace_file_cold_cache(
    nvidia_wheels: list[Path], tmp_path: Path, cache_dir: Path
) -> None:
    """The same race while every thread also fills the (empty) cache."""
    for n in range(3):
        venv = tmp_path / f"venv{n}"
        cold = tmp_path / f"cache{n}"
        errors = install_concurrently(venv, nvidia_wheels, cold)
        assert errors == [], f"round {n}: {errors!r}"
        assert_nvidia_complete(venv, nvidia_wheels)


def test_wheel_that_does_not_fit_leaves_no_new_venv(
    make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path
) -> None:
    bad = make_wheel(
        "old-only",
        "1.0",
        tag="cp27-cp27mu-manylinux1_x86_64",
        root_is_purelib=False,
        files={"old_only.py": ""},
    )
    venv = tmp_path / "venv"
    with pytest.raises(envmat.EnvmatError) as info:
        envmat.LockedVenv(venv, cache_dir=cache_dir).install_wheel(bad)
    assert bad.name in str(info.value)
    assert not venv.exists()
