"""Find the interpreter ``--python`` names, and find, check or create the target venv."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import fastpath, venvclone
from .errors import EnvmatError

if TYPE_CHECKING:
    from .target import Target

_VERSION = re.compile(r"^(?:python|cpython[-@]?)?(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


def creating_marker(venv: Path) -> Path:
    """Stands beside a venv while a run makes it and syncs it the first time (api.py)."""
    return Path(fastpath.creating_marker(str(venv)))


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _probe(python: str) -> tuple[str, tuple[int, ...]] | None:
    """(real executable, version) when ``python`` runs; None for shims of missing versions."""
    import subprocess

    try:
        proc = subprocess.run(
            [
                python,
                "-I",
                "-S",
                "-c",
                "import sys; print(sys.executable); print(*sys.version_info[:3])",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    exe, _, ver = proc.stdout.strip().partition("\n")
    try:
        return exe, tuple(int(x) for x in ver.split())
    except ValueError:
        return None


def _pyenv_root() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if root:
        return Path(root)
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def _candidates(major: str, minor: str | None, patch: str | None) -> list[str]:
    short = f"{major}.{minor}" if minor else major
    found = []
    exe = shutil.which(f"python{short}")
    if exe:
        found.append(exe)
    root = _pyenv_root()
    if root and minor:
        prefix = f"{major}.{minor}.{patch}" if patch else f"{major}.{minor}."
        versions = sorted(
            (
                d
                for d in (root / "versions").glob(f"{major}.{minor}*")
                if d.name == prefix or d.name.startswith(prefix)
            ),
            key=lambda d: [int(x) if x.isdigit() else -1 for x in re.split(r"[.]", d.name)],
            reverse=True,
        )
        for d in versions:
            if re.fullmatch(r"\d+\.\d+\.\d+", d.name):
                found.append(str(d / "bin" / f"python{major}.{minor}"))
    return found


def _probe_cached(python: str, cache_dir: Path | None) -> tuple[str, tuple[int, ...]] | None:
    """``_probe`` remembered in the cache while the interpreter it found is unchanged."""
    if cache_dir is None:
        return _probe(python)
    import hashlib
    import json

    try:
        st = os.stat(python)
        raw = f"{python}|{os.path.realpath(python)}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        return None
    entry = (
        cache_dir / "interpreters" / f"probe-{hashlib.sha256(raw.encode()).hexdigest()[:24]}.json"
    )
    try:
        data = json.loads(entry.read_bytes())
        real = os.stat(data["exe"])  # a shim's target can go away while the shim stays
        if [real.st_size, real.st_mtime_ns] == data["stat"]:
            return data["exe"], tuple(data["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    probed = _probe(python)
    if probed is not None:
        try:
            real = os.stat(probed[0])
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = entry.with_name(f".{entry.name}.{os.getpid()}")
            tmp.write_text(
                json.dumps(
                    {
                        "exe": probed[0],
                        "version": probed[1],
                        "stat": [real.st_size, real.st_mtime_ns],
                    }
                )
            )
            os.replace(tmp, entry)
        except OSError:
            pass
    return probed


def find_python(spec: str | None, cache_dir: Path | None = None) -> Path:
    """The interpreter ``--python`` means: a version (``3.12``), a name on PATH, or a path."""
    if spec is None:
        return Path(sys.executable)
    m = _VERSION.match(spec.strip())
    if m:
        major, minor, patch = m.groups()
        want = tuple(int(x) for x in (major, minor, patch) if x)
        for cand in _candidates(major, minor, patch):
            probed = _probe_cached(cand, cache_dir)
            if probed and probed[1][: len(want)] == want:
                return Path(probed[0])
        raise EnvmatError(
            f"no Python {spec} interpreter found",
            context=[
                f"looked for python{major}{'.' + minor if minor else ''} on PATH and in pyenv's versions directory"
            ],
            hint=f"install Python {spec} (e.g. pyenv install {spec}) or pass --python /path/to/python",
        )
    path = shutil.which(spec) if os.sep not in spec else spec
    if path and Path(path).exists():
        probed = _probe_cached(path, cache_dir)
        if probed:
            return Path(probed[0])
        raise EnvmatError(
            f"the interpreter {spec} does not run",
            hint="pass a working interpreter with --python (a version such as 3.12, or a path)",
        )
    raise EnvmatError(
        f"no interpreter {spec!r} found",
        hint="pass --python with a version such as 3.12 or the path of a python executable",
    )


def find_python_and_target(spec: str | None, cache_dir: Path | None) -> tuple[Path, Target]:
    """``find_python(spec)`` and its ``query_target``. A path is asked once: the query reports
    the executable and version the probe would (one interpreter start fewer on a cold cache);
    when it fails, ``find_python`` says what is wrong with the path."""
    from .target import query_target

    if spec is not None and os.sep in spec and os.path.isfile(spec):
        try:
            target = query_target(Path(spec), cache_dir)
        except EnvmatError:
            pass
        else:
            return Path(target.executable), target
    interpreter = find_python(spec, cache_dir)
    return interpreter, query_target(interpreter, cache_dir)


def read_pyvenv_cfg(venv: Path) -> dict[str, str]:
    return fastpath.read_pyvenv_cfg(str(venv))


def check_existing_venv(venv: Path) -> bool:
    """True when ``venv`` is a venv, False when it is missing or an empty directory; else an error."""
    if not os.path.lexists(venv):
        return False
    if not venv.is_dir():
        raise EnvmatError(
            f"--venv {venv} is a file, not a directory",
            hint="pass the path of a virtual environment, or a path that does not exist yet",
        )
    if (venv / "pyvenv.cfg").is_file():
        if not venv_python(venv).exists():
            raise EnvmatError(
                f"the venv {venv} has no interpreter ({venv_python(venv).relative_to(venv)} is missing)",
                hint=f"remove {venv} and run envmat sync again to recreate it",
            )
        return True
    if any(venv.iterdir()):
        raise EnvmatError(
            f"{venv} is not a virtual environment (it has no pyvenv.cfg)",
            hint="pass --venv with a venv or a new path; envmat does not install into other directories",
        )
    return False


def check_python_matches(venv: Path, spec: str | None, requested: Path | None) -> None:
    """An existing venv keeps its interpreter: a ``--python`` naming another version is an error."""
    if spec is None:
        return
    cfg = read_pyvenv_cfg(venv)
    have = cfg.get("version_info") or cfg.get("version") or ""
    m = _VERSION.match(spec.strip())
    if m:
        want = ".".join(x for x in m.groups() if x)
        ok = have == want or have.startswith(want + ".")
    else:
        probed = _probe(str(requested or spec))
        ok = probed is not None and ".".join(map(str, probed[1])) == have
    if not ok:
        raise EnvmatError(
            f"the venv {venv} uses Python {have or 'unknown'}, but --python asks for {spec}",
            hint=f"remove {venv} to recreate it with {spec}, or drop --python to keep its interpreter",
        )


def _runs_here(python: Path) -> bool:
    """Whether ``python -m venv`` would run this process's own venv module for the same base
    interpreter: ``python`` is this interpreter, or the base interpreter it was made from
    (``sys._base_executable``, which the venv module links new venvs to)."""
    here = {sys.executable, getattr(sys, "_base_executable", None)}
    # PYTHONHOME moves this process's prefix, which `python -I` would ignore
    return str(python) in here and "PYTHONHOME" not in os.environ


def _venv_module_here(venv: Path, python: Path) -> None:
    """What ``python -I -S -m venv --without-pip venv`` does, run by this process's own venv
    module (``_runs_here``): the same code on the same interpreter, without starting one
    (~45 ms of CPU, on every cold cache)."""
    import venv as venv_module

    venv_module.main(["--without-pip", str(venv)])
    # pyvenv.cfg's informational `command` line (3.11+) names the interpreter that ran the
    # module: name the one `python -m venv` would have run
    cfg = venv / "pyvenv.cfg"
    mine = f"command = {sys.executable} -m venv "
    if str(python) != sys.executable:
        text = cfg.read_text(encoding="utf-8")
        if mine in text:
            cfg.write_text(text.replace(mine, f"command = {python} -m venv ", 1), encoding="utf-8")


def _run_venv_module(venv: Path, python: Path) -> None:
    """``python -m venv --without-pip``; a failed creation leaves nothing behind."""
    import subprocess

    existed = venv.exists()
    if _runs_here(python):
        try:
            _venv_module_here(venv, python)
            return
        except Exception as e:  # the venv module's own errors are all this can meet
            if not existed:
                shutil.rmtree(venv, ignore_errors=True)
            raise EnvmatError(
                f"could not create the venv {venv} with {python}: {e}",
                hint="check that the interpreter has its venv module (Debian: apt install python3-venv)",
            ) from None
    # -I -S: the venv module needs no site-packages, and skipping site halves the time on
    # interpreters whose site runs .pth files (pyenv's: 0.10 s -> 0.05 s)
    proc = subprocess.run(
        [str(python), "-I", "-S", "-m", "venv", "--without-pip", str(venv)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        if not existed:
            shutil.rmtree(venv, ignore_errors=True)
        raise EnvmatError(
            f"could not create the venv {venv} with {python}",
            details=proc.stderr.strip().splitlines()[-3:],
            hint="check that the interpreter has its venv module (Debian: apt install python3-venv)",
        )


def _template(python: Path, cache_dir: Path) -> tuple[str, str] | None:
    """A venv made once by ``python``'s own venv module, kept in the cache to be cloned
    (venvclone.py): (the template, the path its files name)."""
    found = venvclone.find_template(str(python), str(cache_dir))
    if found is not None:
        return found
    home, name = venvclone.template_home(str(python), str(cache_dir))
    work = os.path.join(os.path.dirname(home), f".tmp-{os.urandom(8).hex()}")
    try:
        os.makedirs(work)
        _run_venv_module(Path(work, name), python)
        # the path its files name (it is built here, then renamed beside its siblings)
        Path(work, "complete").write_text(os.path.join(work, name))
        try:
            os.rename(work, home)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)  # another process made it first
    except (OSError, EnvmatError):
        shutil.rmtree(work, ignore_errors=True)
        return None
    return venvclone.find_template(str(python), str(cache_dir))


def template_ready(python: Path, cache_dir: Path) -> bool:
    return venvclone.find_template(str(python), str(cache_dir)) is not None


def make_template(python: Path, cache_dir: Path) -> None:
    """Make ``python``'s template now (e.g. in a thread while wheels download); any failure
    is left for ``create_venv`` to meet and report."""
    with contextlib.suppress(OSError, EnvmatError):
        _template(python, cache_dir)


def create_venv(venv: Path, python: Path, cache_dir: Path | None = None) -> None:
    """Make a venv without pip, as ``python -m venv --without-pip`` would.

    With a cache, the interpreter's venv module runs once and later venvs are cloned from
    its output (a few small files and links instead of starting an interpreter).
    """
    found = _template(python, cache_dir) if cache_dir is not None else None
    if found is None:
        _run_venv_module(venv, python)
        return
    existed = venv.exists()
    try:
        venvclone.clone(*found, str(venv))
    except OSError as e:
        if not existed:
            shutil.rmtree(venv, ignore_errors=True)
        raise EnvmatError(
            f"could not create the venv {venv}: {e.strerror}",
            hint="check that its parent directory is writable",
        ) from None
