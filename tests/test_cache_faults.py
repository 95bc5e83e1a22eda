"""The cache under stress: full, read-only, and emptied by another process in the middle of syncs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import run_envmat
from tests.test_errors import assert_user_error
from tests.test_sync import lock_for, make_demo, run_ok, site_packages

MakeWheel = Callable[..., Path]


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small filesystem of its own (root may mount one; skip where that is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not root'}): needed to fill or freeze a filesystem")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def big_wheel(make_wheel: MakeWheel) -> Path:
    # incompressible bytes: the unpacked copy alone is larger than the tmpfs
    return make_wheel("bulky", "1.0", files={"bulky/__init__.py": "", "bulky/blob.bin": os.urandom(3 << 20)})


def test_a_full_cache_is_a_clear_error_and_changes_nothing(make_wheel: MakeWheel, tmp_path: Path) -> None:
    lock = lock_for(tmp_path / "pylock.toml", [big_wheel(make_wheel)])
    with tmpfs(tmp_path / "small-fs", "2m") as cache:
        proc = run_envmat("sync", lock, "--venv", tmp_path / "v", "--cache-dir", cache)
        assert_user_error(proc, "No space left on device", "cache")
        assert not (tmp_path / "v").exists()
        # no half-built entry or work directory left behind
        leftovers = [p.name for d in ("unpacked-v1", "archives-v1") if (cache / d).is_dir() for p in (cache / d).iterdir()]
        assert leftovers == []


def test_a_download_into_a_full_cache_is_a_clear_error_and_changes_nothing(make_wheel: MakeWheel, tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    """The same from a URL: the disk fills while the wheel downloads (and unpacks as it comes)."""
    import shutil

    from tests.wheelmaker import package_entry, wheel_entry, write_pylock

    whl = big_wheel(make_wheel)
    shutil.copy(whl, http_server.root / whl.name)
    pkg = package_entry("bulky", "1.0", [wheel_entry(whl, url=http_server.url_for(whl.name))])
    lock = write_pylock(tmp_path / "pylock.toml", [pkg])
    with tmpfs(tmp_path / "small-fs", "2m") as cache:
        proc = run_envmat("sync", lock, "--venv", tmp_path / "v", "--cache-dir", cache)
        assert_user_error(proc, "No space left on device", "cache")
        assert f"cannot write {whl.name} into the cache" in proc.stderr
        assert not (tmp_path / "v").exists()
        leftovers = [p.name for d in ("unpacked-v1", "archives-v1") if (cache / d).is_dir() for p in (cache / d).iterdir()]
        assert leftovers == []


def test_a_read_only_cache_still_serves_what_it_has(make_wheel: MakeWheel, tmp_path: Path) -> None:
    wheels = make_demo(make_wheel)
    lock = lock_for(tmp_path / "pylock.toml", wheels)
    with tmpfs(tmp_path / "ro-fs", "20m") as cache:
        run_ok("sync", lock, "--venv", tmp_path / "v1", "--cache-dir", cache)
        subprocess.run(["mount", "-o", "remount,ro", str(cache)], check=True)
        # a warm read-only cache (e.g. shared by CI jobs): installs, by copy across filesystems
        proc = run_ok("sync", lock, "--venv", tmp_path / "v2", "--cache-dir", cache)
        assert (site_packages(tmp_path / "v2") / "hello_tool/util.py").read_text() == "X = 1\n"
        assert "Traceback" not in proc.stderr
        # a wheel it does not have: a clear error naming the cache
        other = lock_for(tmp_path / "other" / "pylock.toml", [make_wheel("extra", "1.0", files={"extra.py": ""})])
        assert_user_error(run_envmat("sync", other, "--venv", tmp_path / "v3", "--cache-dir", cache), "cache")
        assert not (tmp_path / "v3").exists()


def test_cleaning_the_cache_while_syncs_run(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path) -> None:
    """`cache clean` waits for running syncs (a shared cache lock): every sync succeeds."""
    wheels = [make_wheel(f"pkg{i}", "1.0", files={f"pkg{i}/m{j}.py": f"X = {j}\n" for j in range(60)}) for i in range(8)]
    lock = lock_for(tmp_path / "pylock.toml", wheels)
    cleaner = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time\n"
         "end = time.time() + 8\n"
         "while time.time() < end:\n"
         "    subprocess.run([sys.executable, '-m', 'envmat', 'cache', 'clean', '-q'])\n"],
    )
    try:
        results = []
        for i in range(8):
            venv = tmp_path / f"v{i}"
            proc = run_envmat("sync", lock, "--venv", venv)
            assert "Traceback" not in proc.stderr, proc.stderr
            results.append(proc.returncode)
            assert proc.returncode == 0, proc.stderr
            assert run_envmat("check", "--venv", venv, lock).returncode == 0
    finally:
        cleaner.wait(timeout=60)
    assert results == [0] * 8
    # afterwards, every venv converges
    for i in range(8):
        run_ok("sync", lock, "--venv", tmp_path / f"v{i}")
        assert run_envmat("check", "--venv", tmp_path / f"v{i}", lock).returncode == 0


def test_an_entry_deleted_behind_envmats_back_is_fetched_again(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path) -> None:
    import shutil
    import time

    wheels = [make_wheel(f"pkg{i}", "1.0", files={f"pkg{i}/m{j}.py": f"X = {j}\n" for j in range(100)}) for i in range(6)]
    lock = lock_for(tmp_path / "pylock.toml", wheels)
    run_ok("sync", lock, "--venv", tmp_path / "warm")  # fills the cache
    shutil.rmtree(cache_dir / "replays-v2")  # the full path (a replay has no journal to wait for)
    env = dict(os.environ, ENVMAT_FAULT_DELAY="0.003")
    venv = tmp_path / "venv"
    proc = subprocess.Popen([sys.executable, "-m", "envmat", "sync", str(lock), "--venv", str(venv)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (venv / ".envmat/journal.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.002)
    shutil.rmtree(cache_dir / "unpacked-v1")  # not through envmat: no cache lock
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert run_envmat("check", "--venv", venv, lock).returncode == 0
