"""Find the interpreter ``--python`` names, and find, check or create the target venv."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import uuid
from pathlib import Path

from .errors import EnvmatError

_VERSION = re.compile(r"^(?:python|cpython[-@]?)?(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


def creating_marker(venv: Path) -> Path:
    """Stands beside a venv while a run makes it and syncs it the first time (api.py)."""
    return venv.parent / f".{venv.name}.envmat-creating"


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


def read_pyvenv_cfg(venv: Path) -> dict[str, str]:
    cfg: dict[str, str] = {}
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return cfg
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            cfg[key.strip().lower()] = value.strip()
    return cfg


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


def _run_venv_module(venv: Path, python: Path) -> None:
    """``python -m venv --without-pip``; a failed creation leaves nothing behind."""
    import subprocess

    existed = venv.exists()
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


def _template_key(python: Path) -> str:
    import hashlib

    real = python.resolve()
    st = real.stat()
    raw = f"venv-template-1|{python}|{real}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _template(python: Path, cache_dir: Path) -> tuple[Path, str] | None:
    """A venv made once by ``python``'s own venv module, kept in the cache to be cloned.

    Its directory name is a token that appears nowhere else, so cloning it is replacing the
    token's path and name in its few text files (activate scripts, pyvenv.cfg): each Python
    version's venv layout and scripts stay exactly its own.
    """
    key = _template_key(python)
    home = cache_dir / "venv-templates" / key
    template = home / f"envmat-venv-{key}"
    if (home / "complete").exists():
        return template, (home / "complete").read_text()
    work = cache_dir / "venv-templates" / f".tmp-{uuid.uuid4().hex}"
    try:
        work.mkdir(parents=True)
        _run_venv_module(work / template.name, python)
        # the path its files name (it is built here, then renamed beside its siblings)
        (work / "complete").write_text(str(work / template.name))
        try:
            os.rename(work, home)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)  # another process made it first
    except (OSError, EnvmatError):
        shutil.rmtree(work, ignore_errors=True)
        return None
    return (template, (home / "complete").read_text()) if (home / "complete").exists() else None


def template_ready(python: Path, cache_dir: Path) -> bool:
    return (cache_dir / "venv-templates" / _template_key(python) / "complete").exists()


def make_template(python: Path, cache_dir: Path) -> None:
    """Make ``python``'s template now (e.g. in a thread while wheels download); any failure
    is left for ``create_venv`` to meet and report."""
    with contextlib.suppress(OSError, EnvmatError):
        _template(python, cache_dir)


def _clone(template: Path, built_at: str, venv: Path) -> None:
    old_path, old_name = built_at.encode(), template.name.encode()
    new_path, new_name = str(venv).encode(), venv.name.encode()
    venv.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(template):
        rel = os.path.relpath(dirpath, template)
        dest = venv if rel == "." else venv / rel
        for name in dirnames + filenames:
            src = os.path.join(dirpath, name)
            dst = dest / name
            if os.path.islink(src):
                target = os.readlink(src).replace(built_at, str(venv))
                os.symlink(target, dst)
                if name in dirnames:
                    dirnames.remove(name)  # lib64 -> lib: made as a link, not descended into
            elif name in dirnames:
                dst.mkdir()
            else:
                with open(src, "rb") as f:
                    data = f.read().replace(old_path, new_path).replace(old_name, new_name)
                fd = os.open(
                    dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, os.stat(src).st_mode & 0o777
                )
                with open(fd, "wb") as out:
                    out.write(data)


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
        _clone(*found, venv)
    except OSError as e:
        if not existed:
            shutil.rmtree(venv, ignore_errors=True)
        raise EnvmatError(
            f"could not create the venv {venv}: {e.strerror}",
            hint="check that its parent directory is writable",
        ) from None
