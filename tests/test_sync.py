"""End to end: ``envmat sync`` makes real venvs of real interpreters match a lock of real wheels."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from envmat.record import parse_record, record_hash_of
from tests.conftest import run_envmat, tree_snapshot
from tests.wheelmaker import package_entry, wheel_entry, write_pylock

MakeWheel = Callable[..., Path]


def site_packages(venv: Path) -> Path:
    (sp,) = venv.glob("lib/python3.*/site-packages")
    return sp


def make_demo(make_wheel: MakeWheel, version: str = "1.0", body: str = "hello") -> list[Path]:
    hello = make_wheel(
        "hello-tool",
        version,
        files={
            "hello_tool/__init__.py": f"import sys\ndef main():\n    print({body!r}, sys.prefix)\n",
            "hello_tool/util.py": "X = 1\n",
        },
        entry_points={"console_scripts": {"hello-tool": "hello_tool:main"}},
        data={"scripts": {"hello-sh": "#!python\nimport sys\nprint('script', sys.executable)\n"}, "data": {"share/hello/greeting.txt": "hi\n"}},
    )
    ns_a = make_wheel("ns-a", "1.0", files={"nsdemo/__init__.py": "", "nsdemo/a.py": "A = 'a'\n"})
    ns_b = make_wheel("ns-b", "1.0", files={"nsdemo/__init__.py": "", "nsdemo/b.py": "B = 'b'\n"})
    return [hello, ns_a, ns_b]


def lock_for(path: Path, wheels: list[Path]) -> Path:
    pkgs = []
    for whl in wheels:
        name, version = whl.name.split("-")[:2]
        pkgs.append(package_entry(name.replace("_", "-"), version, [wheel_entry(whl, base=path.parent)]))
    return write_pylock(path, pkgs)


def run_ok(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = run_envmat(*args)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_sync_creates_a_working_venv(make_wheel: MakeWheel, tmp_path: Path, target_python: Path) -> None:
    lock = lock_for(tmp_path / "pylock.toml", make_demo(make_wheel))
    venv = tmp_path / "venv"
    proc = run_ok("sync", lock, "--venv", venv, "--python", target_python)
    assert "+ hello-tool==1.0" in proc.stderr and "+ ns-a==1.0" in proc.stderr
    # console script and #!python script run with the venv's interpreter
    out = subprocess.run([venv / "bin/hello-tool"], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["hello", str(venv)]
    out = subprocess.run([venv / "bin/hello-sh"], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["script", str(venv / "bin/python")]
    assert (venv / "share/hello/greeting.txt").read_text() == "hi\n"
    # both namespace halves import; their shared __init__.py is one file
    code = "import nsdemo.a, nsdemo.b; print(nsdemo.a.A + nsdemo.b.B)"
    assert subprocess.run([venv / "bin/python", "-c", code], capture_output=True, text=True, check=True).stdout == "ab\n"
    # no pip in the venv: envmat creates venvs without it
    assert not list(site_packages(venv).glob("pip*"))


def test_record_lists_every_file_with_its_hash(make_wheel: MakeWheel, tmp_path: Path) -> None:
    lock = lock_for(tmp_path / "pylock.toml", make_demo(make_wheel))
    venv = tmp_path / "venv"
    run_ok("sync", lock, "--venv", venv)
    sp = site_packages(venv)
    info = sp / "hello_tool-1.0.dist-info"
    entries = parse_record((info / "RECORD").read_text())
    paths = {e.path for e in entries}
    assert "../../../bin/hello-tool" in paths and "../../../bin/hello-sh" in paths
    assert "../../../share/hello/greeting.txt" in paths
    assert {"hello_tool-1.0.dist-info/INSTALLER", "hello_tool-1.0.dist-info/REQUESTED"} <= paths
    for e in entries:
        f = (sp / e.path).resolve()
        if e.path.endswith("RECORD"):
            assert e.hash == "" and e.size is None
            continue
        data = f.read_bytes()
        assert e.hash == record_hash_of(data), e.path
        assert e.size == len(data)
    assert (info / "INSTALLER").read_text() == "envmat\n"
    assert (venv / "bin/hello-tool").stat().st_mode & 0o111
    assert (venv / "bin/hello-sh").stat().st_mode & 0o111


def test_second_sync_is_a_no_op(make_wheel: MakeWheel, tmp_path: Path) -> None:
    lock = lock_for(tmp_path / "pylock.toml", make_demo(make_wheel))
    venv = tmp_path / "venv"
    run_ok("sync", lock, "--venv", venv)
    before = tree_snapshot(venv)
    mtimes = {p: p.stat().st_mtime_ns for p in venv.rglob("*") if p.is_file()}
    proc = run_ok("sync", lock, "--venv", venv)
    assert "Nothing to do: 3 package(s) already match the lock" in proc.stderr
    assert tree_snapshot(venv) == before
    assert {p: p.stat().st_mtime_ns for p in venv.rglob("*") if p.is_file()} == mtimes


def test_upgrade_remove_and_shared_namespace(make_wheel: MakeWheel, tmp_path: Path) -> None:
    hello, ns_a, ns_b = make_demo(make_wheel)
    venv = tmp_path / "venv"
    run_ok("sync", lock_for(tmp_path / "one" / "pylock.toml", [hello, ns_a, ns_b]), "--venv", venv)
    sp = site_packages(venv)
    # compile the module so its stale .pyc must go with the upgrade
    subprocess.run([venv / "bin/python", "-m", "compileall", "-q", sp / "hello_tool"], check=True)
    assert list((sp / "hello_tool/__pycache__").glob("util.*.pyc"))

    new_dir = tmp_path / "w2"
    new_dir.mkdir()
    hello2 = make_wheel("hello-tool", "2.0", files={"hello_tool/__init__.py": "def main():\n    print('v2')\n"}, entry_points={"console_scripts": {"hello-tool": "hello_tool:main"}})
    proc = run_ok("sync", lock_for(tmp_path / "two" / "pylock.toml", [hello2, ns_a]), "--venv", venv)
    assert "~ hello-tool==1.0 -> 2.0" in proc.stderr and "- ns-b==1.0" in proc.stderr
    assert subprocess.run([venv / "bin/hello-tool"], capture_output=True, text=True, check=True).stdout == "v2\n"
    assert not (sp / "hello_tool/util.py").exists()
    assert not list((sp / "hello_tool/__pycache__").glob("util.*.pyc"))
    assert not (venv / "bin/hello-sh").exists() and not (venv / "share/hello").exists()
    assert not (sp / "hello_tool-1.0.dist-info").exists()
    # ns-b went, but the __init__.py it shared with ns-a stays
    assert (sp / "nsdemo/__init__.py").exists() and not (sp / "nsdemo/b.py").exists()

    run_ok("sync", lock_for(tmp_path / "three" / "pylock.toml", [hello2]), "--venv", venv)
    assert not (sp / "nsdemo").exists()


def test_venv_matches_a_fresh_sync_after_changes(make_wheel: MakeWheel, tmp_path: Path) -> None:
    hello, ns_a, ns_b = make_demo(make_wheel)
    final = lock_for(tmp_path / "final" / "pylock.toml", [ns_b, hello])
    a, b = tmp_path / "a", tmp_path / "b"
    run_ok("sync", lock_for(tmp_path / "first" / "pylock.toml", [ns_a]), "--venv", a)
    run_ok("sync", final, "--venv", a)
    run_ok("sync", final, "--venv", b)
    snap = lambda v: {k.replace(str(v), "V"): h for k, h in tree_snapshot(v, ignore=("__pycache__", "pyvenv.cfg")).items()}  # noqa: E731
    assert snap(a).keys() == snap(b).keys()


def served_lock(tmp_path: Path, server, wheels: list[Path]) -> Path:  # type: ignore[no-untyped-def]
    """A lock of ``wheels`` by URL, served by ``server`` (the ``http_server`` fixture)."""
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    pkgs = []
    for whl in wheels:
        shutil.copy(whl, served / whl.name)
        name, version = whl.name.split("-")[:2]
        pkgs.append(package_entry(name.replace("_", "-"), version, [wheel_entry(whl, url=server.url_for(whl.name))]))
    return write_pylock(tmp_path / "pylock.toml", pkgs)


def test_download_over_http_and_cache_reuse(make_wheel: MakeWheel, tmp_path: Path, http_server, cache_dir: Path) -> None:  # type: ignore[no-untyped-def]
    lock = served_lock(tmp_path, http_server, make_demo(make_wheel))
    run_ok("sync", lock, "--venv", tmp_path / "v1")
    assert len(http_server.requests) == 3
    # a second venv from the same lock downloads nothing
    run_ok("sync", lock, "--venv", tmp_path / "v2")
    assert len(http_server.requests) == 3
    out = subprocess.run([tmp_path / "v2/bin/hello-tool"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("hello")


def test_extra_distributions_are_removed_but_inexact_keeps_them(make_wheel: MakeWheel, tmp_path: Path) -> None:
    hello, ns_a, _ = make_demo(make_wheel)
    venv = tmp_path / "venv"
    run_ok("sync", lock_for(tmp_path / "1" / "pylock.toml", [hello, ns_a]), "--venv", venv)
    small = lock_for(tmp_path / "2" / "pylock.toml", [hello])
    proc = run_ok("sync", small, "--venv", venv, "--inexact")
    assert "Nothing to do" in proc.stderr
    proc = run_ok("sync", small, "--venv", venv)
    assert "- ns-a==1.0" in proc.stderr
    assert not (site_packages(venv) / "nsdemo").exists()


def test_plan_json_changes_nothing(make_wheel: MakeWheel, tmp_path: Path) -> None:
    lock = lock_for(tmp_path / "pylock.toml", make_demo(make_wheel))
    venv = tmp_path / "venv"
    proc = run_ok("plan", lock, "--venv", venv, "--json")
    doc = json.loads(proc.stdout)
    assert {c["name"]: c["action"] for c in doc["changes"]} == {"hello-tool": "add", "ns-a": "add", "ns-b": "add"}
    assert doc["summary"]["add"] == 3
    assert not venv.exists()
    run_ok("sync", lock, "--venv", venv)
    doc = json.loads(run_ok("plan", lock, "--venv", venv, "--json").stdout)
    assert doc["summary"] == {"add": 0, "replace": 0, "remove": 0, "keep": 3, "download_bytes": 0}


def test_a_half_made_venv_is_made_again(make_wheel: MakeWheel, tmp_path: Path) -> None:
    """A run killed inside venv creation leaves its marker; the next run starts the venv over."""
    lock = lock_for(tmp_path / "pylock.toml", make_demo(make_wheel))
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /nowhere\n")  # no bin/python: what a kill can leave
    (tmp_path / ".venv.envmat-creating").touch()
    proc = run_ok("sync", lock, "--venv", venv)
    assert "half-made venv" in proc.stderr
    assert not (tmp_path / ".venv.envmat-creating").exists()
    out = subprocess.run([venv / "bin/hello-tool"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("hello")


@pytest.mark.parametrize("kill_after", [1, 4, 12, 30])
def test_a_killed_first_sync_is_made_again(make_wheel: MakeWheel, tmp_path: Path, kill_after: int) -> None:
    """The first sync into a venv it made writes no durable journal: its creation marker stands
    until that sync is done, so a kill anywhere in it makes the next run start the venv over."""
    lock = lock_for(tmp_path / "pylock.toml", make_demo(make_wheel))
    venv = tmp_path / "venv"
    proc = run_envmat("sync", lock, "--venv", venv, env={"ENVMAT_FAULT_KILL_AFTER": str(kill_after)})
    assert proc.returncode == 137, proc.stderr
    assert (tmp_path / ".venv.envmat-creating").exists() and (venv / "bin/python").exists()
    # never taken for a finished venv, not even by the no-op fast path
    proc = run_ok("sync", lock, "--venv", venv)
    assert "half-made venv" in proc.stderr and "+ hello-tool==1.0" in proc.stderr
    assert not (tmp_path / ".venv.envmat-creating").exists()
    got = tree_snapshot(venv)
    shutil.rmtree(venv)  # the reference: a clean first sync at the very same path
    run_ok("sync", lock, "--venv", venv)
    assert got == tree_snapshot(venv)


def test_python_given_as_a_path_again_on_the_same_venv(make_wheel: MakeWheel, tmp_path: Path, python_factory) -> None:  # type: ignore[no-untyped-def]
    python = python_factory("3.12")
    lock = lock_for(tmp_path / "pylock.toml", make_demo(make_wheel))
    venv = tmp_path / "venv"
    run_ok("sync", lock, "--venv", venv, "--python", python)
    # the no-op fast path answers when --python names the venv's own interpreter or version
    code = "import sys, envmat.cli; rc = envmat.cli.main(sys.argv[1:]); print(rc, 'attrs' in sys.modules)"
    for spec in (python, "3.12"):
        proc = subprocess.run([sys.executable, "-c", code, "sync", str(lock), "--venv", str(venv), "--python", str(spec)], capture_output=True, text=True)
        assert proc.stdout.split() == ["0", "False"] and "Nothing to do" in proc.stderr, proc.stderr
    proc = run_envmat("sync", lock, "--venv", venv, "--python", python_factory("3.9"))
    assert proc.returncode == 1 and "uses Python 3.12" in proc.stderr and "hint:" in proc.stderr
    proc = run_envmat("sync", lock, "--venv", venv, "--python", "3.9")
    assert proc.returncode == 1 and "uses Python 3.12" in proc.stderr


def test_lock_warnings_are_shown_once_and_strict_refuses(make_wheel: MakeWheel, tmp_path: Path) -> None:
    whl = make_wheel("solo", "1.0", files={"solo.py": ""})
    lock = write_pylock(tmp_path / "pylock.toml", [package_entry("solo", "1.0", [wheel_entry(whl, base=tmp_path)], markr="os_name == 'posix'")])
    proc = run_ok("sync", lock, "--venv", tmp_path / "v")
    assert proc.stderr.count("unknown key") == 1 and "did you mean 'marker'" in proc.stderr
    proc = run_envmat("sync", lock, "--venv", tmp_path / "v2", "--strict")
    assert proc.returncode == 1 and "markr" in proc.stderr and not (tmp_path / "v2").exists()


@pytest.mark.parametrize(("jobs", "most"), [(None, 3), (6, 6)], ids=["default", "jobs-6"])
def test_downloads_at_once(make_wheel: MakeWheel, tmp_path: Path, http_server, cache_dir: Path, jobs: int | None, most: int, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Three downloads at once by default (each also unpacks its wheel as it arrives, Python work
    under one GIL: more only trade places on it); ``--jobs`` sets the number."""
    import threading

    from tests.httpserver import _Handler

    lock_, now = threading.Lock(), [0, 0]  # in flight, most in flight
    handle = _Handler._handle

    def counted(self: _Handler, *, send_body: bool) -> None:
        with lock_:
            now[0] += 1
            now[1] = max(now)
        try:
            handle(self, send_body=send_body)
        finally:
            with lock_:
                now[0] -= 1

    monkeypatch.setattr(_Handler, "_handle", counted)
    pkgs = []
    for i in range(8):
        whl = make_wheel(f"par{i}", "1.0", files={f"par{i}/__init__.py": f"N = {i}\n"})
        shutil.copy(whl, http_server.root / whl.name)
        http_server.set_fault(whl.name, "slow", seconds=0.4)  # long enough for every thread to be in flight
        pkgs.append(package_entry(f"par{i}", "1.0", [wheel_entry(whl, url=http_server.url_for(whl.name))]))
    lock = write_pylock(tmp_path / "pylock.toml", pkgs)
    venv = tmp_path / "venv"
    run_ok("sync", lock, "--venv", venv, *(["--jobs", str(jobs)] if jobs else []))
    assert now == [0, most]
    code = "import " + ", ".join(f"par{i}" for i in range(8)) + "; print(sum(m.N for m in (" + ", ".join(f"par{i}" for i in range(8)) + ")))"
    assert subprocess.run([venv / "bin/python", "-c", code], capture_output=True, text=True, check=True).stdout == "28\n"
