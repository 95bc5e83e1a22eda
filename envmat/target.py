"""What the target interpreter is: marker environment, wheel tags in priority order, scheme paths.

The answer comes from running the venv's own interpreter once (envmat may run on another Python),
and is cached on disk keyed by the interpreter's path, size and mtime.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from .errors import EnvmatError

# Bumped whenever the query's output changes shape, so old cache entries are ignored.
_QUERY_VERSION = 2

# Runs inside the target interpreter with packaging importable (envmat puts packaging's parent
# directory first on sys.path; packaging supports every CPython envmat targets, 3.8+).
_QUERY = r"""
import json, os, sys, sysconfig
sys.path.insert(0, sys.argv[1])
from packaging import markers, tags
if hasattr(sysconfig, "get_preferred_scheme"):
    scheme = sysconfig.get_preferred_scheme("prefix")
    paths = sysconfig.get_paths(scheme=scheme)
else:
    paths = sysconfig.get_paths()
print(json.dumps({
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "version": list(sys.version_info[:3]),
    "implementation": sys.implementation.name,
    "environment": markers.default_environment(),
    "tags": [str(t) for t in tags.sys_tags()],
    "paths": {k: paths[k] for k in ("purelib", "platlib", "scripts", "include", "data")},
    "pointer_bits": 64 if sys.maxsize > 2**32 else 32,
}))
"""


@frozen(kw_only=True)
class Target:
    """Everything target-specific that selection and installation depend on."""

    executable: str
    prefix: str
    version: tuple[int, int, int]
    implementation: str
    environment: Mapping[str, str]
    #: supported wheel tags, most preferred first (``cp312-cp312-manylinux_2_17_x86_64``)
    tags: tuple[str, ...]
    #: sysconfig scheme: purelib, platlib, scripts, include, data (absolute)
    paths: Mapping[str, str]

    @property
    def python_version(self) -> str:
        return ".".join(map(str, self.version[:2]))

    @property
    def platform(self) -> str:
        """The most specific platform tag, for messages (``manylinux_2_36_x86_64``)."""
        return self.tags[0].split("-")[-1] if self.tags else "unknown"

    def describe(self) -> str:
        impl = "CPython" if self.implementation == "cpython" else self.implementation
        return f"{impl} {self.python_version} on {self.platform}"

    def rel(self, key: str) -> str:
        """A scheme path relative to the prefix (POSIX form), as the manifest keys paths."""
        return Path(os.path.relpath(self.paths[key], self.prefix)).as_posix()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Target:
        return cls(
            executable=data["executable"],
            prefix=data["prefix"],
            version=(int(data["version"][0]), int(data["version"][1]), int(data["version"][2])),
            implementation=data["implementation"],
            environment=dict(data["environment"]),
            tags=tuple(data["tags"]),
            paths=dict(data["paths"]),
        )


def _packaging_root() -> str:
    import packaging

    return str(Path(packaging.__file__).resolve().parent.parent)


def _cache_key(python: Path) -> str:
    st = python.resolve().stat()
    raw = f"{_QUERY_VERSION}|{python}|{python.resolve()}|{st.st_size}|{st.st_mtime_ns}|{_packaging_root()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def query_target(python: Path, cache_dir: Path | None) -> Target:
    """Ask ``python`` (a venv's interpreter) for its target description, using the cache when fresh."""
    try:
        key = _cache_key(python)
    except OSError as e:
        raise EnvmatError(
            f"cannot run the interpreter {python}: {e.strerror}",
            hint="the venv's interpreter is missing or broken; remove the venv and sync again",
        ) from None
    cached = cache_dir / "interpreters" / f"{key}.json" if cache_dir else None
    if cached is not None:
        try:
            return Target.from_json(json.loads(cached.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run(
        [str(python), "-I", "-S", "-c", _QUERY, _packaging_root()],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise EnvmatError(
            f"the interpreter {python} failed when asked for its tags and paths",
            details=[line for line in proc.stderr.strip().splitlines()[-3:]],
            hint="envmat targets CPython 3.8 or newer; check that the interpreter runs",
        )
    data = json.loads(proc.stdout)
    if tuple(data["version"][:2]) < (3, 8):
        raise EnvmatError(
            f"the interpreter {python} is Python {'.'.join(map(str, data['version']))}",
            hint="envmat targets CPython 3.8 or newer; pass --python 3.8 or newer",
        )
    if cached is not None:
        _write_cache(cached, proc.stdout)
    return Target.from_json(data)


def _write_cache(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        pass  # the cache is an optimisation; a read-only cache dir must not fail a sync


def running_python() -> str:
    return sys.executable
