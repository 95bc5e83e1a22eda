"""What the target interpreter is: marker environment, wheel tags in priority order, scheme paths.

The answer comes from running the venv's own interpreter once (envmat may run on another Python),
and is cached on disk keyed by the interpreter's path, size and mtime.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import field, frozen

from .cachedir import write_entry
from .errors import EnvmatError


def _norm(s: str) -> str:
    return s.replace(".", "_").replace("-", "_").replace(" ", "_")


def _cpython_abis(version: tuple[int, int], facts: Mapping[str, Any]) -> list[str]:
    """packaging.tags._cpython_abis for another interpreter (3.8+: no pymalloc/ucs4 flags)."""
    nodot = f"{version[0]}{version[1]}"
    debug = (
        "d"
        if facts["py_debug"]
        or (facts["py_debug"] is None and (facts["has_refcount"] or facts["debug_ext"]))
        else ""
    )
    threading = "t" if version >= (3, 13) and facts["gil_disabled"] else ""
    abis = [f"cp{nodot}{threading}{debug}"]
    if debug:
        abis.append(f"cp{nodot}{threading}")
    return abis


def _platforms(facts: Mapping[str, Any]) -> list[str]:
    """The target's platform tags, most specific first (packaging.tags.platform_tags, per target)."""
    import sysconfig

    from packaging import _manylinux, _musllinux, tags

    plat = _norm(facts["platform"])
    if plat == _norm(sysconfig.get_platform()) and facts["is_32bit"] == (sys.maxsize <= 2**32):
        # the usual case: the target runs on this host with the same architecture, so packaging's
        # own answer (and its ordering, which changed in 26.3) is the target's answer
        return list(tags.platform_tags())
    if plat.startswith("linux_"):
        if facts["is_32bit"]:
            plat = {"linux_x86_64": "linux_i686", "linux_aarch64": "linux_armv8l"}.get(plat, plat)
        arch = plat.split("_", 1)[1]
        archs = {"armv8l": ["armv8l", "armv7l"]}.get(arch, [arch])
        # manylinux/musllinux detection reads this process's libc: the target runs on this host
        out = [f"linux_{a}" for a in archs]
        return out + list(_manylinux.platform_tags(archs)) + list(_musllinux.platform_tags(archs))
    if plat.startswith("macosx_") and facts["mac_ver"]:
        major, minor = (int(x) for x in ([*facts["mac_ver"].split("."), "0"])[:2])
        return list(tags.mac_platforms((major, minor), facts["environment"]["platform_machine"]))
    return [plat]


def compute_tags(facts: Mapping[str, Any]) -> list[str]:
    """Supported tags in priority order, as the target's own ``packaging.tags.sys_tags()``."""
    from packaging import tags

    version = (int(facts["version"][0]), int(facts["version"][1]))
    platforms = _platforms(facts)
    impl = facts["implementation"]
    if impl == "cpython":
        found = list(tags.cpython_tags(version, _cpython_abis(version, facts), platforms))
        interpreter = f"cp{version[0]}{version[1]}"
    else:
        abbr = {"pypy": "pp", "graalpy": "graalpy"}.get(impl, impl)
        soabi = facts["soabi"]
        abis = [_norm(soabi)] if soabi else []
        interpreter = f"{abbr}{version[0]}{version[1]}"
        found = list(tags.generic_tags(interpreter, abis, platforms))
    found += list(tags.compatible_tags(version, interpreter, platforms))
    return [str(t) for t in found]


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
    #: the same for a venv made from this interpreter, with ``/@ENVMAT_VENV@`` for its path
    venv_paths: Mapping[str, str] = field(factory=dict)

    @property
    def python_version(self) -> str:
        return ".".join(map(str, self.version[:2]))

    @property
    def platform(self) -> str:
        """The platform for messages: the newest manylinux/macOS tag rather than ``linux_x86_64``."""
        platforms = [t.split("-")[-1] for t in self.tags[:8]]
        named = [p for p in platforms if not p.startswith("linux_")]
        return (named or platforms or ["unknown"])[0]

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
            venv_paths=dict(data.get("venv_paths", {})),
        )

    def to_json(self) -> dict[str, Any]:
        """What ``from_json`` reads (the cached answer's form)."""
        return {
            "executable": self.executable,
            "prefix": self.prefix,
            "version": list(self.version),
            "implementation": self.implementation,
            "environment": dict(self.environment),
            "tags": list(self.tags),
            "paths": dict(self.paths),
            "venv_paths": dict(self.venv_paths),
        }

    def in_venv(self, venv: Path) -> Target:
        """The target of ``venv``, made from this interpreter, from this answer (also when the
        venv's own interpreter gave it: asked without site, it answers as its base does)."""
        return self.for_new_venv(venv) or self

    def for_new_venv(self, venv: Path) -> Target | None:
        """The target of a venv just made from this interpreter, without asking it again."""
        if not self.venv_paths:
            return None
        paths = {k: v.replace("/@ENVMAT_VENV@", str(venv)) for k, v in self.venv_paths.items()}
        if not os.path.isdir(paths["purelib"]):
            return None  # an unusual layout: let the caller ask the venv's interpreter
        return Target(
            executable=str(venv / "bin" / "python"),
            prefix=str(venv),
            version=self.version,
            implementation=self.implementation,
            environment=self.environment,
            tags=self.tags,
            paths={**paths, "include": str(venv / "include")},
        )


def query_target(python: Path, cache_dir: Path | None) -> Target:
    """Ask ``python`` (a venv's interpreter) for its target description, using the cache when fresh."""
    from . import targetquery

    try:
        cached = _answer_file(python, cache_dir) if cache_dir else None
    except OSError as e:
        raise EnvmatError(
            f"cannot run the interpreter {python}: {e.strerror}",
            hint="the venv's interpreter is missing or broken; remove the venv and sync again",
        ) from None
    if cached is not None:
        try:
            return Target.from_json(json.loads(cached.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    try:
        returncode, stdout, stderr = targetquery.run(str(python))
    except OSError as e:
        raise EnvmatError(
            f"cannot run the interpreter {python}: {e.strerror}",
            hint="pass --python with a working interpreter (a version such as 3.12, or a path)",
        ) from None
    if returncode != 0:
        raise EnvmatError(
            f"the interpreter {python} failed when asked for its tags and paths",
            details=[line for line in stderr.strip().splitlines()[-3:]],
            hint="envmat targets CPython 3.8 or newer; check that the interpreter runs",
        )
    data = json.loads(stdout)
    data["tags"] = compute_tags(data)
    if tuple(data["version"][:2]) < (3, 8):
        raise EnvmatError(
            f"the interpreter {python} is Python {'.'.join(map(str, data['version']))}",
            hint="envmat targets CPython 3.8 or newer; pass --python 3.8 or newer",
        )
    if cached is not None:
        write_entry(cached, json.dumps(data))
    return Target.from_json(data)


def remember_target(python: Path, cache_dir: Path, answer: Target) -> None:
    """Keep ``answer`` as the cached answer of ``python`` (the interpreter of a venv this run
    made, answering as its base does), so that the next sync into the venv need not start it
    to ask again (~0.05 s)."""
    try:
        cached = _answer_file(python, cache_dir)
    except OSError:
        return
    write_entry(cached, json.dumps(answer.to_json()))


def _answer_file(python: Path, cache_dir: Path) -> Path:
    """Where the cache keeps ``python``'s answer; OSError when the interpreter is missing."""
    from . import targetquery

    return cache_dir / targetquery.ANSWERS / f"{targetquery.cache_key(str(python))}.json"
