"""Against the registry: locks written at run time by pip, uv and pdm; envmat's venv against uv's.

Every lock here is generated in tmp when the test runs (no lock naming a registry is committed):

- ``pip lock`` (one interpreter: the one running pip);
- ``uv pip compile --format pylock.toml`` for one platform and ``--universal``;
- ``uv lock`` of a small virtual project with an extra and two dependency groups, read by envmat
  as ``uv.lock`` and as ``uv export --format pylock.toml`` (single-use), plus a multi-use pylock
  assembled from uv's exports with ``'cli' in extras`` / ``'lint' in dependency_groups`` markers;
- pdm's native pylock (``pdm config --local lock.format pylock`` then ``pdm lock``).

Each lock is installed by uv (``uv pip sync`` into a ``uv venv``, or ``uv sync --frozen`` for the
project) and by ``envmat sync`` into its own venv. The two venvs must hold the same distributions
at the same versions (``*.dist-info/METADATA`` Name/Version), the same site-packages files with
the same bytes and executable bits, and the same files in ``bin/`` listed by the RECORDs, where an
entry-point launcher is compared by the function it calls (uv and envmat write different
boilerplate). Left out: ``__pycache__``, installer bookkeeping (RECORD, INSTALLER, REQUESTED,
direct_url.json, uv_cache.json) and uv's ``_virtualenv.py``/``_virtualenv.pth``.

uv gets a fresh ``UV_CACHE_DIR`` under tmp (shared by the tests of one worker), envmat the
``cache_dir`` fixture; the user's index configuration is kept.
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.conftest import run_envmat
from tests.venvcompare import entry_point_scripts, launcher_call

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.network

BIN = Path(sys.executable).parent
UV = BIN / "uv"
BOOKKEEPING = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "uv_cache.json"}
VENV_TOOL_FILES = {"_virtualenv.py", "_virtualenv.pth"}
PythonFactory = Callable[[str], Path]
Env = dict[str, str]


# --- running the tools ------------------------------------------------------------------------


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> str:
    proc = subprocess.run(
        list(map(os.fspath, cmd)),
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"{' '.join(map(os.fspath, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout


def uv(*args: str | os.PathLike[str], env: Env, cwd: Path | None = None) -> str:
    return run([UV, *args], env=env, cwd=cwd)


def envmat_ok(*args: str | os.PathLike[str], cache_dir: Path) -> str:
    proc = run_envmat(*args, "--cache-dir", cache_dir)
    assert proc.returncode == 0, f"envmat {' '.join(map(str, args))}\n{proc.stderr}"
    return proc.stderr


def envmat_sync(lock: Path, venv: Path, python: Path, *selection: str, cache_dir: Path) -> str:
    """``envmat sync``; ``--python`` only when the venv is new (see test_python_path_again)."""
    interpreter = () if venv.exists() else ("--python", python)
    return envmat_ok("sync", lock, "--venv", venv, *interpreter, *selection, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def uv_env(tmp_path_factory: pytest.TempPathFactory, registry_available: bool) -> Env:
    """uv with a fresh cache of its own in tmp, never downloading interpreters.

    Every module-scoped fixture here depends on this one, and module-scoped fixtures are set up
    before the function-scoped autouse skip of ``network`` tests: skip here first when offline.
    """
    if os.environ.get("ENVMAT_NO_NETWORK") == "1" or not registry_available:
        pytest.skip("package registry not reachable")
    cache = tmp_path_factory.mktemp("uv-cache")
    env = dict(os.environ, UV_CACHE_DIR=str(cache), UV_PYTHON_DOWNLOADS="never")
    env.pop("VIRTUAL_ENV", None)
    env.pop("UV_PROJECT_ENVIRONMENT", None)
    return env


def uv_pip_sync(lock: Path, python: Path, venv: Path, env: Env, *selection: str) -> Path:
    uv("venv", "--quiet", "--python", python, venv, env=env)
    uv("pip", "sync", "--quiet", "--python", venv / "bin/python", lock, *selection, env=env)
    return venv


# --- comparing venvs --------------------------------------------------------------------------


def site_packages(venv: Path) -> Path:
    (sp,) = venv.glob("lib/python3.*/site-packages")
    return sp


def distributions(venv: Path) -> dict[str, str]:
    """Canonical name -> version of every distribution installed in ``venv``."""
    out = {}
    for meta in site_packages(venv).glob("*.dist-info/METADATA"):
        headers = HeaderParser().parsestr(meta.read_text(encoding="utf-8"))
        out[canonicalize_name(headers["Name"])] = headers["Version"]
    return dict(sorted(out.items()))


def _digest(path: Path, venv: Path) -> tuple[str, bool]:
    data = path.read_bytes()
    for prefix in sorted({os.fsencode(venv), os.fsencode(venv.resolve())}, key=len, reverse=True):
        data = data.replace(prefix, b"<VENV>")
    return hashlib.sha256(data).hexdigest(), bool(path.stat().st_mode & 0o111)


def site_tree(venv: Path) -> dict[str, tuple[str, bool]]:
    """site-packages relative path -> (sha256 with the venv path masked, executable?)."""
    sp = site_packages(venv)
    out = {}
    for dirpath, dirnames, filenames in os.walk(sp):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(sp).as_posix()
            if rel in VENV_TOOL_FILES:
                continue
            if path.parent.name.endswith(".dist-info") and name in BOOKKEEPING:
                continue
            out[rel] = _digest(path, venv)
    return out


def _records(venv: Path) -> Iterator[tuple[str, str]]:
    """(dist-info directory name, path) of each RECORD row."""
    for rec in site_packages(venv).glob("*.dist-info/RECORD"):
        for row in csv.reader(rec.read_text(encoding="utf-8").splitlines()):
            if row:
                yield rec.parent.name, row[0]


def bin_files(venv: Path) -> set[str]:
    """The ``bin/`` files the installed distributions' RECORDs list (the venv's own are left out)."""
    sp = site_packages(venv)
    out = set()
    for _, path in _records(venv):
        if path.startswith("../"):
            rel = os.path.normpath(sp / path)
            rel_to_venv = Path(rel).relative_to(venv).as_posix()
            if rel_to_venv.startswith("bin/"):
                out.add(rel_to_venv)
    return out




def assert_same_venv(reference: Path, em_venv: Path, label: str = "") -> dict[str, str]:
    """``em_venv`` (envmat's) holds what ``reference`` (uv's) holds; returns the distributions."""
    want, got = distributions(reference), distributions(em_venv)
    assert got == want, (
        f"{label}: distributions differ\n"
        f"  only uv:     {sorted(set(want.items()) - set(got.items()))}\n"
        f"  only envmat: {sorted(set(got.items()) - set(want.items()))}"
    )
    uv_tree, em_tree = site_tree(reference), site_tree(em_venv)
    assert sorted(set(uv_tree) - set(em_tree)) == [], f"{label}: site-packages files only uv has"
    assert sorted(set(em_tree) - set(uv_tree)) == [], (
        f"{label}: site-packages files only envmat has"
    )
    differ = sorted(p for p in uv_tree if uv_tree[p] != em_tree[p])
    assert differ == [], f"{label}: site-packages files with other bytes or modes"

    uv_bin, em_bin = bin_files(reference), bin_files(em_venv)
    assert em_bin == uv_bin, f"{label}: bin/ files differ: {sorted(uv_bin ^ em_bin)}"
    launchers = entry_point_scripts(reference)
    for rel in sorted(uv_bin):
        if rel in launchers:
            assert launcher_call(em_venv / rel)[1:] == launcher_call(reference / rel)[1:], f"{label}: {rel}"
            assert (em_venv / rel).read_text().startswith(f"#!{em_venv / 'bin/python'}\n"), rel
            assert os.access(em_venv / rel, os.X_OK), rel
        else:
            assert _digest(em_venv / rel, em_venv) == _digest(reference / rel, reference), rel
    return got


# --- 1. pip lock ------------------------------------------------------------------------------


def test_pip_lock(
    python_factory: PythonFactory, tmp_path: Path, uv_env: Env, cache_dir: Path
) -> None:
    # pip locks for the interpreter running it: the target is that Python version.
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    python = python_factory(version)
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir()
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "lock",
            "--quiet",
            "--only-binary",
            ":all:",
            "click",
            "platformdirs",
            "markupsafe",
            "pyflakes",
            "-o",
            "pylock.toml",
        ],
        cwd=lock_dir,
    )
    lock = lock_dir / "pylock.toml"
    assert tomllib.loads(lock.read_text())["created-by"] == "pip"
    ref = uv_pip_sync(lock, python, tmp_path / "uv-venv", uv_env)
    em = tmp_path / "em-venv"
    envmat_sync(lock, em, python, cache_dir=cache_dir)
    dists = assert_same_venv(ref, em, "pip lock")
    assert {"click", "platformdirs", "markupsafe", "pyflakes"} <= set(dists)
    out = run([em / "bin/pyflakes", "--version"])
    assert dists["pyflakes"] in out


# --- 2. uv pip compile --------------------------------------------------------------------------

MARKED_REQUIREMENTS = [
    "click",
    "colorama; sys_platform == 'win32'",
    "platformdirs",
    "tomli; python_version < '3.11'",
    "pyflakes",
]


def compile_pylock(out: Path, env: Env, *options: str) -> Path:
    out.mkdir(parents=True)
    (out / "requirements.in").write_text("\n".join(MARKED_REQUIREMENTS) + "\n")
    uv(
        "pip",
        "compile",
        "--quiet",
        "requirements.in",
        "--format",
        "pylock.toml",
        "--only-binary",
        ":all:",
        "-o",
        "pylock.toml",
        *options,
        env=env,
        cwd=out,
    )
    return out / "pylock.toml"


@pytest.mark.parametrize("version", ["3.9", "3.12"])
def test_uv_pip_compile_platform(
    version: str, python_factory: PythonFactory, tmp_path: Path, uv_env: Env, cache_dir: Path
) -> None:
    python = python_factory(version)
    lock = compile_pylock(tmp_path / "lock", uv_env, "--python", os.fspath(python))
    ref = uv_pip_sync(lock, python, tmp_path / "uv-venv", uv_env)
    em = tmp_path / "em-venv"
    envmat_sync(lock, em, python, cache_dir=cache_dir)
    dists = assert_same_venv(ref, em, f"uv pip compile --python {version}")
    assert "colorama" not in dists
    assert ("tomli" in dists) == (version == "3.9")


@pytest.fixture(scope="module")
def universal_lock(tmp_path_factory: pytest.TempPathFactory, uv_env: Env) -> Path:
    lock = compile_pylock(
        tmp_path_factory.mktemp("universal") / "lock",
        uv_env,
        "--universal",
        "--python-version",
        "3.9",
    )
    packages = tomllib.loads(lock.read_text())["packages"]
    assert any("marker" in p for p in packages), "a universal lock with no markers"
    assert "colorama" in {p["name"] for p in packages}
    return lock


@pytest.mark.parametrize("version", ["3.9", "3.12"])
def test_uv_pip_compile_universal(
    version: str,
    universal_lock: Path,
    python_factory: PythonFactory,
    tmp_path: Path,
    uv_env: Env,
    cache_dir: Path,
) -> None:
    python = python_factory(version)
    ref = uv_pip_sync(universal_lock, python, tmp_path / "uv-venv", uv_env)
    em = tmp_path / "em-venv"
    envmat_sync(universal_lock, em, python, cache_dir=cache_dir)
    dists = assert_same_venv(ref, em, f"uv pip compile --universal, Python {version}")
    assert "colorama" not in dists
    assert ("tomli" in dists) == (version == "3.9")


def test_python_path_again(
    universal_lock: Path, python_factory: PythonFactory, tmp_path: Path, cache_dir: Path
) -> None:
    python = python_factory("3.12")
    em = tmp_path / "em"
    envmat_ok("sync", universal_lock, "--venv", em, "--python", python, cache_dir=cache_dir)
    # the same interpreter, named the same way, for the venv it made
    stderr = envmat_ok(
        "sync", universal_lock, "--venv", em, "--python", python, cache_dir=cache_dir
    )
    assert "Nothing to do" in stderr


# --- 3. a uv project: uv.lock, uv export, a multi-use pylock ---------------------------------

PYPROJECT = """\
[project]
name = "sample"
version = "0.1.0"
requires-python = ">=3.9"
dependencies = ["attrs", "colorama; sys_platform == 'win32'"]

[project.optional-dependencies]
cli = ["click"]

[dependency-groups]
dev = ["iniconfig"]
lint = ["pyflakes", "tomli; python_version < '3.11'"]
"""

#: (envmat and uv sync options, what it must add beyond the default). ``dev`` is uv's default group.
SELECTIONS = {
    "default": ((), set()),
    "cli+lint": (("--extra", "cli", "--group", "lint"), {"click", "pyflakes"}),
    "only-lint": (("--only-group", "lint"), {"pyflakes"}),
    "no-dev": (("--no-dev", "--extra", "cli"), {"click"}),
    "no-default+lint": (("--no-default-groups", "--group", "lint"), {"pyflakes"}),
    "all": (("--all-extras", "--all-groups"), {"click", "pyflakes"}),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, uv_env: Env) -> Path:
    """A virtual project (no build-system) locked by ``uv lock``."""
    root = tmp_path_factory.mktemp("project") / "sample"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    uv("lock", "--quiet", env=uv_env, cwd=root)
    assert (root / "uv.lock").is_file()
    return root


def uv_sync(project: Path, python: Path, venv: Path, env: Env, *selection: str) -> Path:
    uv(
        "sync",
        "--frozen",
        "--quiet",
        "--python",
        python,
        *selection,
        env=dict(env, UV_PROJECT_ENVIRONMENT=str(venv)),
        cwd=project,
    )
    return venv


def uv_export(project: Path, out: Path, env: Env, *selection: str) -> Path:
    uv(
        "export",
        "--quiet",
        "--format",
        "pylock.toml",
        "--frozen",
        "-o",
        out,
        *selection,
        env=env,
        cwd=project,
    )
    return out


@pytest.mark.parametrize("version", ["3.9", "3.12"])
def test_uv_project_lock_and_export(
    version: str,
    project: Path,
    python_factory: PythonFactory,
    tmp_path: Path,
    uv_env: Env,
    cache_dir: Path,
) -> None:
    """uv.lock and its single-use exports: default, ``--extra cli --group lint`` and more.

    envmat's venvs are re-synced from one selection to the next (default, cli+lint, default,
    ...), so the add and remove paths are compared too. A selection is given to ``uv export``
    when the lock is written and to envmat when it reads ``uv.lock``.
    """
    python = python_factory(version)
    refs = {
        name: uv_sync(project, python, tmp_path / f"uv-{name}", uv_env, *opts)
        for name, (opts, _) in SELECTIONS.items()
    }
    base = distributions(refs["default"])
    assert {"attrs", "iniconfig"} <= set(base) and "colorama" not in base
    for name, (_, added) in SELECTIONS.items():
        assert set(distributions(refs[name])) - set(base) >= added, name
    assert set(distributions(refs["only-lint"])) - {"tomli"} == {"pyflakes"}
    assert "iniconfig" not in distributions(refs["no-dev"])
    assert "iniconfig" not in distributions(refs["no-default+lint"])

    from_uvlock, from_export = tmp_path / "em-uvlock", tmp_path / "em-export"
    order = ("default", "cli+lint", "default", "only-lint", "no-dev", "no-default+lint", "all")
    for name in (*order, "default"):
        opts = SELECTIONS[name][0]
        envmat_sync(project / "uv.lock", from_uvlock, python, *opts, cache_dir=cache_dir)
        assert_same_venv(refs[name], from_uvlock, f"uv.lock {name} (Python {version})")

        export = tmp_path / name / "pylock.toml"
        if not export.exists():
            uv_export(project, export, uv_env, *opts)
        envmat_sync(export, from_export, python, cache_dir=cache_dir)
        assert_same_venv(refs[name], from_export, f"uv export {name} (Python {version})")


def _package_blocks(text: str) -> tuple[str, list[str]]:
    """The header of a uv-written pylock and its ``[[packages]]`` blocks, as text."""
    head, *blocks = text.split("[[packages]]\n")
    return head, ["[[packages]]\n" + b for b in blocks]


def multi_use_pylock(project: Path, out: Path, env: Env) -> Path:
    """A pylock with ``extras``/``dependency-groups``, assembled from single-use ``uv export``s.

    Each package of the project's dependencies is unconditional; one that only the ``cli`` extra
    or a group brings gets ``(<its marker>) and ('cli' in extras or 'lint' in dependency_groups
    ...)`` -- the form pdm writes. ``default-groups = ["dev"]`` mirrors uv's default.
    """
    parts = {
        None: ("--no-default-groups",),
        "'cli' in extras": ("--no-default-groups", "--extra", "cli"),
        "'dev' in dependency_groups": ("--only-group", "dev"),
        "'lint' in dependency_groups": ("--only-group", "lint"),
    }
    conditions: dict[str, list[str | None]] = {}
    blocks: dict[str, str] = {}
    head = ""
    for i, (cond, opts) in enumerate(parts.items()):
        text = uv_export(project, out.parent / f"pylock.part{i}.toml", env, *opts).read_text()
        head, part_blocks = _package_blocks(text)
        for block in part_blocks:
            pkg = tomllib.loads(block)["packages"][0]
            key = f"{pkg['name']}=={pkg['version']};{pkg.get('marker', '')}"
            blocks[key] = block
            conditions.setdefault(key, []).append(cond)
    lines = [line for line in head.splitlines() if not line.startswith("#")]
    lines += [
        'extras = ["cli"]',
        'dependency-groups = ["dev", "lint"]',
        'default-groups = ["dev"]',
        "",
    ]
    body = []
    for key, block in blocks.items():
        conds = conditions[key]
        own = tomllib.loads(block)["packages"][0].get("marker")
        kept = [line for line in block.splitlines() if not line.startswith("marker = ")]
        if None in conds:
            marker = own
        else:
            selector = " or ".join(c for c in conds if c is not None)
            marker = f"({own}) and ({selector})" if own else selector
        if marker:
            kept.insert(3, f'marker = "{marker}"')  # after [[packages]], name, version
        body.append("\n".join(kept) + "\n")
    out.write_text("\n".join(lines) + "\n" + "\n".join(body))
    doc = tomllib.loads(out.read_text())  # well-formed TOML
    assert len(doc["packages"]) == len(blocks)
    return out


@pytest.mark.parametrize("version", ["3.9", "3.12"])
def test_multi_use_pylock_selection(
    version: str,
    project: Path,
    python_factory: PythonFactory,
    tmp_path: Path,
    uv_env: Env,
    cache_dir: Path,
) -> None:
    """A multi-use pylock: envmat selects what ``uv pip sync`` and ``uv sync --frozen`` select.

    For a pylock, naming a group replaces ``default-groups`` (uv and pip do the same), so
    ``--extra cli --group lint`` drops ``dev``; ``--group dev --group lint`` matches what
    ``uv sync --extra cli --group lint`` installs.
    """
    python = python_factory(version)
    lock = multi_use_pylock(project, tmp_path / "multi" / "pylock.toml", uv_env)
    sync_default = uv_sync(project, python, tmp_path / "uv-default", uv_env)
    sync_cli_lint = uv_sync(
        project, python, tmp_path / "uv-cli-lint", uv_env, "--extra", "cli", "--group", "lint"
    )
    sync_no_groups = uv_sync(
        project, python, tmp_path / "uv-no-groups", uv_env, "--no-default-groups"
    )
    cli_lint = ("--extra", "cli", "--group", "lint")
    all_of_them = ("--extra", "cli", "--group", "dev", "--group", "lint")
    # (envmat's options, uv pip sync's (None: it has no such option), the uv sync venv)
    cases = [
        ((), (), sync_default),
        (cli_lint, cli_lint, None),
        (all_of_them, all_of_them, sync_cli_lint),
        (("--all-extras", "--all-groups"), all_of_them, sync_cli_lint),
        (("--no-default-groups",), None, sync_no_groups),
        ((), (), sync_default),
    ]
    em = tmp_path / "em"
    for i, (opts, uv_opts, uv_sync_venv) in enumerate(cases):
        label = f"multi-use pylock {' '.join(opts) or 'default'} (Python {version})"
        envmat_sync(lock, em, python, *opts, cache_dir=cache_dir)
        if uv_opts is not None:
            ref = uv_pip_sync(lock, python, tmp_path / f"uv-pip-{i}", uv_env, *uv_opts)
            dists = assert_same_venv(ref, em, label + " vs uv pip sync")
        if uv_sync_venv is not None:
            dists = assert_same_venv(uv_sync_venv, em, label + " vs uv sync --frozen")
        if opts == cli_lint:
            assert {"click", "pyflakes", "attrs"} <= set(dists) and "iniconfig" not in dists
        if opts == ("--no-default-groups",):
            assert set(dists) == {"attrs"}


# --- 4. pdm's native pylock ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pdm(tmp_path_factory: pytest.TempPathFactory, uv_env: Env) -> Path:
    """pdm in a venv of its own (pdm is no dependency of envmat's tests); skipped if that fails.

    Installed with uv (about 2 s) rather than pip (about 20 s) to keep the module fast.
    """
    venv = tmp_path_factory.mktemp("pdm") / "venv"
    proc = subprocess.run(
        [UV, "venv", "--quiet", "--python", sys.executable, venv],
        capture_output=True,
        text=True,
        env=uv_env,
    )
    if proc.returncode == 0:
        # hishel 2 removed what pdm 2.29 imports (hishel.SyncSqliteStorage): keep hishel 1.
        proc = subprocess.run(
            [
                UV,
                "pip",
                "install",
                "--quiet",
                "--python",
                venv / "bin/python",
                "pdm>=2.25",
                "hishel<2",
            ],
            capture_output=True,
            text=True,
            env=uv_env,
            timeout=300,
        )
    if proc.returncode != 0:
        pytest.skip(f"could not install pdm into a tmp venv: {proc.stderr.strip()[-500:]}")
    return venv / "bin/pdm"


@pytest.fixture(scope="module")
def pdm_lock(pdm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pdm-project") / "sample"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    home = root.parent / "pdm-home"
    env = dict(
        os.environ,
        PDM_HOME=str(home),
        PDM_CACHE_DIR=str(home / "cache"),
        PDM_CONFIG_FILE=str(home / "config.toml"),
        PDM_CHECK_UPDATE="false",
        PDM_IGNORE_ACTIVE_VENV="1",
        PDM_PYTHON=str(pdm.parent / "python"),
        XDG_STATE_HOME=str(home / "state"),
    )
    env.pop("VIRTUAL_ENV", None)
    run([pdm, "config", "--local", "lock.format", "pylock"], env=env, cwd=root)
    run([pdm, "config", "--local", "python.use_venv", "false"], env=env, cwd=root)
    run([pdm, "lock", "--quiet", "-G", ":all"], env=env, cwd=root)
    lock = root / "pylock.toml"
    doc = tomllib.loads(lock.read_text())
    assert doc["created-by"] == "pdm"
    assert doc["default-groups"] == ["default"]
    assert set(doc["dependency-groups"]) == {"default", "dev", "lint"} and doc["extras"] == ["cli"]
    return lock


#: envmat's options, uv pip sync's (it has no --all-groups), what pdm's own markers select.
PDM_SELECTIONS = {
    "default": ((), (), {"attrs"}),
    "dev": (("--group", "dev"), ("--group", "dev"), {"iniconfig"}),
    "cli+default+lint": (
        ("--extra", "cli", "--group", "default", "--group", "lint"),
        ("--extra", "cli", "--group", "default", "--group", "lint"),
        {"attrs", "click", "pyflakes"},
    ),
    "all": (
        ("--all-extras", "--all-groups"),
        ("--all-extras", "--group", "default", "--group", "dev", "--group", "lint"),
        {"attrs", "click", "iniconfig", "pyflakes"},
    ),
}


@pytest.mark.parametrize("version", ["3.9", "3.12"])
def test_pdm_native_pylock(
    version: str,
    pdm_lock: Path,
    python_factory: PythonFactory,
    tmp_path: Path,
    uv_env: Env,
    cache_dir: Path,
) -> None:
    """pdm's groups: naming one replaces ``default-groups = ["default"]``, as uv does."""
    python = python_factory(version)
    em = tmp_path / "em"
    for name in [*PDM_SELECTIONS, "default"]:
        opts, uv_opts, expected = PDM_SELECTIONS[name]
        label = f"pdm pylock {name} (Python {version})"
        envmat_sync(pdm_lock, em, python, *opts, cache_dir=cache_dir)
        ref = tmp_path / f"uv-{name}"
        if not ref.exists():
            uv_pip_sync(pdm_lock, python, ref, uv_env, *uv_opts)
        dists = assert_same_venv(ref, em, label)
        tomli = version == "3.9" and name in ("cli+default+lint", "all")
        assert set(dists) == expected | ({"tomli"} if tomli else set()), label
