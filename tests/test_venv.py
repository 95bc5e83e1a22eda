"""Venvs envmat makes are what ``python -m venv --without-pip`` makes, for every target Python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import envmat
from envmat import targetquery
from envmat.target import Target, query_target
from envmat.venv import create_venv, find_python
from tests.conftest import SUPPORTED_TARGETS
from tests.wheelmaker import package_entry, wheel_entry, write_pylock


def listing(root: Path) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", oct(p.stat().st_mode & 0o777))
            else:
                out[rel] = ("file", oct(p.stat().st_mode & 0o777), p.read_bytes().hex())
    return out


@pytest.mark.parametrize("version", SUPPORTED_TARGETS)
def test_cloned_venv_equals_the_venv_module(version: str, tmp_path: Path, python_factory: Callable[[str], Path]) -> None:
    python = python_factory(version)
    cache = tmp_path / "cache"
    create_venv(tmp_path / "first", python, cache)  # builds the template
    venv = tmp_path / "my venv"  # a space: activate scripts must carry the path as the venv module does
    subprocess.run([python, "-m", "venv", "--without-pip", venv], check=True)
    reference = listing(venv)
    shutil.rmtree(venv)
    create_venv(venv, python, cache)
    assert listing(venv) == reference
    out = subprocess.run([venv / "bin/python", "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(venv)
    shell = subprocess.run(["bash", "-c", f". '{venv}/bin/activate' && command -v python && echo $VIRTUAL_ENV"], capture_output=True, text=True, check=True)
    assert shell.stdout.split("\n")[:2] == [str(venv / "bin/python"), str(venv)]


def test_find_python_by_version_and_path() -> None:
    for version in SUPPORTED_TARGETS:
        found = find_python(version)
        if found is not None:
            assert found.name.startswith("python")
            assert find_python(str(found)) == found


@pytest.mark.parametrize("which", ["executable", "_base_executable"])
def test_venv_module_run_in_process_makes_what_the_interpreter_makes(which: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """For envmat's own interpreter (or the base it was made from) the venv module runs in
    envmat's process; the venv is byte for byte what ``python -m venv --without-pip`` makes."""
    import sys

    from envmat import venv as venv_mod

    python = Path(getattr(sys, which))
    venv = tmp_path / "my venv"
    subprocess.run([python, "-m", "venv", "--without-pip", venv], check=True)
    reference = listing(venv)
    shutil.rmtree(venv)

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("the venv module should run in this process")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    venv_mod._run_venv_module(venv, python)
    assert listing(venv) == reference
    monkeypatch.undo()
    out = subprocess.run([venv / "bin/python", "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(venv)


def test_another_interpreter_still_runs_its_own_venv_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from envmat import venv as venv_mod

    assert not venv_mod._runs_here(tmp_path / "python")
    monkeypatch.setenv("PYTHONHOME", "/nonexistent")
    import sys

    assert not venv_mod._runs_here(Path(sys.executable))


def test_a_query_started_ahead_is_the_one_answered(tmp_path: Path) -> None:
    """prefetch.py starts a new venv's interpreter query before the engine is imported: the
    target then comes from that very process, and equals a query made on the spot."""
    import sys

    from envmat import prefetch, targetquery
    from envmat.target import query_target

    python = str(Path(sys.executable))
    prefetch._start_query("3.99", str(tmp_path))  # a version is found by probing first
    assert targetquery._started == {}
    prefetch._start_query(None, str(tmp_path))  # envmat's own interpreter, unknown to the cache
    ahead = targetquery._started[python]
    target = query_target(Path(python), tmp_path)
    assert targetquery._started == {} and ahead.returncode == 0  # taken and waited for
    assert target == query_target(Path(python), None)  # a fresh query answers the same
    prefetch._start_query(None, str(tmp_path))  # the cache now has the answer: nothing starts
    prefetch._start_query(python, str(tmp_path))
    assert targetquery._started == {}


def test_a_query_that_cannot_start_is_reported_by_the_engine(tmp_path: Path) -> None:
    """A path that is not an executable: nothing starts ahead (or fails there); the engine's
    own attempt says what is wrong, as without the prefetch."""
    from envmat import prefetch, targetquery
    from envmat.errors import EnvmatError
    from envmat.venv import find_python_and_target

    fake = tmp_path / "python"
    fake.write_text("not a program\n")
    prefetch._start_query(str(fake), str(tmp_path / "cache"))
    assert targetquery._started == {}
    with pytest.raises(EnvmatError, match="does not run"):
        find_python_and_target(str(fake), tmp_path / "cache")


@pytest.mark.parametrize("version", ["3.8", "3.12"])
def test_a_new_venvs_interpreter_is_remembered_as_it_would_answer(version: str, tmp_path: Path, python_factory: Callable[[str], Path], make_wheel: Callable[..., Path]) -> None:
    """Making a venv keeps its interpreter's answer in the cache (the next sync into it need
    not start the interpreter to ask): the very answer asking it gives."""
    python = python_factory(version)
    whl = make_wheel("remembered", "1.0", files={"remembered.py": "X = 1\n"})
    lock = write_pylock(tmp_path / "pylock.toml", [package_entry("remembered", "1.0", [wheel_entry(whl, base=tmp_path)])])
    cache, venv = tmp_path / "cache", tmp_path / "venv"
    envmat.sync(lock, venv, python=str(python), cache_dir=cache)
    vpy = venv / "bin" / "python"
    entry = cache / targetquery.ANSWERS / f"{targetquery.cache_key(str(vpy))}.json"
    remembered = Target.from_json(json.loads(entry.read_bytes()))
    assert remembered == query_target(vpy, None)  # (None: asked, not read from a cache)


def test_an_existing_venv_gets_a_venvs_paths_when_its_base_installs_elsewhere(tmp_path: Path, make_wheel: Callable[..., Path]) -> None:
    """Asked without site, a venv's interpreter reports its base's scheme. On Debian's Python
    that is not a venv's (posix_local: /usr/local/lib/pythonX.Y/dist-packages): a sync into an
    existing venv must still install where the venv's interpreter imports from."""
    first = make_wheel("deb-first", "1.0", files={"deb_first.py": "X = 1\n"})
    second = make_wheel("deb-second", "1.0", files={"deb_second.py": "Y = 2\n"})
    cache, venv = tmp_path / "cache", tmp_path / "venv"
    lock1 = write_pylock(tmp_path / "one" / "pylock.toml", [package_entry("deb-first", "1.0", [wheel_entry(first, base=tmp_path / "one")])])
    envmat.sync(lock1, venv, cache_dir=cache)
    vpy = venv / "bin" / "python"
    query_target(vpy, cache)  # (the cached answer exists, remembered or asked)
    entry = cache / targetquery.ANSWERS / f"{targetquery.cache_key(str(vpy))}.json"
    answer = json.loads(entry.read_bytes())
    assert answer["venv_paths"], answer
    # the answer a Debian base gives: its prefix /usr, its packages under local/.../dist-packages
    ver = "python{}.{}".format(*answer["version"][:2])
    answer["prefix"] = "/usr"
    answer["paths"] = {
        "purelib": f"/usr/local/lib/{ver}/dist-packages",
        "platlib": f"/usr/local/lib/{ver}/dist-packages",
        "scripts": "/usr/local/bin",
        "include": f"/usr/include/{ver}",
        "data": "/usr/local",
    }
    entry.write_text(json.dumps(answer))
    lock2 = write_pylock(tmp_path / "two" / "pylock.toml", [package_entry(n, "1.0", [wheel_entry(w, base=tmp_path / "two")]) for n, w in (("deb-first", first), ("deb-second", second))])
    envmat.sync(lock2, venv, cache_dir=cache)
    out = subprocess.run([vpy, "-c", "import deb_first, deb_second; print(deb_first.X + deb_second.Y)"], capture_output=True, text=True)
    assert out.stdout.strip() == "3", out.stderr
    assert not (venv / "local").exists()
