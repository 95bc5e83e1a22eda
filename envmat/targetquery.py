"""Asking an interpreter what it is: the query script whose answer target.py turns into a
``Target``, the key of that answer in the cache, and queries started ahead.

Stdlib only (no pathlib either): the CLI starts the query of a new venv's interpreter first
thing (prefetch.py), so that the subprocess runs on another core while envmat imports its engine.
"""

from __future__ import annotations

import contextlib
import os
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

#: the cache's directory of answers, one JSON file per ``cache_key``
ANSWERS = "interpreters"

# Bumped whenever the query's output changes shape, so old cache entries are ignored.
QUERY_VERSION = 4

# Runs inside the target interpreter (any CPython 3.8+), stdlib only: packaging itself may not
# import there. It reports the marker environment (PEP 508 "Environment Markers", computed as
# packaging.markers.default_environment does) and the raw facts wheel tags are derived from.
QUERY = r"""
import json, os, platform, sys, sysconfig
def fmt(info):
    v = "{0.major}.{0.minor}.{0.micro}".format(info)
    if info.releaselevel != "final":
        v += info.releaselevel[0] + str(info.serial)
    return v
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": fmt(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
if hasattr(sysconfig, "get_preferred_scheme"):
    paths = sysconfig.get_paths(scheme=sysconfig.get_preferred_scheme("prefix"))
else:
    paths = sysconfig.get_paths()
import importlib.machinery as m
cv = sysconfig.get_config_var
# where a venv made from this interpreter puts things (the venv module's own computation)
ph = "/@ENVMAT_VENV@"
vscheme = "venv" if "venv" in sysconfig.get_scheme_names() else ("nt" if os.name == "nt" else "posix_prefix")
vpaths = sysconfig.get_paths(scheme=vscheme, vars={"base": ph, "platbase": ph, "installed_base": ph, "installed_platbase": ph})
print(json.dumps({
    "executable": sys.executable,
    "prefix": sys.prefix,
    "version": list(sys.version_info[:3]),
    "implementation": sys.implementation.name,
    "environment": env,
    "platform": sysconfig.get_platform(),
    "mac_ver": platform.mac_ver()[0],
    "is_32bit": sys.maxsize <= 2**32,
    "py_debug": cv("Py_DEBUG"),
    "gil_disabled": bool(cv("Py_GIL_DISABLED")),
    "has_refcount": hasattr(sys, "gettotalrefcount"),
    "debug_ext": "_d.pyd" in m.EXTENSION_SUFFIXES,
    "soabi": cv("SOABI"),
    "paths": {k: paths[k] for k in ("purelib", "platlib", "scripts", "include", "data")},
    "venv_paths": {k: vpaths[k] for k in ("purelib", "platlib", "scripts", "data")},
}))
"""

_started: dict[str, subprocess.Popen[str]] = {}
_lock = threading.Lock()


def _packaging_root() -> str:
    import packaging

    return os.path.dirname(os.path.dirname(os.path.realpath(packaging.__file__)))


def cache_key(python: str) -> str:
    """The answer's key in the cache: the interpreter's path, the file it resolves to (its size
    and mtime) and the packaging that computes tags from it. Raises OSError when it is missing."""
    import hashlib

    real = os.path.realpath(python)
    st = os.stat(real)
    raw = f"{QUERY_VERSION}|{python}|{real}|{st.st_size}|{st.st_mtime_ns}|{_packaging_root()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _popen(python: str) -> subprocess.Popen[str]:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.Popen(
        [python, "-I", "-S", "-c", QUERY],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def start(python: str) -> None:
    """Start asking ``python`` in the background; ``run`` takes the answer. Never raises: a
    query that cannot start is started again by ``run``, which reports why."""
    with _lock:
        if python in _started:
            return
        with contextlib.suppress(OSError):
            _started[python] = _popen(python)


def run(python: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the query of ``python``: the one ``start`` began, or
    a new one. Raises OSError when the interpreter cannot be started."""
    with _lock:
        proc = _started.pop(python, None)
    if proc is None:
        proc = _popen(python)
    out, err = proc.communicate()
    return proc.returncode, out, err
