"""envmat check, --reinstall-modified, --compile-bytecode, link modes, --offline, the cache commands."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from envmat.record import parse_record
from tests.conftest import run_envmat, tree_snapshot
from tests.test_sync import lock_for, make_demo, run_ok, site_packages

MakeWheel = Callable[..., Path]


@pytest.fixture
def demo_lock(make_wheel: MakeWheel, tmp_path: Path) -> Path:
    return lock_for(tmp_path / "pylock.toml", make_demo(make_wheel))


def test_check_is_clean_after_sync_and_catches_a_modified_file(demo_lock: Path, tmp_path: Path, cache_dir: Path) -> None:
    venv = tmp_path / "venv"
    run_ok("sync", demo_lock, "--venv", venv)
    proc = run_ok("check", "--venv", venv, demo_lock)
    assert proc.stdout.startswith("OK:")
    target = site_packages(venv) / "hello_tool/util.py"
    # a same-size edit: only the hash can tell
    target.write_text("X = 2\n")
    proc = run_envmat("check", "--venv", venv, "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert [(i["kind"], i["dist"]) for i in doc["issues"]] == [("modified", "hello-tool")]
    # repair: the cache entry (hardlinked with the edited file) is rebuilt, the file rewritten
    run_ok("sync", demo_lock, "--venv", venv, "--reinstall-modified")
    assert target.read_text() == "X = 1\n"
    assert run_envmat("check", "--venv", venv).returncode == 0
    # a second venv from the repaired cache gets the original bytes
    run_ok("sync", demo_lock, "--venv", tmp_path / "other")
    assert (site_packages(tmp_path / "other") / "hello_tool/util.py").read_text() == "X = 1\n"


def test_check_reports_missing_unowned_and_lock_differences(demo_lock: Path, tmp_path: Path, make_wheel: MakeWheel) -> None:
    venv = tmp_path / "venv"
    run_ok("sync", demo_lock, "--venv", venv)
    sp = site_packages(venv)
    (sp / "nsdemo/a.py").unlink()
    (sp / "stray.py").write_text("")
    other = lock_for(tmp_path / "other" / "pylock.toml", [make_wheel("solo", "1.0", files={"solo.py": ""})])
    proc = run_envmat("check", "--venv", venv, other, "--json")
    assert proc.returncode == 1
    kinds = {(i["kind"], i["dist"] or i["path"]) for i in json.loads(proc.stdout)["issues"]}
    assert ("missing", "ns-a") in kinds
    assert ("unowned", f"{sp.relative_to(venv).as_posix()}/stray.py") in kinds
    assert ("not-installed", "solo") in kinds and ("extra", "hello-tool") in kinds


def test_compile_bytecode_records_pyc_and_removes_them_with_the_module(demo_lock: Path, tmp_path: Path, make_wheel: MakeWheel) -> None:
    venv = tmp_path / "venv"
    run_ok("sync", demo_lock, "--venv", venv, "--compile-bytecode")
    sp = site_packages(venv)
    pycs = list((sp / "hello_tool/__pycache__").glob("*.pyc"))
    assert {p.name.split(".")[0] for p in pycs} == {"__init__", "util"}
    record = {e.path for e in parse_record((sp / "hello_tool-1.0.dist-info/RECORD").read_text())}
    assert {f"hello_tool/__pycache__/{p.name}" for p in pycs} <= record
    assert run_envmat("check", "--venv", venv).returncode == 0
    # the lock without hello-tool: its modules and their bytecode go, the directory too
    run_ok("sync", lock_for(tmp_path / "small" / "pylock.toml", [make_wheel("solo", "1.0", files={"solo.py": ""})]), "--venv", venv)
    assert not (sp / "hello_tool").exists()


@pytest.mark.parametrize("mode", ["hardlink", "copy", "symlink"])
def test_link_modes(demo_lock: Path, tmp_path: Path, cache_dir: Path, mode: str) -> None:
    venv = tmp_path / "venv"
    run_ok("sync", demo_lock, "--venv", venv, "--link-mode", mode)
    installed = site_packages(venv) / "hello_tool/util.py"
    (cached,) = [p for p in (cache_dir / "unpacked-v1").rglob("hello_tool/util.py")]
    if mode == "hardlink":
        assert installed.stat().st_ino == cached.stat().st_ino and installed.stat().st_nlink >= 2
    elif mode == "copy":
        assert installed.stat().st_ino != cached.stat().st_ino and installed.stat().st_nlink == 1
    else:
        assert installed.is_symlink() and Path(os.readlink(installed)) == cached
    assert installed.read_text() == "X = 1\n"
    # generated files are never links into the cache
    assert (venv / "bin/hello-tool").stat().st_nlink == 1 and not (venv / "bin/hello-tool").is_symlink()


@pytest.mark.parametrize("mode", ["hardlink", "copy", "auto"])
@pytest.mark.parametrize("jobs", ["1", "4"])
def test_many_files_in_every_mode_and_worker_count(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path, mode: str, jobs: str) -> None:
    """Enough files for several worker batches (64 each), in nested new directories, with
    launchers and dist-info files staged beside them; then an upgrade replaces them all."""
    files = {f"many/d{i % 7}/sub{i % 3}/m{i}.py": f"N = {i}\n" for i in range(300)}
    v1 = make_wheel("many", "1.0", files=files, entry_points={"console_scripts": {"many": "many:main"}})
    lock = lock_for(tmp_path / "pylock.toml", [v1])
    venv = tmp_path / "venv"
    run_ok("sync", lock, "--venv", venv, "--link-mode", mode, "--jobs", jobs)
    sp = site_packages(venv)
    assert {str(p.relative_to(sp)) for p in sp.glob("many/*/*/*.py")} == set(files)
    assert all((sp / p).read_text() == text for p, text in files.items())
    if mode == "copy":
        assert all((sp / p).stat().st_nlink == 1 for p in files)
    record = parse_record((sp / "many-1.0.dist-info/RECORD").read_text())
    on_disk = {str(p.relative_to(sp)) for p in sp.rglob("*") if p.is_file() and "many" in str(p.relative_to(sp))}
    on_disk.add("../../../bin/many")
    assert {e.path for e in record} == on_disk and len(record) == 300 + 7  # + launcher, 6 dist-info files
    v2 = make_wheel("many", "2.0", files={p: t.replace("N", "M") for p, t in files.items()})
    run_ok("sync", lock_for(tmp_path / "pylock.toml", [v2]), "--venv", venv, "--link-mode", mode, "--jobs", jobs)
    assert all((sp / p).read_text() == text.replace("N", "M") for p, text in files.items())
    assert not (venv / "bin/many").exists() and not (sp / "many-1.0.dist-info").exists()


def test_hardlink_across_filesystems_falls_back_to_copy(demo_lock: Path, tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second filesystem (/dev/shm) to provoke EXDEV")
    import tempfile

    with tempfile.TemporaryDirectory(dir=shm) as other_fs:
        venv = tmp_path / "venv"
        proc = run_ok("sync", demo_lock, "--venv", venv, "--link-mode", "hardlink", "--cache-dir", other_fs)
        assert "hardlink failed" in proc.stderr and "using copy" in proc.stderr
        assert proc.stderr.count("hardlink failed") == 1
        assert (site_packages(venv) / "hello_tool/util.py").stat().st_nlink == 1
        out = subprocess.run([venv / "bin/hello-tool"], capture_output=True, text=True, check=True).stdout
        assert out.startswith("hello")


def test_offline_uses_the_cache_and_lists_every_missing_file(make_wheel: MakeWheel, tmp_path: Path, http_server, cache_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.wheelmaker import package_entry, wheel_entry, write_pylock

    wheels = make_demo(make_wheel)
    pkgs = []
    for whl in wheels:
        (tmp_path / "served" / whl.name).write_bytes(whl.read_bytes())
        name, version = whl.name.split("-")[:2]
        pkgs.append(package_entry(name.replace("_", "-"), version, [wheel_entry(whl, url=http_server.url_for(whl.name))]))
    lock = write_pylock(tmp_path / "pylock.toml", pkgs)
    proc = run_envmat("sync", lock, "--venv", tmp_path / "v0", "--offline")
    assert proc.returncode == 1 and "3 locked file(s) are not in the cache" in proc.stderr
    for whl in wheels:
        assert whl.name.split("-")[0].replace("_", "-") in proc.stderr
    assert not (tmp_path / "v0").exists() and http_server.requests == []
    run_ok("sync", lock, "--venv", tmp_path / "v1")
    seen = len(http_server.requests)
    run_ok("sync", lock, "--venv", tmp_path / "v2", "--offline")
    assert len(http_server.requests) == seen
    # the same bytes (RECORDs differ only by the launchers' venv path in their hashes)
    snap = lambda v: {k: h for k, h in tree_snapshot(site_packages(v)).items() if not k.endswith("RECORD")}  # noqa: E731
    assert snap(tmp_path / "v2") == snap(tmp_path / "v1")


def test_cache_commands(demo_lock: Path, tmp_path: Path, cache_dir: Path) -> None:
    assert run_ok("cache", "dir").stdout.strip() == str(cache_dir)
    run_ok("sync", demo_lock, "--venv", tmp_path / "venv")
    info = json.loads(run_ok("cache", "info", "--json").stdout)
    assert info["unpacked wheels"] == 3 and info["bytes"] > 0
    assert info["wheel archives"] == 0  # the demo lock's wheels are local paths, read in place
    assert "removed 0 cache entries" in run_ok("cache", "prune").stdout
    old = 1_000_000_000
    for index in (cache_dir / "unpacked-v1").glob("*/index.json"):
        os.utime(index, (old, old))
    (selection,) = (cache_dir / "selections-v1").iterdir()  # the lock's remembered selection
    os.utime(selection, (old, old))
    assert "removed 4 cache entries" in run_ok("cache", "prune", "--older-than", "1").stdout
    assert not selection.exists()
    run_ok("sync", demo_lock, "--venv", tmp_path / "venv2")
    assert selection.exists()
    run_ok("cache", "clean")
    assert json.loads(run_ok("cache", "info", "--json").stdout)["unpacked wheels"] == 0
    assert not any((cache_dir / "selections-v1").iterdir())
    assert not any((cache_dir / "replays-v2").iterdir())
    # the venvs made from it still work (hardlinks keep their bytes)
    out = subprocess.run([tmp_path / "venv2/bin/hello-tool"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("hello")


def test_fast_noop_notices_every_change(demo_lock: Path, tmp_path: Path, make_wheel: MakeWheel) -> None:
    venv = tmp_path / "venv"
    run_ok("sync", demo_lock, "--venv", venv)
    assert "Nothing to do" in run_ok("sync", demo_lock, "--venv", venv).stderr
    # a distribution that appears behind envmat's back is removed by the next sync
    stray = make_wheel("stray", "1.0", files={"stray.py": ""})
    import envmat

    envmat.LockedVenv(venv).install_wheel(stray)
    assert "- stray==1.0" in run_ok("sync", demo_lock, "--venv", venv).stderr
    # another selection is another sync
    assert "Nothing to do" in run_ok("sync", demo_lock, "--venv", venv, "--inexact").stderr
    # a deleted dist-info is noticed
    next(site_packages(venv).glob("ns_a-*.dist-info")).rename(tmp_path / "gone")
    assert "+ ns-a==1.0" in run_ok("sync", demo_lock, "--venv", venv).stderr


def test_a_tampered_cache_entry_is_rebuilt_not_installed(demo_lock: Path, tmp_path: Path, cache_dir: Path) -> None:
    run_ok("sync", demo_lock, "--venv", tmp_path / "v1", "--link-mode", "hardlink")
    installed = site_packages(tmp_path / "v1") / "hello_tool/util.py"
    # an in-place edit of a hardlinked file edits the cache's copy too (same size: only mtime tells)
    with open(installed, "r+") as f:
        f.write("X = 9\n")
    proc = run_ok("sync", demo_lock, "--venv", tmp_path / "v2")
    assert "cache entry of hello-tool was modified" in proc.stderr
    assert (site_packages(tmp_path / "v2") / "hello_tool/util.py").read_text() == "X = 1\n"
    assert run_envmat("check", "--venv", tmp_path / "v2").returncode == 0


def test_conflicting_files_warn_and_strict_refuses(make_wheel: MakeWheel, tmp_path: Path) -> None:
    a = make_wheel("alpha", "1.0", files={"alpha.py": "", "shared/data.txt": "from alpha\n"})
    z = make_wheel("zeta", "1.0", files={"zeta.py": "", "shared/data.txt": "from zeta\n"})
    lock = lock_for(tmp_path / "pylock.toml", [z, a])
    proc = run_envmat("sync", lock, "--venv", tmp_path / "strict", "--strict")
    assert proc.returncode == 1 and "different contents" in proc.stderr and "hint:" in proc.stderr
    assert not (tmp_path / "strict").exists()
    proc = run_ok("sync", lock, "--venv", tmp_path / "v")
    assert "warning:" in proc.stderr and "shared/data.txt" in proc.stderr
    assert "alpha" in proc.stderr and "zeta" in proc.stderr
    # the first distribution by name wins, whatever the order in the lock
    assert (site_packages(tmp_path / "v") / "shared/data.txt").read_text() == "from alpha\n"
