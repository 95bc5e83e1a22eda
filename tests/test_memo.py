"""Remembered selections (envmat/lock/memo.py): a pylock already read for a target is not read
again, and a remembered answer never outlives the lock bytes, the target or the options it is for."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_envmat
from tests.wheelmaker import package_entry, wheel_entry, write_pylock

MakeWheel = Callable[..., Path]


def run_ok(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # a new venv from a lock synced before is a replay (replay.py), which never selects: these
    # tests are about the selection memo of the full path, so they drop the replay records
    cache = os.environ.get("ENVMAT_CACHE_DIR")
    if cache:
        shutil.rmtree(Path(cache) / "replays-v2", ignore_errors=True)
    proc = run_envmat(*args)
    assert proc.returncode == 0, proc.stderr
    return proc


def installed(venv: Path) -> set[str]:
    (sp,) = venv.glob("lib/python3.*/site-packages")
    return {p.name.split("-")[0] for p in sp.glob("*.dist-info")}


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "selections-v1").glob("*/*.json"))


def split_lock(tmp_path: Path, make_wheel: MakeWheel) -> Path:
    old = make_wheel("old-py", "1.0", files={"old_py.py": "WHO = 'old'\n"})
    new = make_wheel("new-py", "1.0", files={"new_py.py": "WHO = 'new'\n"})
    return write_pylock(
        tmp_path / "pylock.toml",
        [
            package_entry("old-py", "1.0", [wheel_entry(old, base=tmp_path)], marker="python_version < '3.10'"),
            package_entry("new-py", "1.0", [wheel_entry(new, base=tmp_path)], marker="python_version >= '3.10'"),
        ],
    )


def test_each_target_gets_its_own_selection(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path, python_factory) -> None:  # type: ignore[no-untyped-def]
    lock = split_lock(tmp_path, make_wheel)
    py39, py312 = python_factory("3.9"), python_factory("3.12")
    for round_ in range(2):  # the second round is served from the memo
        run_ok("sync", lock, "--venv", tmp_path / f"a{round_}", "--python", py39)
        run_ok("sync", lock, "--venv", tmp_path / f"b{round_}", "--python", py312)
        assert installed(tmp_path / f"a{round_}") == {"old_py"}
        assert installed(tmp_path / f"b{round_}") == {"new_py"}
    assert len(entries(cache_dir)) == 2  # one per target, both under the same lock digest
    assert len({p.parent for p in entries(cache_dir)}) == 1


def test_a_remembered_selection_is_used_and_an_edited_lock_is_read_again(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path) -> None:
    lock = split_lock(tmp_path, make_wheel)
    run_ok("sync", lock, "--venv", tmp_path / "v1")
    (entry,) = entries(cache_dir)
    # a hit answers without reading the lock: an entry that selects nothing installs nothing
    data = json.loads(entry.read_text())
    assert [d["name"] for d in data["dists"]] == ["new-py"]
    entry.write_text(json.dumps({"dists": [], "warnings": []}))
    run_ok("sync", lock, "--venv", tmp_path / "v2")
    assert installed(tmp_path / "v2") == set()
    # other bytes are another lock: read again (the stale entry is not consulted)
    extra = make_wheel("extra-py", "1.0", files={"extra_py.py": ""})
    write_pylock(lock, [package_entry("extra-py", "1.0", [wheel_entry(extra, base=tmp_path)])])
    run_ok("sync", lock, "--venv", tmp_path / "v3")
    assert installed(tmp_path / "v3") == {"extra_py"}
    assert len(entries(cache_dir)) == 2


def test_a_broken_entry_is_a_miss(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path) -> None:
    lock = split_lock(tmp_path, make_wheel)
    run_ok("sync", lock, "--venv", tmp_path / "v1")
    (entry,) = entries(cache_dir)
    entry.write_text("{not json")
    run_ok("sync", lock, "--venv", tmp_path / "v2")
    assert installed(tmp_path / "v2") == {"new_py"}
    assert json.loads(entry.read_text())["dists"][0]["name"] == "new-py"  # written again


def extras_lock(tmp_path: Path, make_wheel: MakeWheel) -> Path:
    """base-py always; opt-py only with ``--extra fast``."""
    base = make_wheel("base-py", "1.0", files={"base_py.py": ""})
    opt = make_wheel("opt-py", "1.0", files={"opt_py.py": ""})
    return write_pylock(
        tmp_path / "pylock.toml",
        [
            package_entry("base-py", "1.0", [wheel_entry(base, base=tmp_path)]),
            package_entry("opt-py", "1.0", [wheel_entry(opt, base=tmp_path)], marker="'fast' in extras"),
        ],
        extras=["fast"],
    )


def test_options_are_part_of_the_key(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path) -> None:
    lock = extras_lock(tmp_path, make_wheel)
    run_ok("sync", lock, "--venv", tmp_path / "plain")
    run_ok("sync", lock, "--venv", tmp_path / "fast", "--extra", "fast")
    run_ok("sync", lock, "--venv", tmp_path / "plain2")
    assert installed(tmp_path / "plain") == installed(tmp_path / "plain2") == {"base_py"}
    assert installed(tmp_path / "fast") == {"base_py", "opt_py"}
    assert len(entries(cache_dir)) == 2


def test_selections_that_cannot_be_stored_are_recomputed(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path) -> None:
    lock = split_lock(tmp_path, make_wheel)
    (cache_dir / "selections-v1").write_text("in the way")  # no directory can be made there
    for name in ("v1", "v2"):
        run_ok("sync", lock, "--venv", tmp_path / name)
        assert installed(tmp_path / name) == {"new_py"}
    assert (cache_dir / "selections-v1").read_text() == "in the way"


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "online"])
def test_a_warm_fresh_sync_imports_nothing_heavy(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path, offline: bool) -> None:
    """With the wheels unpacked and the selection remembered, a new venv is made without the
    TOML parser, packaging, logging, thread pools or the HTTP client (their imports cost more
    than the install itself on a small lock); without --offline too, since a lock seen before
    does not start the HTTP client ahead (api.py)."""
    lock = split_lock(tmp_path, make_wheel)
    run_ok("sync", lock, "--venv", tmp_path / "first")
    shutil.rmtree(cache_dir / "replays-v2")
    flags = ["-q", "--offline"] if offline else ["-q"]
    code = (
        "import sys, envmat.cli\n"
        f"rc = envmat.cli.main(['sync', {str(lock)!r}, '--venv', {str(tmp_path / 'second')!r}, *{flags!r}])\n"
        "heavy = ('tomllib', 'tomli', 'logging', 'concurrent.futures', 'http.client', 'ssl', 'envmat.transport', 'filelock', 'subprocess')\n"
        "found = [m for m in sys.modules if m in heavy or m.startswith('packaging.')]\n"  # bare `packaging` is its version string
        "print(rc, sorted(found))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "ENVMAT_CACHE_DIR": str(cache_dir)})
    assert proc.stdout.split(maxsplit=1) == ["0", "[]\n"], proc.stderr
    assert installed(tmp_path / "second") == {"new_py"}
