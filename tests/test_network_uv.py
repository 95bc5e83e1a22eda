"""Against the registry: locks made by ``uv pip compile --format pylock.toml``, installed by uv and by envmat.

The locks are generated at run time (no lock with registry URLs is committed, DESIGN.md §7). For
each, ``uv pip sync`` fills one venv (made by ``uv venv``) and ``envmat sync`` another (made by
envmat); what each install added to its venv is compared file by file: same paths, same bytes
(each venv's own path masked), same executable bits; entry-point launchers by the function they
call. Files the venv tools create themselves (found by creating an empty venv the same way) and
installer bookkeeping (RECORD, INSTALLER, REQUESTED, direct_url.json, uv's ``uv_cache.json``
and ``.lock``, envmat's ``.envmat/``) are left out.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_envmat
from tests.venvcompare import entry_point_scripts, launcher_call

pytestmark = pytest.mark.network

UV = Path(sys.executable).parent / "uv"
BOOKKEEPING = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "uv_cache.json"}
Tree = dict[str, tuple[str, bool]]


def uv(
    *args: str | os.PathLike[str],
    env: dict[str, str],
    cwd: Path | None = None,
    timeout: float = 600,
) -> str:
    proc = subprocess.run(
        [UV, *map(os.fspath, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"uv {' '.join(map(str, args))}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def uv_env(tmp_path: Path) -> dict[str, str]:
    """uv with its own cache in tmp; the user's index configuration is kept."""
    return dict(os.environ, UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_PYTHON_DOWNLOADS="never")


def compile_lock(
    requirements: list[str], version: str, out: Path, env: dict[str, str], *extra: str
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "requirements.in").write_text("\n".join(requirements) + "\n")
    uv(
        "pip",
        "compile",
        "requirements.in",
        "--format",
        "pylock.toml",
        "--python-version",
        version,
        "--only-binary",
        ":all:",
        "-o",
        "pylock.toml",
        "--quiet",
        *extra,
        env=env,
        cwd=out,
    )
    lock = out / "pylock.toml"
    assert "[[packages]]" in lock.read_text()
    return lock


def _venv_masks(venv: Path) -> list[bytes]:
    return sorted({os.fsencode(venv), os.fsencode(venv.resolve())}, key=len, reverse=True)


def tree(venv: Path, baseline: set[str]) -> Tree:
    """What the install added to ``venv``: path -> (sha256 with the venv path masked, executable?)."""
    out: Tree = {}
    masks = _venv_masks(venv)
    for dirpath, dirnames, filenames in os.walk(venv):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", ".envmat")]
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(venv).as_posix()
            if rel in baseline or rel == ".lock":
                continue
            if path.parent.name.endswith(".dist-info") and name in BOOKKEEPING:
                continue
            data = path.read_bytes()
            for m in masks:
                data = data.replace(m, b"<VENV>")
            out[rel] = (hashlib.sha256(data).hexdigest(), bool(path.stat().st_mode & 0o111))
    return out


def file_set(venv: Path) -> set[str]:
    return {
        (Path(d) / f).relative_to(venv).as_posix()
        for d, dirnames, files in os.walk(venv)
        for f in files
        if "__pycache__" not in d
    }




def sync_both(
    lock: Path, python: Path, tmp_path: Path, env: dict[str, str], cache_dir: Path
) -> tuple[Path, Path]:
    """``uv pip sync`` into a ``uv venv`` and ``envmat sync`` into a new venv; compare what they added."""
    uv_venv, em_venv = tmp_path / "uv" / "venv", tmp_path / "envmat" / "venv"
    # what each venv tool creates by itself
    uv("venv", "--python", python, tmp_path / "uv-empty" / "venv", "--quiet", env=env)
    uv_base = file_set(tmp_path / "uv-empty" / "venv")
    subprocess.run(
        [python, "-m", "venv", "--without-pip", tmp_path / "em-empty" / "venv"], check=True
    )
    em_base = file_set(tmp_path / "em-empty" / "venv")

    uv("venv", "--python", python, uv_venv, "--quiet", env=env)
    uv("pip", "sync", "--python", uv_venv / "bin/python", lock, "--quiet", env=env)
    proc = run_envmat("sync", lock, "--venv", em_venv, "--python", python, "--cache-dir", cache_dir)
    assert proc.returncode == 0, proc.stderr

    uv_tree, em_tree = tree(uv_venv, uv_base), tree(em_venv, em_base)
    assert any(p.endswith(".dist-info/METADATA") for p in uv_tree), sorted(uv_tree)
    assert sorted(set(uv_tree) - set(em_tree)) == []
    assert sorted(set(em_tree) - set(uv_tree)) == []
    launchers = entry_point_scripts(uv_venv)
    assert launchers == entry_point_scripts(em_venv)
    differ = {
        p: (uv_tree[p], em_tree[p])
        for p in uv_tree
        if p not in launchers and uv_tree[p] != em_tree[p]
    }
    assert differ == {}
    for rel in sorted(launchers):
        assert launcher_call(uv_venv / rel)[1:] == launcher_call(em_venv / rel)[1:], rel
        assert (em_venv / rel).read_text().startswith(f"#!{em_venv / 'bin/python'}\n"), rel
        assert em_tree[rel][1], rel
    # the RECORD of every dist lists the same installed files
    assert _records(uv_venv) == _records(em_venv)
    # a second sync changes nothing
    proc = run_envmat("sync", lock, "--venv", em_venv, "--cache-dir", cache_dir)
    assert proc.returncode == 0 and "Nothing to do" in proc.stderr, proc.stderr
    return uv_venv, em_venv


def _records(venv: Path) -> dict[str, set[str]]:
    import csv

    out = {}
    for rec in venv.glob("lib/python3.*/site-packages/*.dist-info/RECORD"):
        rows = csv.reader(rec.read_text().splitlines())
        out[rec.parent.name] = {
            r[0]
            for r in rows
            if "__pycache__" not in r[0] and r[0].rsplit("/", 1)[-1] not in BOOKKEEPING
        }
    return out


def _dists(venv: Path) -> set[str]:
    return {p.name for p in venv.glob("lib/python3.*/site-packages/*.dist-info")}


@pytest.mark.parametrize("version", ["3.9", "3.12"])
def test_cli_tool_with_console_scripts(
    version: str,
    python_factory: Callable[[str], Path],
    tmp_path: Path,
    uv_env: dict[str, str],
    cache_dir: Path,
) -> None:
    python = python_factory(version)
    lock = compile_lock(["black"], version, tmp_path / "lock", uv_env)
    _, em = sync_both(lock, python, tmp_path, uv_env, cache_dir)
    out = subprocess.run(
        [em / "bin/black", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("black, ")
    assert f"Python ({'CPython'}) {version}" in out
    src = tmp_path / "fmt.py"
    src.write_text("x = {  'a':1 }\n")
    subprocess.run([em / "bin/black", "-q", src], check=True)
    assert src.read_text() == 'x = {"a": 1}\n'


def test_package_with_data_files(
    python_factory: Callable[[str], Path], tmp_path: Path, uv_env: dict[str, str], cache_dir: Path
) -> None:
    python = python_factory("3.12")
    # notebook-shim ships .data/data/etc/jupyter/...; its dependencies are not needed to compare trees
    lock = compile_lock(["notebook-shim"], "3.12", tmp_path / "lock", uv_env, "--no-deps")
    uv_venv, em = sync_both(lock, python, tmp_path, uv_env, cache_dir)
    cfg = "etc/jupyter/jupyter_server_config.d/notebook_shim.json"
    assert (em / cfg).read_bytes() == (uv_venv / cfg).read_bytes()
    assert b"notebook_shim" in (em / cfg).read_bytes()


def test_compiled_package(
    python_factory: Callable[[str], Path], tmp_path: Path, uv_env: dict[str, str], cache_dir: Path
) -> None:
    python = python_factory("3.12")
    lock = compile_lock(["markupsafe"], "3.12", tmp_path / "lock", uv_env)
    _, em = sync_both(lock, python, tmp_path, uv_env, cache_dir)
    (so,) = em.glob("lib/python3.12/site-packages/markupsafe/_speedups.*.so")
    assert so.stat().st_size > 0
    code = "import markupsafe, markupsafe._speedups; print(markupsafe.escape('<a>'))"
    out = subprocess.run(
        [em / "bin/python", "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out == "&lt;a&gt;\n"


def test_dozen_packages(
    python_factory: Callable[[str], Path], tmp_path: Path, uv_env: dict[str, str], cache_dir: Path
) -> None:
    python = python_factory("3.12")
    lock = compile_lock(["flask", "requests", "rich"], "3.12", tmp_path / "lock", uv_env)
    uv_venv, em = sync_both(lock, python, tmp_path, uv_env, cache_dir)
    assert len(_dists(em)) >= 12 and _dists(em) == _dists(uv_venv)
    out = subprocess.run(
        [em / "bin/flask", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert "Flask" in out
    code = "import flask, requests, rich, jinja2, markupsafe; print('ok')"
    assert (
        subprocess.run(
            [em / "bin/python", "-c", code], capture_output=True, text=True, check=True
        ).stdout
        == "ok\n"
    )
    # a fresh cache-backed second venv from the same lock downloads nothing new
    proc = run_envmat(
        "sync",
        lock,
        "--venv",
        tmp_path / "again",
        "--python",
        python,
        "--cache-dir",
        cache_dir,
        "--offline",
    )
    assert proc.returncode == 0, proc.stderr
