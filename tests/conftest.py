"""Shared fixtures: wheel factory, HTTP server, isolated cache, interpreters, network gating."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Callable, Union

import pytest

from tests.httpserver import FaultServer, serve_directory
from tests.wheelmaker import make_wheel as _make_wheel

SUPPORTED_TARGETS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
Snapshot = dict[str, tuple[str, Union[int, str]]]


# --- running the CLI -----------------------------------------------------------------------


def run_envmat(
    *args: str | os.PathLike[str],
    cwd: Path | str | None = None,
    env: Mapping[str, str | None] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m envmat *args`` with text capture; never raises on a non-zero exit.

    ``env`` is applied on top of the current environment (a ``None`` value removes a key), so
    ``ENVMAT_CACHE_DIR`` set by the ``cache_dir`` fixture reaches the child.
    """
    full_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return subprocess.run(
        [sys.executable, "-m", "envmat", *map(os.fspath, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- comparing trees -----------------------------------------------------------------------


def default_sigint() -> None:
    """A child's ``preexec_fn``: SIGINT does what Ctrl-C does at a terminal. A process started
    where SIGINT is ignored (a background job of a non-interactive shell, as a CI runner may
    start the suite) inherits that, and Python then installs no KeyboardInterrupt handler."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_snapshot(root: Path, *, ignore: tuple[str, ...] = ("__pycache__",)) -> Snapshot:
    """Map each file under ``root`` (relative POSIX path) to ``(sha256, mode & 0o777)``.

    Symlinks (to files or directories) are not followed and map to ``("symlink", target)``.
    Any path component equal to a name in ``ignore`` drops that file or directory.
    """
    root = Path(root)
    out: Snapshot = {}
    ignored = set(ignore)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        kept = []
        for d in dirnames:
            if d in ignored:
                continue
            if (here / d).is_symlink():
                filenames.append(d)  # recorded as a link below, never descended into
            else:
                kept.append(d)
        dirnames[:] = sorted(kept)
        for name in filenames:
            if name in ignored:
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("symlink", os.readlink(path))
            elif path.is_file():
                out[rel] = (_sha256(path), path.stat().st_mode & 0o777)
    return dict(sorted(out.items()))


# --- wheels and servers --------------------------------------------------------------------


@pytest.fixture
def wheel_dir(tmp_path: Path) -> Path:
    """A fresh directory for the wheels a test builds."""
    path = tmp_path / "wheels"
    path.mkdir()
    return path


@pytest.fixture
def make_wheel(wheel_dir: Path) -> Callable[..., Path]:
    """``make_wheel(name, version, **kw)``: tests.wheelmaker.make_wheel writing into wheel_dir."""
    return functools.partial(_make_wheel, wheel_dir)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[FaultServer]:
    """A loopback server for ``tmp_path / "served"``; put files there, then ``url_for(name)``."""
    with serve_directory(tmp_path / "served") as server:
        yield server


# --- cache isolation -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envmat-cache")


@pytest.fixture(autouse=True)
def _isolate_cache(_session_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the user's cache, even one that forgets ``cache_dir``."""
    monkeypatch.setenv("ENVMAT_CACHE_DIR", str(_session_cache_dir))


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty cache for this test, also exported as ``ENVMAT_CACHE_DIR``."""
    path = tmp_path / "cache"
    path.mkdir()
    monkeypatch.setenv("ENVMAT_CACHE_DIR", str(path))
    return path


# --- interpreters --------------------------------------------------------------------------


def _pyenv_root() -> Path:
    env_root = os.environ.get("PYENV_ROOT")
    if env_root:
        return Path(env_root)
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            out = subprocess.run(
                [pyenv, "root"], capture_output=True, text=True, timeout=10, check=True
            )
            if out.stdout.strip():
                return Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return Path.home() / ".pyenv"


def _real_executable(candidate: Path | str, version: str) -> Path | None:
    """Return ``sys.executable`` of ``candidate`` if it runs and is CPython ``version``."""
    code = "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"
    try:
        out = subprocess.run(
            [os.fspath(candidate), "-c", code], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2 or lines[1] != version:
        return None
    return Path(lines[0]).resolve()


def _patch_key(path: Path, version: str) -> tuple[int, ...]:
    suffix = path.parents[1].name[len(version) + 1 :]
    return tuple(int(p) for p in suffix.split(".")) if re.fullmatch(r"\d+(\.\d+)*", suffix) else ()


@functools.cache
def find_python(version: str) -> Path | None:
    """Find a working CPython ``version`` ("3.8".."3.13"): pyenv versions first, then PATH."""
    versions = _pyenv_root() / "versions"
    # Newest patch release first; "3.13.0t" (free-threaded) and other suffixes are skipped.
    candidates = sorted(
        (p for p in versions.glob(f"{version}.*/bin/python{version}") if _patch_key(p, version)),
        key=lambda p: _patch_key(p, version),
        reverse=True,
    )
    for candidate in candidates:
        found = _real_executable(candidate, version)
        if found is not None:
            return found
    # A pyenv shim for a version that is not installed exists on PATH but fails to run.
    on_path = shutil.which(f"python{version}")
    if on_path:
        return _real_executable(on_path, version)
    return None


@pytest.fixture(scope="session")
def pythons() -> dict[str, Path]:
    """Every supported target interpreter found on this machine, by "3.x" version."""
    found = {v: find_python(v) for v in SUPPORTED_TARGETS}
    return {v: p for v, p in found.items() if p is not None}


@pytest.fixture(scope="session")
def python_factory() -> Callable[[str], Path]:
    """``python_factory("3.9")`` returns that interpreter or skips the test with the reason."""

    def get(version: str) -> Path:
        found = find_python(version)
        if found is None:
            pytest.skip(
                f"CPython {version} not found (looked in pyenv versions and for "
                f"python{version} on PATH); install it to run this test"
            )
        return found

    return get


@pytest.fixture(params=["3.9", "3.12"], ids=["py39", "py312"])
def target_python(request: pytest.FixtureRequest, python_factory: Callable[[str], Path]) -> Path:
    """The target interpreter for a venv, once per supported version (skipped when missing)."""
    return python_factory(request.param)


# --- network gating ------------------------------------------------------------------------


def _configured_index_url() -> str | None:
    """The index uv or pip is configured with, if any (never a built-in default)."""
    for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        value = os.environ.get(var, "").split()
        if value:
            return value[0]
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.stdout.splitlines():
        key, _, value = line.partition("=")
        key = key.strip()
        urls = value.strip().strip("'\"").split()
        if key.endswith(".index-url") and not key.endswith("extra-index-url") and urls:
            return urls[0]
    return None


def _index_reachable(url: str, timeout: float) -> bool:
    if url.startswith("file:"):
        return Path(urllib.request.url2pathname(url[len("file:") :])).exists()
    try:
        req = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code < 500  # the host answered; 401/403/405 still mean it is there
    except (OSError, ValueError):
        return False


def _uv_can_resolve(timeout: float) -> bool:
    """Resolve a tiny requirement against whatever index uv is configured with."""
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        return False
    try:
        out = subprocess.run(
            [uv, "pip", "compile", "--refresh", "--quiet", "-"],
            input="iniconfig\n",
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "iniconfig" in out.stdout


@pytest.fixture(scope="session")
def registry_available() -> bool:
    """Whether tests marked ``network`` can reach the package registry (checked once)."""
    if os.environ.get("ENVMAT_NO_NETWORK") == "1":
        return False
    url = _configured_index_url()
    if url is not None:
        return _index_reachable(url, timeout=10)
    return _uv_can_resolve(timeout=30)


@pytest.fixture(autouse=True)
def _skip_network_tests(request: pytest.FixtureRequest) -> None:
    """Skip tests marked ``network`` when ENVMAT_NO_NETWORK=1 or the registry is unreachable."""
    if request.node.get_closest_marker("network") is None:
        return
    if os.environ.get("ENVMAT_NO_NETWORK") == "1":
        pytest.skip("package registry not reachable (ENVMAT_NO_NETWORK=1)")
    if not request.getfixturevalue("registry_available"):
        pytest.skip("package registry not reachable")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Show which target interpreters the integration tests will use."""
    found = {v: find_python(v) for v in SUPPORTED_TARGETS}
    return [
        "target pythons: " + ", ".join(f"{v}={'yes' if p else 'missing'}" for v, p in found.items())
    ]
