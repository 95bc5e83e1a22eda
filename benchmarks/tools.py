"""How each tool (envmat, uv, pip) performs each benchmark operation.

Every operation is a list of *phases*; each phase is one process. A phase named
``step`` is the installer alone (the anchors' "step" column); the whole figure is
the sum of all phases (for uv and pip: ``uv venv`` + the installer).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from workloads import Workload


@dataclass
class Phase:
    name: str  # "venv", "step" or "whole"
    argv: list[str]
    env: dict[str, str]


def find_tool(name: str) -> str | None:
    """``name`` next to the running interpreter (the dev venv), else on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name)


def install_envmat(work: Path, python: str, uv: str) -> list[str]:
    """envmat as users get it: a regular (not editable) install of this checkout in its own venv."""
    repo = Path(__file__).resolve().parent.parent
    venv = work / "envmat-venv"
    env = base_env()
    if not (venv / "bin" / "python").exists():
        subprocess.run([uv, "venv", "-q", "-p", python, str(venv)], check=True, env=env)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "-p",
            str(venv / "bin" / "python"),
            "--reinstall-package",
            "envmat",
            str(repo),
        ],
        check=True,
        env=env,
    )
    # compile envmat's own modules once, as pip does on install
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "compileall", "-q", str(venv / "lib")],
        check=False,
        env=env,
    )
    return [str(venv / "bin" / "envmat")]


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    # PYTHONDONTWRITEBYTECODE would make every Python tool recompile its own modules at each
    # start (set on some CI machines; not what users run)
    for var in (
        "VIRTUAL_ENV",
        "UV_CACHE_DIR",
        "ENVMAT_CACHE_DIR",
        "PYTHONPATH",
        "CONDA_PREFIX",
        "PYTHONDONTWRITEBYTECODE",
    ):
        env.pop(var, None)
    return env


class Tool:
    name = ""
    #: cases this tool takes part in
    cases: tuple[str, ...] = ()

    def __init__(self, python: str, cache: Path) -> None:
        self.python = python
        self.cache = cache

    def version(self) -> list[str]:
        return []

    def fresh(
        self,
        wl: Workload,
        venv: Path,
        variant: str = "main",
        *,
        link_mode: str | None = None,
        offline: bool = False,
        compile_bytecode: bool = False,
        cache: Path | None = None,
    ) -> list[Phase]:
        raise NotImplementedError

    def sync(self, wl: Workload, venv: Path, variant: str) -> list[Phase]:
        """Bring an existing venv to ``variant`` (main / old / minus)."""
        raise NotImplementedError

    def remove(self, wl: Workload, venv: Path) -> list[Phase]:
        """The timed op of the "one removed" case."""
        return self.sync(wl, venv, "minus")


def _lock(wl: Workload, variant: str) -> Path:
    return {"main": wl.lock, "old": wl.lock_old, "minus": wl.lock_minus}[variant]


class Envmat(Tool):
    name = "envmat"
    cases = (
        "fresh", "fresh_offline", "fresh_copy", "compile", "cold",
        "noop", "upgrade", "remove", "warm_netless",
    )  # fmt: skip

    def __init__(self, python: str, cache: Path, command: list[str]) -> None:
        super().__init__(python, cache)
        self.command = command

    def version(self) -> list[str]:
        return [*self.command, "--version"]

    def _sync(
        self,
        lock: Path,
        venv: Path,
        *,
        link_mode: str | None = None,
        offline: bool = False,
        compile_bytecode: bool = False,
        cache: Path | None = None,
        create: bool = False,
    ) -> Phase:
        argv = [*self.command, "sync", str(lock), "--venv", str(venv), "-q"]
        argv += ["--cache-dir", str(cache or self.cache)]
        if create:
            # envmat makes the venv itself: part of its "whole"
            argv += ["--python", self.python]
        if link_mode:
            argv += ["--link-mode", link_mode]
        if offline:
            argv.append("--offline")
        if compile_bytecode:
            argv.append("--compile-bytecode")
        return Phase("whole", argv, base_env())

    def fresh(self, wl, venv, variant="main", *, link_mode=None, offline=False,
              compile_bytecode=False, cache=None):  # fmt: skip
        return [
            self._sync(
                _lock(wl, variant),
                venv,
                link_mode=link_mode,
                offline=offline,
                compile_bytecode=compile_bytecode,
                cache=cache,
                create=True,
            )
        ]

    def sync(self, wl, venv, variant):
        return [self._sync(_lock(wl, variant), venv)]


class Uv(Tool):
    name = "uv"
    cases = Envmat.cases

    def __init__(self, python: str, cache: Path, uv: str) -> None:
        super().__init__(python, cache)
        self.uv = uv

    def version(self) -> list[str]:
        return [self.uv, "--version"]

    def env(self, cache: Path | None = None) -> dict[str, str]:
        env = base_env()
        env["UV_CACHE_DIR"] = str(cache or self.cache)
        return env

    def venv_phase(self, venv: Path) -> Phase:
        return Phase(
            "venv", [self.uv, "venv", "-q", "--python", self.python, str(venv)], self.env()
        )

    def _sync(self, lock: Path, venv: Path, *, link_mode=None, offline=False,
              compile_bytecode=False, cache=None) -> Phase:  # fmt: skip
        argv = [self.uv, "pip", "sync", "-q", "--python", str(venv / "bin" / "python"), str(lock)]
        if link_mode:
            argv += ["--link-mode", link_mode]
        if offline:
            argv.append("--offline")
        if compile_bytecode:
            argv.append("--compile-bytecode")
        return Phase("step", argv, self.env(cache))

    def fresh(self, wl, venv, variant="main", *, link_mode=None, offline=False,
              compile_bytecode=False, cache=None):  # fmt: skip
        return [
            self.venv_phase(venv),
            self._sync(
                _lock(wl, variant),
                venv,
                link_mode=link_mode,
                offline=offline,
                compile_bytecode=compile_bytecode,
                cache=cache,
            ),
        ]

    def sync(self, wl, venv, variant):
        return [self._sync(_lock(wl, variant), venv)]


class Pip(Tool):
    """``pip install --no-deps --no-index --find-links`` of the lock as hashed requirements.

    pip has no link mode (it always unpacks) and no cache to be cold: it takes part in
    fresh (``--no-compile``, same file set as uv), compile (pip's default, it
    byte-compiles), noop, upgrade and remove (``pip uninstall -y``, since pip cannot
    remove what a requirements file no longer lists).
    """

    name = "pip"
    cases = ("fresh", "compile", "noop", "upgrade", "remove")

    def __init__(self, python: str, cache: Path, pip: str, uv: str) -> None:
        super().__init__(python, cache)
        self.pip = pip
        self.uv = Uv(python, cache, uv)

    def version(self) -> list[str]:
        return [self.pip, "--version"]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in base_env().items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        return env

    def _install(self, wl: Workload, venv: Path, variant: str, compile_bytecode: bool) -> Phase:
        req = {"main": wl.req, "old": wl.req_old}[variant]
        argv = [
            self.pip, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
            "--no-index", "--find-links", str(wl.wheels), "-r", str(req),
        ]  # fmt: skip
        if not compile_bytecode:
            argv.append("--no-compile")
        return Phase("step", argv, self.env())

    def fresh(self, wl, venv, variant="main", *, link_mode=None, offline=False,
              compile_bytecode=False, cache=None):  # fmt: skip
        return [self.uv.venv_phase(venv), self._install(wl, venv, variant, compile_bytecode)]

    def sync(self, wl, venv, variant):
        if variant == "minus":
            return self.remove(wl, venv)
        return [self._install(wl, venv, variant, False)]

    def remove(self, wl, venv):
        argv = [
            self.pip, "--python", str(venv / "bin" / "python"), "uninstall", "-q", "-y",
            wl.spec.remove,
        ]  # fmt: skip
        return [Phase("step", argv, self.env())]
