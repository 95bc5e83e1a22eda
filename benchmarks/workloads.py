"""Workload definitions and their generation at run time with ``uv pip compile``.

For each workload this writes, into ``<work>/<name>/``:

* ``requirements.in``        the top-level requirements
* ``pylock.toml``            the lock every tool syncs to ("main")
* ``pylock.old.toml``        the main lock with one package at an older release
                             (the starting state of the "one package upgraded" case)
* ``pylock.minus.toml``      the main lock without one leaf package ("one removed")
* ``requirements.txt``       the main lock as pip requirements with ``--hash`` (wheels only)
* ``requirements.old.txt``   the same for ``pylock.old.toml``

and downloads every locked wheel once into ``<work>/pip-wheels/`` for pip's
``--no-index --find-links`` runs.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from timing import run_proc

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    requirements: tuple[str, ...]
    upgrade: str  # package locked one release series lower in pylock.old.toml
    remove: str  # leaf package (nothing else in the lock needs it) dropped in pylock.minus.toml


WORKLOADS: dict[str, WorkloadSpec] = {
    "small": WorkloadSpec("small", ("black",), upgrade="click", remove="black"),
    "medium": WorkloadSpec(
        "medium",
        ("flask", "sqlalchemy", "requests", "rich", "pydantic", "httpx"),
        upgrade="requests",
        remove="rich",
    ),
    "large": WorkloadSpec(
        "large",
        ("numpy", "pandas", "scipy", "matplotlib", "jupyterlab"),
        upgrade="pandas",
        remove="jupyterlab",
    ),
    "namespace": WorkloadSpec(
        "namespace",
        (
            "nvidia-cuda-runtime-cu12==12.1.105",
            "nvidia-nvtx-cu12==12.1.105",
            "nvidia-cuda-cupti-cu12==12.1.105",
            "nvidia-cuda-nvrtc-cu12==12.1.105",
        ),
        # All four share nvidia/__init__.py: upgrading and removing one of them
        # must leave the shared file in place.
        upgrade="nvidia-nvtx-cu12",
        remove="nvidia-cuda-nvrtc-cu12",
    ),
}

DEFAULT_WORKLOADS = ("small", "medium", "namespace")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def uv_python_platform() -> str:
    """The ``--python-platform`` that matches this machine."""
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}.get(
        machine, machine
    )
    if sys.platform == "darwin":
        return f"{arch}-apple-darwin"
    if sys.platform.startswith("linux"):
        return f"{arch}-unknown-linux-gnu"
    raise SystemExit(f"unsupported platform for the benchmarks: {sys.platform} {machine}")


@dataclass
class Workload:
    spec: WorkloadSpec
    dir: Path
    lock: Path
    lock_old: Path
    lock_minus: Path
    req: Path
    req_old: Path
    wheels: Path
    packages: dict[str, str]  # normalized name -> version, for the main lock
    packages_old: dict[str, str]
    packages_minus: dict[str, str]
    upgrade_from: str = ""
    upgrade_to: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    def expected(self, variant: str) -> dict[str, str]:
        return {"main": self.packages, "old": self.packages_old, "minus": self.packages_minus}[
            variant
        ]


# --- pylock text surgery ---------------------------------------------------------------


def split_lock(text: str) -> tuple[str, list[tuple[str, str]], str]:
    """Split a pylock.toml into (head, [(normalized name, block text)], tail).

    A block is one ``[[packages]]`` array entry with any ``[packages.*]`` sub-tables
    that follow it. The text of every block is kept byte for byte, so the variants
    we write are the main lock minus / plus whole entries and nothing else.
    """
    head: list[str] = []
    blocks: list[list[str]] = []
    tail: list[str] = []
    section = "head"
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == "[[packages]]":
            blocks.append([line])
            section = "block"
            continue
        if (
            section == "block"
            and stripped.startswith("[")
            and not stripped.startswith(("[packages.", "[[packages."))
        ):
            section = "tail"
        if section == "head":
            head.append(line)
        elif section == "block":
            blocks[-1].append(line)
        else:
            tail.append(line)
    named = []
    for block in blocks:
        block_text = "".join(block)
        name = tomllib.loads(block_text)["packages"][0]["name"]
        named.append((normalize(name), block_text))
    return "".join(head), named, "".join(tail)


def join_lock(head: str, blocks: list[tuple[str, str]], tail: str) -> str:
    parts = [head]
    for _, block in blocks:
        parts.append(block if block.endswith("\n") else block + "\n")
    parts.append(tail)
    return "".join(parts)


def lock_packages(path: Path) -> dict[str, str]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {normalize(p["name"]): str(p.get("version", "")) for p in data.get("packages", [])}


def lock_to_requirements(path: Path) -> str:
    """pip requirements with one ``--hash`` per locked wheel (sdists left out)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    lines = []
    for pkg in data.get("packages", []):
        hashes = [
            w["hashes"]["sha256"] for w in pkg.get("wheels", []) if "sha256" in w.get("hashes", {})
        ]
        if not hashes:
            raise RuntimeError(f"{path.name}: {pkg['name']} has no wheel with a sha256 in the lock")
        req = f"{pkg['name']}=={pkg['version']}"
        if pkg.get("marker"):
            req += f" ; {pkg['marker']}"
        lines.append(" ".join([req, *(f"--hash=sha256:{h}" for h in hashes)]))
    return "\n".join(lines) + "\n"


def lock_wheel_names(path: Path) -> set[str]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    names = set()
    for pkg in data.get("packages", []):
        for wheel in pkg.get("wheels", []):
            url = wheel.get("url") or wheel.get("path") or ""
            names.add(wheel.get("name") or url.rsplit("/", 1)[-1])
    return names


# --- generation -------------------------------------------------------------------------


def _compile(
    uv: str, cwd: Path, requirements: list[str], out: str, env: Mapping[str, str], *extra: str
) -> None:
    (cwd / "compile.in").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    res = run_proc(
        [
            uv, "pip", "compile", "-q",
            "--python-version", "3.11",
            "--python-platform", uv_python_platform(),
            "--format", "pylock.toml",
            *extra,
            "compile.in", "-o", out,
        ],
        env=env,
        cwd=str(cwd),
    )  # fmt: skip
    (cwd / "compile.in").unlink()
    if not res.ok:
        raise RuntimeError(f"uv pip compile {' '.join(requirements)} failed:\n{res.tail()}")


def _older_entry(
    uv: str, wdir: Path, pkg: str, version: str, env: Mapping[str, str]
) -> tuple[str, str]:
    """The lock block of ``pkg`` one release series lower than ``version``."""
    parts = version.split(".")
    bounds = []
    if len(parts) >= 2:
        bounds.append(".".join(parts[:2]))  # previous minor series, newest patch of it
    bounds.append(version)  # any earlier release
    last_err = ""
    for bound in bounds:
        try:
            _compile(
                uv, wdir, [f"{pkg}<{bound}"], "pylock.older-entry.toml", env,
                "--no-deps", "--only-binary", ":all:",
            )  # fmt: skip
        except RuntimeError as exc:
            last_err = str(exc)
            continue
        path = wdir / "pylock.older-entry.toml"
        _, blocks, _ = split_lock(path.read_text(encoding="utf-8"))
        path.unlink()
        for name, block in blocks:
            if name == normalize(pkg):
                return block, str(tomllib.loads(block)["packages"][0]["version"])
    raise RuntimeError(f"no older release of {pkg} (< {version}) could be locked: {last_err}")


def prepare_workload(
    spec: WorkloadSpec, work: Path, uv: str, pip: str, python: str, env: Mapping[str, str], log
) -> Workload:
    wdir = work / spec.name
    wdir.mkdir(parents=True, exist_ok=True)
    (wdir / "requirements.in").write_text("\n".join(spec.requirements) + "\n", encoding="utf-8")

    log(f"[{spec.name}] locking {' '.join(spec.requirements)} with uv")
    _compile(uv, wdir, list(spec.requirements), "pylock.toml", env)
    main_text = (wdir / "pylock.toml").read_text(encoding="utf-8")
    head, blocks, tail = split_lock(main_text)
    names = [n for n, _ in blocks]
    up, rm = normalize(spec.upgrade), normalize(spec.remove)
    for pkg in (up, rm):
        if pkg not in names:
            raise RuntimeError(f"{spec.name}: {pkg} is not in the generated lock ({names})")
    packages = lock_packages(wdir / "pylock.toml")

    # one package upgraded: the starting state has it one release series lower
    old_block, old_version = _older_entry(uv, wdir, spec.upgrade, packages[up], env)
    old_blocks = [(n, old_block if n == up else b) for n, b in blocks]
    (wdir / "pylock.old.toml").write_text(join_lock(head, old_blocks, tail), encoding="utf-8")
    # one removed: the main lock without one leaf entry
    minus_blocks = [(n, b) for n, b in blocks if n != rm]
    (wdir / "pylock.minus.toml").write_text(join_lock(head, minus_blocks, tail), encoding="utf-8")

    wl = Workload(
        spec=spec,
        dir=wdir,
        lock=wdir / "pylock.toml",
        lock_old=wdir / "pylock.old.toml",
        lock_minus=wdir / "pylock.minus.toml",
        req=wdir / "requirements.txt",
        req_old=wdir / "requirements.old.txt",
        wheels=work / "pip-wheels",
        packages=packages,
        packages_old=lock_packages(wdir / "pylock.old.toml"),
        packages_minus=lock_packages(wdir / "pylock.minus.toml"),
        upgrade_from=old_version,
        upgrade_to=packages[up],
    )
    # sanity: the variants differ from the main lock in exactly one entry
    assert {k for k in wl.packages if wl.packages_old.get(k) != wl.packages[k]} == {up}
    assert set(wl.packages) - set(wl.packages_minus) == {rm}
    log(
        f"[{spec.name}] {len(packages)} packages; upgrade {spec.upgrade} "
        f"{old_version} -> {packages[up]}; remove {spec.remove}"
    )

    wl.req.write_text(lock_to_requirements(wl.lock), encoding="utf-8")
    wl.req_old.write_text(lock_to_requirements(wl.lock_old), encoding="utf-8")
    _download_wheels(wl, pip, python, log)
    return wl


def _download_wheels(wl: Workload, pip: str, python: str, log) -> None:
    """Fill the shared find-links dir with the locked wheels, once.

    pip picks, among the files whose hash is in the requirements (i.e. the locked
    wheels), the best one for ``python``'s tags, which is also what uv picks.
    This step uses the user's normal pip configuration (it needs the index); the
    timed pip runs use ``PIP_CONFIG_FILE=/dev/null`` and ``--no-index``.
    """
    wl.wheels.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("VIRTUAL_ENV", None)
    for req in (wl.req, wl.req_old):
        res = run_proc(
            [
                pip, "--python", python, "download", "-q", "--no-deps",
                "--only-binary", ":all:", "-d", str(wl.wheels), "-r", str(req),
            ],
            env=env,
        )  # fmt: skip
        if not res.ok:
            raise RuntimeError(f"pip download for {wl.name} failed:\n{res.tail()}")
    locked = lock_wheel_names(wl.lock) | lock_wheel_names(wl.lock_old)
    present = {p.name for p in wl.wheels.glob("*.whl")}
    if not locked & present:
        wl.notes.append("no locked wheel found in the pip wheel dir")
    log(f"[{wl.name}] pip wheel dir ready ({len(present)} wheels in it)")


def site_packages(venv: Path) -> Path | None:
    found = sorted(venv.glob("lib/python*/site-packages")) or sorted(venv.glob("Lib/site-packages"))
    return found[0] if found else None


_DIST_INFO = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+)\.dist-info$")


def installed(venv: Path) -> dict[str, str]:
    """normalized name -> version of every ``*.dist-info`` in the venv's site-packages."""
    sp = site_packages(venv)
    if sp is None:
        return {}
    out = {}
    for entry in os.listdir(sp):
        m = _DIST_INFO.match(entry)
        if m:
            out[normalize(m.group("name"))] = m.group("version")
    return out


def check_matches(venv: Path, expected: Mapping[str, str]) -> str | None:
    """None when the venv holds exactly ``expected``; else what differs."""
    have = installed(venv)
    if have == dict(expected):
        return None
    missing = sorted(f"{k}=={v}" for k, v in expected.items() if have.get(k) != v)
    extra = sorted(f"{k}=={v}" for k, v in have.items() if expected.get(k) != v)
    return f"venv does not match the lock: missing {missing or '-'}; unexpected {extra or '-'}"


def tree_stats(venv: Path) -> dict[str, int]:
    """Files (no .pyc, no uv ``_virtualenv.*``), their bytes, and .pyc count in site-packages."""
    sp = site_packages(venv)
    files = size = pyc = 0
    if sp is None:
        return {"files": 0, "bytes": 0, "pyc": 0}
    for root, _dirs, names in os.walk(sp):
        for n in names:
            if n.endswith(".pyc"):
                pyc += 1
                continue
            if root == str(sp) and n.startswith("_virtualenv."):
                continue
            files += 1
            size += os.lstat(os.path.join(root, n)).st_size
    return {"files": files, "bytes": size, "pyc": pyc}


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
