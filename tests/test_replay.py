"""Replayed first syncs (envmat/replay.py): a new venv from a lock this cache installed before is
made without reading the lock again, and is the venv the full path would have made."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_envmat, tree_snapshot
from tests.test_memo import extras_lock
from tests.test_sync import lock_for, make_demo, site_packages

MakeWheel = Callable[..., Path]


def sync_in_process(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, bool, str]:
    """(exit status, whether the full path ran, stderr): a replay never imports attrs."""
    code = (
        "import sys, envmat.cli\n"
        f"rc = envmat.cli.main({[str(a) for a in args]!r})\n"
        "print(rc, 'attrs' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **(env or {})})
    rc, full = proc.stdout.split()
    return int(rc), full == "True", proc.stderr


@pytest.fixture
def demo(make_wheel: MakeWheel, tmp_path: Path) -> Path:
    return lock_for(tmp_path / "pylock.toml", make_demo(make_wheel))


def test_a_replay_makes_the_venv_the_full_path_makes(demo: Path, tmp_path: Path, cache_dir: Path) -> None:
    venv = tmp_path / "venv"
    rc, full, first_out = sync_in_process("sync", demo, "--venv", venv)
    assert rc == 0 and full
    reference = tree_snapshot(venv)
    shutil.rmtree(venv)
    rc, full, out = sync_in_process("sync", demo, "--venv", venv)
    assert rc == 0 and not full  # replayed
    assert tree_snapshot(venv) == reference
    # the same account of what it did
    assert [ln for ln in out.splitlines() if ln.startswith("+ ")] == [ln for ln in first_out.splitlines() if ln.startswith("+ ")]
    assert f"Synced {venv}: added 3, replaced 0, removed 0, kept 0" in out
    # elsewhere: launchers and RECORDs name the new venv; check agrees; the next sync is a no-op
    other = tmp_path / "elsewhere" / "env"
    other.parent.mkdir()
    rc, full, _ = sync_in_process("sync", demo, "--venv", other, "-q")
    assert rc == 0 and not full
    out = subprocess.run([other / "bin/hello-tool"], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["hello", str(other)]
    out = subprocess.run([other / "bin/hello-sh"], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["script", str(other / "bin/python")]
    assert run_envmat("check", "--venv", other, demo).returncode == 0
    assert "Nothing to do" in run_envmat("sync", demo, "--venv", other).stderr
    assert not (tmp_path / "elsewhere" / ".env.envmat-creating").exists()


def test_no_replay_from_an_edited_cache_file(demo: Path, tmp_path: Path, cache_dir: Path) -> None:
    rc, _, _ = sync_in_process("sync", demo, "--venv", tmp_path / "v1")
    util = site_packages(tmp_path / "v1") / "hello_tool/util.py"
    util.write_text("X = 666\n")  # in place, through the hard link: the cache's copy changes too
    rc, full, _ = sync_in_process("sync", demo, "--venv", tmp_path / "v2")
    assert rc == 0 and full  # the full path ran, found the entry tampered and rebuilt it
    assert (site_packages(tmp_path / "v2") / "hello_tool/util.py").read_text() == "X = 1\n"


def test_other_options_or_link_modes_are_not_replayed(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path) -> None:
    lock = extras_lock(tmp_path, make_wheel)
    assert sync_in_process("sync", lock, "--venv", tmp_path / "plain")[:2] == (0, True)
    assert sync_in_process("sync", lock, "--venv", tmp_path / "fast", "--extra", "fast")[:2] == (0, True)
    assert sync_in_process("sync", lock, "--venv", tmp_path / "fast2", "--extra", "fast")[:2] == (0, False)
    assert sync_in_process("sync", lock, "--venv", tmp_path / "copy", "--link-mode", "copy")[:2] == (0, True)
    assert sync_in_process("sync", lock, "--venv", tmp_path / "copy2", "--link-mode", "copy")[:2] == (0, True)
    sites = {name: {p.name for p in site_packages(tmp_path / name).glob("*_py.py")} for name in ("plain", "fast", "fast2", "copy2")}
    assert sites == {"plain": {"base_py.py"}, "fast": {"base_py.py", "opt_py.py"}, "fast2": {"base_py.py", "opt_py.py"}, "copy2": {"base_py.py"}}
    assert (site_packages(tmp_path / "copy2") / "base_py.py").stat().st_nlink == 1


@pytest.mark.parametrize("kill_after", [1, 6, 15])
def test_a_killed_replay_is_made_again(demo: Path, tmp_path: Path, cache_dir: Path, kill_after: int) -> None:
    venv = tmp_path / "venv"
    assert sync_in_process("sync", demo, "--venv", venv)[0] == 0
    reference = tree_snapshot(venv)
    shutil.rmtree(venv)
    proc = run_envmat("sync", demo, "--venv", venv, env={"ENVMAT_FAULT_KILL_AFTER": str(kill_after)})
    assert proc.returncode == 137, proc.stderr
    assert (tmp_path / ".venv.envmat-creating").exists()
    proc = run_envmat("sync", demo, "--venv", venv)
    assert proc.returncode == 0 and "half-made venv" in proc.stderr
    assert tree_snapshot(venv) == reference


def test_the_interpreter_is_part_of_the_record(demo: Path, tmp_path: Path, cache_dir: Path, python_factory) -> None:  # type: ignore[no-untyped-def]
    py39, py312 = python_factory("3.9"), python_factory("3.12")
    assert sync_in_process("sync", demo, "--venv", tmp_path / "a", "--python", py39)[:2] == (0, True)
    # another interpreter: never the other one's record
    assert sync_in_process("sync", demo, "--venv", tmp_path / "b", "--python", py312)[:2] == (0, True)
    assert sync_in_process("sync", demo, "--venv", tmp_path / "c", "--python", py312)[:2] == (0, False)
    assert list((tmp_path / "c").glob("lib/python3.12/site-packages/hello_tool"))
    # a version rather than a path may mean another interpreter tomorrow: never replayed
    assert sync_in_process("sync", demo, "--venv", tmp_path / "d", "--python", "3.12")[:2] == (0, True)
    assert sync_in_process("sync", demo, "--venv", tmp_path / "e", "--python", "3.12")[:2] == (0, True)


def test_the_fast_paths_import_only_the_light_stdlib(demo: Path, tmp_path: Path, cache_dir: Path) -> None:
    """A replay and a no-op decide and act with os, marshal and the C halves of json and
    hashlib: json, re, pathlib, typing and the rest cost more to import than a small install."""
    venv = tmp_path / "venv"
    assert sync_in_process("sync", demo, "--venv", venv)[:2] == (0, True)
    shutil.rmtree(venv)
    heavy = ("json", "re", "hashlib", "pathlib", "typing", "shutil", "contextlib", "base64", "uuid", "threading", "attr", "subprocess", "logging")
    code = (
        "import sys, envmat.cli\n"
        f"rc = envmat.cli.main(['sync', {str(demo)!r}, '--venv', {str(venv)!r}])\n"
        f"print(rc, sorted(m for m in sys.modules if m in {heavy!r}))\n"
    )
    # -S: the interpreter's site (and an editable install's import hook) imports none of them either
    import packaging

    repo = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, str(Path(packaging.__file__).parent.parent)])}
    for expect in ("Synced", "Nothing to do"):  # the replay, then the no-op in the venv it made
        proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env)
        assert proc.stdout.split(maxsplit=1) == ["0", "[]\n"], proc.stderr
        assert expect in proc.stderr
    assert run_envmat("check", "--venv", venv, demo).returncode == 0


def test_a_big_replay_in_two_threads_makes_the_same_venv(demo: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above fs.SPLIT_AT directories and links, two threads make them (depth by depth for
    directories); the venv is the same, and a failing link leaves nothing behind."""
    from envmat import fs, replay
    from envmat.fastpath import noop_options

    venv = tmp_path / "venv"
    assert sync_in_process("sync", demo, "--venv", venv)[:2] == (0, True)
    reference = tree_snapshot(venv)
    shutil.rmtree(venv)
    monkeypatch.setattr(fs, "SPLIT_AT", 0)
    made = replay.try_replay(str(demo), str(venv), None, str(cache_dir), noop_options(), "auto")
    assert made is not None and tree_snapshot(venv) == reference
    assert run_envmat("check", "--venv", venv, demo).returncode == 0
    shutil.rmtree(venv)
    real_link = os.link

    def failing_link(src: str, dst: str) -> None:
        if dst.endswith("util.py"):
            raise OSError(28, "No space left on device")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", failing_link)
    assert replay.try_replay(str(demo), str(venv), None, str(cache_dir), noop_options(), "auto") is None
    assert not venv.exists() and not (tmp_path / ".venv.envmat-creating").exists()


def test_a_cache_file_edited_since_the_record_stops_a_big_replay(demo: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorded size and mtime of each cache file are checked as it is linked, in both
    linking threads: an edited one undoes the replay (nothing left), and the full path then
    makes the venv from a rebuilt entry."""
    from envmat import fs, replay
    from envmat.fastpath import noop_options

    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    assert sync_in_process("sync", demo, "--venv", v1)[:2] == (0, True)
    util = site_packages(v1) / "hello_tool/util.py"
    util.write_text("X = 666\n")  # in place, through the hard link: the cache's copy changes too
    monkeypatch.setattr(fs, "SPLIT_AT", 0)
    assert replay.try_replay(str(demo), str(v2), None, str(cache_dir), noop_options(), "auto") is None
    assert not v2.exists() and not (tmp_path / ".v2.envmat-creating").exists()
    rc, full, _ = sync_in_process("sync", demo, "--venv", v2)
    assert rc == 0 and full
    assert (site_packages(v2) / "hello_tool/util.py").read_text() == "X = 1\n"
