"""A new venv's files placed while its other wheels download (envmat/ahead.py).

Each test serves real wheels from a server on 127.0.0.1 into an empty cache, so that the venv
is made and filled wheel by wheel while later downloads are still running; the ``slow`` fault
decides which wheel arrives last.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from envmat.record import parse_record
from tests.conftest import run_envmat, tree_snapshot
from tests.test_replay import sync_in_process
from tests.test_sync import make_demo, run_ok, served_lock, site_packages

MakeWheel = Callable[..., Path]


def cache_file(cache: Path, wheel: Path, rel: str) -> Path:
    key = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (found,) = (cache / "unpacked-v1" / key).glob(f"*/{rel}")
    return found


def test_a_conflict_placed_from_the_early_wheel_ends_with_the_manifest_winner(
    make_wheel: MakeWheel, tmp_path: Path, http_server, cache_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    # zeta arrives first and its copy of the shared path is placed; alpha (first by name, so the
    # manifest's owner of the path) comes a second later and must replace it
    alpha = make_wheel("alpha", "1.0", files={"alpha.py": "", "shared/data.txt": "from alpha\n"})
    zeta = make_wheel("zeta", "1.0", files={"zeta.py": "", "shared/data.txt": "from zeta\n"})
    lock = served_lock(tmp_path, http_server, [alpha, zeta])
    http_server.set_fault(alpha.name, "slow", seconds=1.0, always=True)
    venv = tmp_path / "venv"
    proc = run_ok("sync", lock, "--venv", venv, "--link-mode", "hardlink")
    assert "shared/data.txt" in proc.stderr and "keeping alpha's" in proc.stderr
    placed = site_packages(venv) / "shared/data.txt"
    assert placed.read_text() == "from alpha\n"
    # the very cache file of alpha's entry, linked: not zeta's bytes left behind under its name
    assert os.path.samefile(placed, cache_file(cache_dir, alpha, "shared/data.txt"))
    assert not [p for p in venv.rglob("*") if ".envmat-" in p.name]
    # both RECORDs list the path (each distribution ships it)
    for name in ("alpha", "zeta"):
        (record,) = site_packages(venv).glob(f"{name}-1.0.dist-info/RECORD")
        assert "shared/data.txt" in {row.path for row in parse_record(record.read_text())}


def test_a_failed_download_after_files_were_placed_leaves_no_venv(
    make_wheel: MakeWheel, tmp_path: Path, http_server, cache_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    quick = make_wheel("quick", "1.0", files={f"quick/m{i}.py": f"X = {i}\n" for i in range(40)})
    broken = make_wheel("broken", "1.0", files={"broken.py": ""})
    lock = served_lock(tmp_path, http_server, [quick, broken])
    # broken fails only after its retries (~2 s): quick's files are in the venv by then
    http_server.set_fault(broken.name, "always-500", always=True)
    venv = tmp_path / "venv"
    proc = run_envmat("sync", lock, "--venv", venv)
    assert proc.returncode == 1, proc.stderr
    assert "broken" in proc.stderr and "hint:" in proc.stderr and "Traceback" not in proc.stderr
    assert not venv.exists()
    assert not [p for p in tmp_path.iterdir() if "creating" in p.name]
    # quick's entry stays in the cache: the next try only fetches what failed
    http_server.clear_fault(broken.name)
    http_server.clear_requests()
    run_ok("sync", lock, "--venv", venv)
    assert len(http_server.requests) == len(http_server.requests_for(broken.name)) == 1
    out = subprocess.run([venv / "bin/python", "-c", "import quick.m7, broken; print(quick.m7.X)"], capture_output=True, text=True, check=True)
    assert out.stdout == "7\n"


def test_killed_while_files_are_placed_the_next_run_makes_the_venv_again(
    make_wheel: MakeWheel, tmp_path: Path, http_server, cache_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    many = make_wheel("many", "1.0", files={f"many/m{i}.py": f"X = {i}\n" for i in range(60)})
    late = make_wheel("late", "1.0", files={"late.py": "Y = 1\n"})
    lock = served_lock(tmp_path, http_server, [many, late])
    http_server.set_fault(late.name, "slow", seconds=1.0, always=True)
    venv = tmp_path / "venv"
    # the 10th file placed kills the process (as SIGKILL would): many's files are half placed
    proc = run_envmat("sync", lock, "--venv", venv, env={"ENVMAT_FAULT_KILL_AFTER": "10"})
    assert proc.returncode == 137, proc.stderr
    sp = site_packages(venv)
    assert 0 < len(list((sp / "many").glob("*.py"))) < 60
    proc = run_ok("sync", lock, "--venv", venv)
    assert "half-made venv" in proc.stderr
    assert len(list((sp / "many").glob("*.py"))) == 60
    assert run_envmat("check", "--venv", venv, lock).returncode == 0
    out = subprocess.run([venv / "bin/python", "-c", "import many.m59, late; print(many.m59.X, late.Y)"], capture_output=True, text=True, check=True)
    assert out.stdout == "59 1\n"


def test_copy_mode_places_whole_copies(
    make_wheel: MakeWheel, tmp_path: Path, http_server, cache_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    first = make_wheel("first", "1.0", files={"first/__init__.py": "A = 1\n", "first/big.txt": "x" * 200_000})
    late = make_wheel("late", "1.0", files={"late.py": "Y = 2\n"})
    lock = served_lock(tmp_path, http_server, [first, late])
    http_server.set_fault(late.name, "slow", seconds=0.5, always=True)
    venv = tmp_path / "venv"
    run_ok("sync", lock, "--venv", venv, "--link-mode", "copy")
    big = site_packages(venv) / "first/big.txt"
    assert big.read_text() == "x" * 200_000
    assert not os.path.samefile(big, cache_file(cache_dir, first, "first/big.txt"))
    assert os.stat(big).st_nlink == 1
    assert not [p for p in venv.rglob("*") if ".envmat-" in p.name]
    assert run_envmat("check", "--venv", venv, lock).returncode == 0


def test_a_venv_placed_ahead_is_the_venv_the_other_paths_make(
    make_wheel: MakeWheel, tmp_path: Path, http_server, cache_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    # the demo: launchers, a #!python script, a data file, two wheels sharing nsdemo/__init__.py
    lock = served_lock(tmp_path, http_server, make_demo(make_wheel))
    http_server.set_fault("ns_a-1.0-py3-none-any.whl", "slow", seconds=0.5, always=True)
    venv = tmp_path / "venv"
    rc, full, _ = sync_in_process("sync", lock, "--venv", venv)  # cold: placed ahead
    assert rc == 0 and full and len(http_server.requests) == 3
    placed_ahead = tree_snapshot(venv)
    # the same venv from the warm cache by the full path (no record to replay), then replayed
    shutil.rmtree(venv)
    shutil.rmtree(cache_dir / "replays-v2")
    rc, full, _ = sync_in_process("sync", lock, "--venv", venv)
    assert rc == 0 and full
    assert tree_snapshot(venv) == placed_ahead
    shutil.rmtree(venv)
    rc, full, _ = sync_in_process("sync", lock, "--venv", venv)
    assert rc == 0 and not full
    assert tree_snapshot(venv) == placed_ahead
    assert len(http_server.requests) == 3
    out = subprocess.run([venv / "bin/hello-tool"], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["hello", str(venv)]


def test_a_backlog_left_at_finish_is_linked_by_two_threads(
    make_wheel: MakeWheel, tmp_path: Path, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    # finish() before the thread has placed anything: it lists the whole backlog (the rest of
    # its wheel and the queued ones) and two threads link it; every file ends linked once from
    # its own cache entry, a path two wheels ship from one of them, and `placed` says which
    import sys
    import time

    from envmat import ahead
    from envmat.api import _wheel_dist
    from envmat.cache import CachedWheel
    from envmat.fs import SPLIT_AT, Linker
    from envmat.target import query_target
    from envmat.wheel import unpack_wheel

    entries = []
    for n in range(3):
        files = {f"pkg{n}/sub{i % 7}/m{i}.py": f"X = {n * 10_000 + i}\n" for i in range(SPLIT_AT // 2)}
        files["shared/data.txt"] = f"from pkg{n}\n"
        wheel = make_wheel(f"pkg{n}", "1.0", files=files)
        root = tmp_path / "cache" / f"pkg{n}"
        index = unpack_wheel(wheel, root)
        entries.append(CachedWheel(dist=_wheel_dist(wheel), index=index, root=root))
    splits: list[int] = []
    real_in_two = ahead.in_two

    def in_two(work, batches):  # type: ignore[no-untyped-def]
        splits.append(sum(len(half) for batch in batches for half in batch))
        real_in_two(work, batches)

    monkeypatch.setattr(ahead, "in_two", in_two)
    python = Path(sys.executable)
    venv = tmp_path / "venv"
    target = query_target(python, None).in_venv(venv)
    made: list[ahead.PlaceAhead] = []

    def make_venv() -> None:  # the venv is "made" once finish() has begun: nothing placed before
        while not made:
            time.sleep(0.001)
        assert made[0]._draining.wait(10)

    place = ahead.PlaceAhead(str(venv), target, str(python), Linker("hardlink"), make_venv)
    made.append(place)
    for e in entries:
        place.submit(e)
    place.finish()
    # the whole of every wheel's part of the manifest (generated files are skipped in it)
    assert splits == [sum(len(files) for _, files in place.parts.values())]
    sp = venv / target.rel("purelib")
    for n, e in enumerate(entries):
        for i in (0, 1, SPLIT_AT // 2 - 1):
            rel = f"pkg{n}/sub{i % 7}/m{i}.py"
            assert (sp / rel).read_text() == f"X = {n * 10_000 + i}\n"
            assert os.path.samefile(sp / rel, e.root / "purelib" / rel)
    shared = sp / "shared/data.txt"
    owner = place.placed[f"{target.rel('purelib')}/shared/data.txt"]
    assert os.path.samefile(shared, owner) and shared.read_text() in {f"from pkg{n}\n" for n in range(3)}
    links = [p for p in venv.rglob("*") if p.is_file()]
    assert len(links) == len(place.placed)  # (with each dist-info's METADATA and WHEEL)
    assert len(list(sp.glob("pkg*/sub*/*.py"))) == 3 * (SPLIT_AT // 2)
    # each wheel's part of the manifest is there for the transaction
    assert len(place.parts) == 3
