"""A cold sync of many wheels shares the work with a helper process (fillhelper.py): same
venv, same errors, and a helper that dies only costs time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import default_sigint, run_envmat
from tests.httpserver import FaultServer
from tests.wheelmaker import package_entry, wheel_entry, write_pylock

MakeWheel = Callable[..., Path]
HELPED = "fetched by the helper process"


def served_lock(tmp_path: Path, make_wheel: MakeWheel, server: FaultServer, count: int, fault: str = "slow") -> Path:
    """``count`` wheels behind the server, each slowed (or broken) by ``fault``, in one lock."""
    pkgs = []
    for i in range(count):
        whl = make_wheel(f"hw{i:02d}", "1.0", files={f"hw{i:02d}/__init__.py": f"N = {i}\n"})
        shutil.copy(whl, server.root / whl.name)
        if fault == "slow":
            server.set_fault(whl.name, "slow", seconds=0.3)  # the helper gets ready meanwhile
        else:
            server.set_fault(whl.name, fault, always=True)
        pkgs.append(package_entry(f"hw{i:02d}", "1.0", [wheel_entry(whl, url=server.url_for(whl.name))]))
    return write_pylock(tmp_path / "pylock.toml", pkgs)


def imports_all(venv: Path, count: int) -> bool:
    names = [f"hw{i:02d}" for i in range(count)]
    code = f"import {', '.join(names)}; print(sum(m.N for m in ({', '.join(names)},)))"
    out = subprocess.run([venv / "bin/python", "-c", code], capture_output=True, text=True, check=True).stdout
    return out == f"{sum(range(count))}\n"


@pytest.mark.parametrize(
    ("count", "env", "helped"),
    [(16, {}, True), (16, {"ENVMAT_FILL_HELPER": "0"}, False), (6, {}, False)],
    ids=["many", "switched-off", "few"],
)
def test_a_cold_sync_of_many_wheels_shares_them_with_a_helper(
    make_wheel: MakeWheel, tmp_path: Path, http_server: FaultServer, cache_dir: Path, count: int, env: dict[str, str], helped: bool
) -> None:
    lock = served_lock(tmp_path, make_wheel, http_server, count)
    venv = tmp_path / "venv"
    proc = run_envmat("sync", lock, "--venv", venv, "-vv", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (HELPED in proc.stderr) is helped
    assert imports_all(venv, count)
    assert len(http_server.requests) == count  # each wheel fetched once, by one process or the other


def test_the_helper_runs_this_envmat_whatever_the_working_directory(
    make_wheel: MakeWheel, tmp_path: Path, http_server: FaultServer, cache_dir: Path
) -> None:
    """``python -c`` puts the working directory first on the path: a directory holding another
    ``envmat`` package (a checkout, say) must not give the helper that one."""
    lock = served_lock(tmp_path, make_wheel, http_server, 12)
    decoy = tmp_path / "elsewhere" / "envmat"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise SystemExit('the wrong envmat')\n")
    script = Path(sys.executable).parent / "envmat"  # `python -m` would import the decoy itself
    if not script.exists():
        pytest.skip("needs the envmat console script beside the test interpreter")
    proc = subprocess.run(
        [script, "sync", lock, "--venv", tmp_path / "venv", "-vv"],
        cwd=decoy.parent,
        capture_output=True,
        text=True,
        env={**os.environ, "ENVMAT_CACHE_DIR": str(cache_dir)},
    )
    assert proc.returncode == 0, proc.stderr
    assert HELPED in proc.stderr
    assert imports_all(tmp_path / "venv", 12)


def test_a_helper_that_dies_leaves_its_jobs_to_this_process(
    make_wheel: MakeWheel, tmp_path: Path, http_server: FaultServer, cache_dir: Path
) -> None:
    lock = served_lock(tmp_path, make_wheel, http_server, 16)
    venv = tmp_path / "venv"
    proc = run_envmat("sync", lock, "--venv", venv, "-vv", env={"ENVMAT_FAULT_HELPER_EXIT": "2"})
    assert proc.returncode == 0, proc.stderr
    assert "the helper process is gone" in proc.stderr
    assert imports_all(venv, 16)
    run_envmat("check", lock, "--venv", venv).check_returncode()


def test_errors_met_by_the_helper_are_reported_as_the_engines_own(
    make_wheel: MakeWheel, tmp_path: Path, http_server: FaultServer, cache_dir: Path
) -> None:
    lock = served_lock(tmp_path, make_wheel, http_server, 12, fault="wrong-bytes")
    venv = tmp_path / "venv"
    proc = run_envmat("sync", lock, "--venv", venv)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "error: 12 locked files could not be fetched" in proc.stderr
    for i in range(12):
        assert f"hw{i:02d}-1.0-py3-none-any.whl" in proc.stderr
    assert not venv.exists()  # a failed first sync leaves nothing behind
    assert not any((cache_dir / "unpacked-v1").glob("[0-9a-f]*"))  # and nothing unverified cached


def test_the_helper_answers_what_it_filled_and_what_failed(
    make_wheel: MakeWheel, tmp_path: Path, http_server: FaultServer, cache_dir: Path
) -> None:
    """The protocol itself: ready, then one answer per job: the bytes downloaded into the shared
    cache, or the error this process would have raised (rebuilt by ``error_from``)."""
    from envmat.cache import Cache, cache_key
    from envmat.errors import EnvmatError
    from envmat.fillhelper import Helper, error_from
    from envmat.lock.model import FileRef, LockedDist

    dists = []
    for name in ("good", "bad"):
        whl = make_wheel(name, "1.0", files={f"{name}/__init__.py": "X = 1\n"})
        shutil.copy(whl, http_server.root / whl.name)
        ref = wheel_entry(whl, url=http_server.url_for(whl.name))
        wheel = FileRef(filename=whl.name, url=ref["url"], size=ref["size"], hashes=ref["hashes"])
        dists.append(LockedDist(name=name, version="1.0", kind="wheel", wheel=wheel, key_path=f"packages[{len(dists)}]"))
    http_server.set_fault(dists[1].wheel.filename, "wrong-bytes", always=True)  # type: ignore[union-attr]
    helper = Helper.spawn(str(cache_dir), 30.0)
    assert helper is not None
    try:
        assert helper.receive() == {"id": -1, "ready": True}
        helper.send(7, dists[0])
        helper.send(8, dists[1])
        replies = {r["id"]: r for r in (helper.receive(), helper.receive())}
    finally:
        helper.close()
    assert helper.proc.returncode == 0  # its input ended: it exited on its own
    assert replies[7]["downloaded"] == dists[0].wheel.size  # type: ignore[union-attr]
    index = Cache(cache_dir).cached_index(cache_key(dists[0].wheel))  # type: ignore[arg-type]
    assert index is not None and any(f.path.endswith("good/__init__.py") for f in index.files)
    error = error_from(replies[8])
    assert isinstance(error, EnvmatError) and "bad-1.0-py3-none-any.whl" in error.render()
    assert "sha256" in error.render()


def test_ctrl_c_stops_the_helper_and_this_process(
    make_wheel: MakeWheel, tmp_path: Path, http_server: FaultServer, cache_dir: Path
) -> None:
    """Ctrl-C reaches the whole process group: the helper ends its jobs in flight and exits,
    nothing more is fetched on the way out, and no new venv is left."""
    import signal
    import time

    lock = served_lock(tmp_path, make_wheel, http_server, 16)
    for whl in http_server.root.glob("*.whl"):
        http_server.set_fault(whl.name, "slow", seconds=2.0)
    venv = tmp_path / "venv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "envmat", "sync", lock, "--venv", venv],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's
        preexec_fn=default_sigint,
        env={**os.environ, "ENVMAT_CACHE_DIR": str(cache_dir)},
    )
    deadline = time.monotonic() + 60
    while len(http_server.requests) < 6:  # three download threads and the helper's three jobs
        assert proc.poll() is None and time.monotonic() < deadline, "the sync never got that far"
        time.sleep(0.01)
    time.sleep(0.3)
    in_flight = len(http_server.requests)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert len(http_server.requests) == in_flight == 6
    assert not venv.exists()


def test_the_costliest_wheels_are_fetched_first(make_wheel: MakeWheel, tmp_path: Path, http_server: FaultServer) -> None:
    """One download at a time shows the order: by size, a pure-Python wheel counted three times
    (many small files cost more per byte than a binary wheel's few large ones; cache.py)."""
    from packaging.tags import sys_tags

    platform = next(iter(sys_tags())).platform
    wheels = {
        "pure": make_wheel("pure", "1.0", files={"pure/__init__.py": "", "pure/blob.bin": os.urandom(100_000)}),
        "small-bin": make_wheel("small-bin", "1.0", tag=f"py3-none-{platform}", files={"small_bin/__init__.py": "", "small_bin/blob.bin": os.urandom(200_000)}),
        "big-bin": make_wheel("big-bin", "1.0", tag=f"py3-none-{platform}", files={"big_bin/__init__.py": "", "big_bin/blob.bin": os.urandom(400_000)}),
    }
    pkgs = []
    for name, whl in wheels.items():
        shutil.copy(whl, http_server.root / whl.name)
        pkgs.append(package_entry(name, "1.0", [wheel_entry(whl, url=http_server.url_for(whl.name))]))
    lock = write_pylock(tmp_path / "pylock.toml", pkgs)
    proc = run_envmat("sync", lock, "--venv", tmp_path / "v", "--jobs", "1", env={"ENVMAT_FILL_HELPER": "0"})
    assert proc.returncode == 0, proc.stderr
    order = [r.path.rsplit("/", 1)[-1].split("-")[0] for r in http_server.requests if r.method == "GET"]
    assert order == ["big_bin", "pure", "small_bin"]


def test_the_costliest_wheels_go_to_the_helper(make_wheel: MakeWheel, tmp_path: Path, http_server: FaultServer) -> None:
    """The helper's first jobs are the three costliest: this process also places every wheel's
    files, and a big wheel sharing it with two other downloads ended cold syncs alone (cache.py).
    They wait for the helper (here for as long as it takes) while this process fetches the rest."""
    pkgs = []
    for i in range(12):
        size = 300_000 if i in (4, 7, 10) else 100
        whl = make_wheel(f"hw{i:02d}", "1.0", files={f"hw{i:02d}/__init__.py": f"N = {i}\n", f"hw{i:02d}/blob.bin": os.urandom(size)})
        shutil.copy(whl, http_server.root / whl.name)
        pkgs.append(package_entry(f"hw{i:02d}", "1.0", [wheel_entry(whl, url=http_server.url_for(whl.name))]))
    lock = write_pylock(tmp_path / "pylock.toml", pkgs)
    venv = tmp_path / "venv"
    proc = run_envmat("sync", lock, "--venv", venv, "-vv", env={"ENVMAT_FAULT_HELPER_RESERVE": "60"})
    assert proc.returncode == 0, proc.stderr
    helped = {line.split(":")[0].split()[-1] for line in proc.stderr.splitlines() if HELPED in line}
    assert {"hw04", "hw07", "hw10"} <= helped, proc.stderr
    assert len(helped) < 12  # this process fetched its share meanwhile
    assert imports_all(venv, 12)
