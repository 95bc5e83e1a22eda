"""Several envmat runs at once: one venv is changed by one sync at a time, one cache is shared
safely, and the seed's race (threads fighting over a shared ``nvidia/__init__.py``) cannot happen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

import envmat
from envmat.venvlock import lock_path
from envmat.wheel import WheelIndex
from tests.conftest import run_envmat
from tests.test_faults import (
    NS_INIT,
    _big_wheels,
    assert_same_tree,
    build_ab_wheels,
    make_empty_venv,
    site_packages,
    sync_ok,
    transaction_leftovers,
    venv_tree,
    write_lock,
)
from tests.wheelmaker import make_wheel, package_entry, sha256_file, wheel_entry, write_pylock

ENV: dict[str, str | None] = {"ENVMAT_FAULT_KILL_AFTER": None, "ENVMAT_FAULT_ERRNO": None}


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ENV}


def _start_sync(lock: Path, venv: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "envmat", "sync", str(lock), "--venv", str(venv), *extra],
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_in_exit_order(procs: dict[str, subprocess.Popen[str]], timeout: float = 120) -> list[str]:
    """Names in the order their processes exited: one thread per process notes the moment its
    wait returns (a poll loop would order two exits between polls by the dict's order)."""
    exits: dict[str, float] = {}

    def wait(name: str, p: subprocess.Popen[str]) -> None:
        p.wait()
        exits[name] = time.monotonic()

    threads = [threading.Thread(target=wait, args=item, daemon=True) for item in procs.items()]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert len(exits) == len(procs), f"syncs still running after {timeout}s"
    return sorted(exits, key=exits.__getitem__)


def normalized_tree(venv: Path) -> dict[str, tuple[str, int]]:
    """Files by relative path -> (sha256 with the venv's own path and name replaced, mode): for
    comparing venvs at different paths (launchers, activate scripts and pyvenv.cfg name them)."""
    needle, name = str(venv).encode(), venv.name.encode()
    out: dict[str, tuple[str, int]] = {}
    for path in sorted(venv.rglob("*")):
        rel = path.relative_to(venv).as_posix()
        if "__pycache__" in path.parts:
            continue
        if path.is_symlink():
            out[rel] = ("symlink:" + os.readlink(path), 0)
        elif path.is_file():
            # activate scripts name the venv's directory in the prompt, too
            data = path.read_bytes().replace(needle, b"<VENV>").replace(name, b"<NAME>")
            out[rel] = (hashlib.sha256(data).hexdigest(), path.stat().st_mode & 0o777)
        elif path.is_dir():
            out[rel + "/"] = ("dir", 0)
    return out


# --- one venv, two syncs ------------------------------------------------------------------------


@pytest.mark.slow
def test_two_syncs_of_different_locks_on_one_venv_serialize(
    tmp_path: Path, cache_dir: Path
) -> None:
    # syncs of a few hundred files each, long enough for the two processes to overlap
    wheels_a, wheels_b = _big_wheels(tmp_path / "wheels", per_wheel=14)
    locks = {
        "A": write_lock(tmp_path / "A" / "pylock.toml", wheels_a),
        "B": write_lock(tmp_path / "B" / "pylock.toml", wheels_b),
        # the start of most rounds: neither A nor B, so that both syncs have work to do
        "C": write_lock(tmp_path / "C" / "pylock.toml", dict(sorted(wheels_a.items())[:8])),
    }
    venv = tmp_path / "venv"
    refs = {}
    for name in ("B", "A"):
        if venv.exists():
            shutil.rmtree(venv)
        sync_ok(locks[name], venv, ENV)
        refs[name] = venv_tree(venv)
    waited = 0
    # start: from C, from A, and from no venv at all (both must create it, one does); the
    # last round holds the venv lock until both syncs wait for it, so that they certainly race
    # (free-running rounds can finish one sync before the other starts)
    for round_, start in enumerate(["C", "A", None, "C", None, "C", "held"]):
        held = start == "held"
        if start is None:
            shutil.rmtree(venv)
        elif held:
            sync_ok(locks["C"], venv, ENV)
        else:
            sync_ok(locks[start], venv, ENV)
        first, second = ("A", "B") if round_ % 2 == 0 else ("B", "A")
        early = {}
        with FileLock(str(lock_path(venv))) if held else contextlib.nullcontext():
            procs = {}
            for name in (first, second):
                procs[name] = _start_sync(locks[name], venv)
                if held:  # its first words: that it waits for the lock this test holds
                    stderr = procs[name].stderr
                    assert stderr is not None
                    early[name] = stderr.readline()
        order = _wait_in_exit_order(procs)
        errs = {name: early.get(name, "") + p.communicate()[1] for name, p in procs.items()}
        for name, p in procs.items():
            assert p.returncode == 0, f"round {round_}: sync {name} failed:\n{errs[name]}"
            assert "Traceback" not in errs[name]
        last = order[-1]
        waiting = [name for name, err in errs.items() if "waiting for another envmat" in err]
        if held:
            assert sorted(waiting) == ["A", "B"], errs
        else:
            # whoever had to wait for the venv lock ran its sync second, and exited last
            assert waiting in ([], [last]), (round_, order, waiting, errs)
        waited += bool(waiting)
        assert_same_tree(venv_tree(venv), refs[last], f"round {round_}: {last} exited last")
        assert not transaction_leftovers(venv)
        # a third run of the last lock has nothing left to do
        proc = sync_ok(locks[last], venv, ENV)
        assert "Nothing to do" in proc.stderr, proc.stderr
    assert waited, "the two syncs never overlapped: the test raced nothing"


def test_lock_timeout_while_another_process_holds_the_venv(tmp_path: Path, cache_dir: Path) -> None:
    wheels_a, wheels_b = build_ab_wheels(tmp_path / "wheels")
    lock_a = write_lock(tmp_path / "A" / "pylock.toml", wheels_a)
    lock_b = write_lock(tmp_path / "B" / "pylock.toml", wheels_b)
    venv = tmp_path / "venv"
    sync_ok(lock_a, venv, ENV)
    before = venv_tree(venv)
    held = lock_path(venv)
    assert held == venv.parent / f".{venv.name}.envmat.lock"
    with FileLock(str(held)):
        for lock in (lock_b, lock_a):  # a change, and what would be a no-op: both must wait
            start = time.monotonic()
            proc = run_envmat("sync", lock, "--venv", venv, "--lock-timeout", "0.5", env=ENV)
            elapsed = time.monotonic() - start
            assert proc.returncode == 3, proc.stderr
            assert str(held) in proc.stderr, proc.stderr
            assert "hint:" in proc.stderr and "--lock-timeout" in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr
            assert elapsed >= 0.5
            assert venv_tree(venv) == before
        proc = run_envmat("plan", lock_b, "--venv", venv, "--lock-timeout", "0.2", env=ENV)
        assert proc.returncode == 3, proc.stderr
    # released: the same command goes through
    proc = run_envmat("sync", lock_b, "--venv", venv, "--lock-timeout", "0.5", env=ENV)
    assert proc.returncode == 0, proc.stderr


def test_a_waiting_sync_proceeds_when_the_lock_is_released(tmp_path: Path, cache_dir: Path) -> None:
    wheels_a, _ = build_ab_wheels(tmp_path / "wheels")
    lock_a = write_lock(tmp_path / "A" / "pylock.toml", wheels_a)
    venv = tmp_path / "venv"
    holder = FileLock(str(lock_path(venv)))
    holder.acquire()
    try:
        proc = _start_sync(lock_a, venv, "--lock-timeout", "60")
        time.sleep(1.0)
        assert proc.poll() is None, "the sync must wait for the lock"
        assert not venv.exists(), "nothing may be created before the lock is taken"
    finally:
        holder.release()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "waiting for another envmat process" in err and str(lock_path(venv)) in err


# --- one cold cache, four venvs -----------------------------------------------------------------


def _check_cache_intact(cache: Path) -> None:
    for kind in ("unpacked-v1", "archives-v1"):
        if (cache / kind).is_dir():
            left = [n for n in os.listdir(cache / kind) if n.startswith(".tmp-")]
            assert not left, f"work directories left in {kind}: {left}"
    entries = list((cache / "unpacked-v1").iterdir())
    assert entries
    for entry in entries:
        index = WheelIndex.from_json(json.loads((entry / "index.json").read_bytes()))
        for f in index.files:
            path = entry / f.scheme / f.path
            assert sha256_file(path) == f.sha256, f"torn cache entry: {path}"
    archives = cache / "archives-v1"
    if archives.is_dir():
        for whl in archives.iterdir():
            assert sha256_file(whl) == whl.name[: -len(".whl")], f"bad archive {whl.name}"


@pytest.mark.slow
@pytest.mark.parametrize("source", ["path", "http"])
def test_four_syncs_fill_one_cold_cache(
    tmp_path: Path, cache_dir: Path, source: str, http_server: Any
) -> None:
    _, wheels = _big_wheels(tmp_path / "wheels", per_wheel=12)
    lock = tmp_path / "lock" / "pylock.toml"
    if source == "path":
        write_lock(lock, wheels)
    else:
        served = tmp_path / "served"
        served.mkdir(exist_ok=True)
        pkgs = []
        for name, whl in sorted(wheels.items()):
            shutil.copy(whl, served / whl.name)
            url = http_server.url_for(whl.name)
            pkgs.append(package_entry(name, whl.name.split("-")[1], [wheel_entry(whl, url=url)]))
        write_pylock(lock, pkgs)
    venvs = [tmp_path / f"venv{i}" for i in range(4)]
    for v in venvs:
        make_empty_venv(v)  # venv creation is not what races here; the cache is
    procs = {str(v): _start_sync(lock, v) for v in venvs}
    _wait_in_exit_order(procs)
    for name, p in procs.items():
        _, err = p.communicate()
        assert p.returncode == 0, f"{name}:\n{err}"
    trees = [normalized_tree(v) for v in venvs]
    assert trees[0], "empty venv"
    for v, t in zip(venvs[1:], trees[1:]):
        assert t == trees[0], f"{v.name} differs from {venvs[0].name}"
    assert len(list(site_packages(venvs[0]).glob("*.dist-info"))) == len(wheels)
    _check_cache_intact(cache_dir)
    # and the filled cache serves a fifth venv offline
    proc = run_envmat("sync", lock, "--venv", tmp_path / "venv4", "--offline", env=ENV)
    assert proc.returncode == 0, proc.stderr


# --- the seed's race: identical nvidia/__init__.py in several wheels of one sync -----------------


def _nvidia_wheels(out: Path, count: int = 5, files: int = 10) -> list[tuple[str, Path]]:
    wheels = []
    for i in range(count):
        name = f"nvidia-part{i}-cu12"
        payload = {"nvidia/__init__.py": NS_INIT}
        payload.update(
            {f"nvidia/part{i}/lib/m{j}.py": f"# part {i} file {j}\n" for j in range(files)}
        )
        payload[f"nvidia/part{i}/__init__.py"] = ""
        wheels.append((name, make_wheel(out, name, "12.3", files=payload)))
    return wheels


def _owners_of(sp: Path, rel: str) -> set[str]:
    owners = set()
    for record in sp.glob("*.dist-info/RECORD"):
        if any(line.split(",")[0] == rel for line in record.read_text().splitlines()):
            owners.add(record.parent.name.split("-")[0])
    return owners


@pytest.mark.slow
def test_shared_namespace_file_never_races(tmp_path: Path, cache_dir: Path) -> None:
    wheels = _nvidia_wheels(tmp_path / "wheels")
    lock = write_lock(tmp_path / "all" / "pylock.toml", dict(wheels))
    template = tmp_path / "template"
    make_empty_venv(template)
    # more writes than one executor batch, so that several threads rename into nvidia/ at once
    assert len(wheels) * (10 + 2 + 5) > 64
    work = tmp_path / "venvs"
    work.mkdir()
    for i in range(200):
        venv = work / f"v{i}"
        shutil.copytree(template, venv, symlinks=True)
        if i % 4 == 3:
            # the seed's own entry point: install_wheels_venv(wheels, venv)
            envmat.install_wheels_venv([w for _, w in wheels], venv)
        else:
            envmat.sync(lock, venv, cache_dir=cache_dir, jobs=8)
        sp = site_packages(venv)
        init = sp / "nvidia/__init__.py"
        assert init.read_text() == NS_INIT, f"iteration {i}"
        assert len(list((sp / "nvidia").iterdir())) == len(wheels) + 1
        if i < 199:
            shutil.rmtree(venv)
    # removed owner by owner: the shared file stays until its last owner goes
    sp = site_packages(venv)
    remaining = dict(wheels)
    assert _owners_of(sp, "nvidia/__init__.py") == {n.replace("-", "_") for n in remaining}
    for name, _ in wheels:
        del remaining[name]
        smaller = write_lock(tmp_path / f"without-{name}" / "pylock.toml", remaining)
        report = envmat.sync(smaller, venv, cache_dir=cache_dir)
        assert report.removed == [name]
        part = name.split("-")[1]
        assert not (sp / "nvidia" / part).exists()
        if remaining:
            assert (sp / "nvidia/__init__.py").read_text() == NS_INIT, (
                f"{name} took the shared file"
            )
            assert _owners_of(sp, "nvidia/__init__.py") == {n.replace("-", "_") for n in remaining}
        else:
            assert not (sp / "nvidia").exists(), "the last owner went; so must nvidia/"
