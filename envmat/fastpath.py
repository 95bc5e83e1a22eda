"""The no-op fast path: decide "nothing to do" from one small state file and one directory scan.

Stdlib only, imported before anything heavy (DESIGN.md §5). The fingerprint covers everything
a sync's outcome depends on: the lock's bytes (and pyproject.toml beside a uv.lock), the
selection options, the venv's interpreter and envmat's version. A sync writes it into
``.envmat/state.json`` with the dist-info directories it left; when both still match and no
journal is pending, the venv already matches the lock.
"""

from __future__ import annotations

import os

from . import __version__
from .lite import loads, sha256

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and collections.abc stay off the no-op path
    from collections.abc import Mapping
    from typing import Any


STATE_FILE = ".envmat/state.json"
JOURNALS = (".envmat/journal.json", ".envmat/journal.committed")


def lock_file(venv: str) -> str:
    """The venv lock: a hidden file beside the venv (venvlock.py takes it)."""
    return os.path.join(os.path.dirname(venv), f".{os.path.basename(venv)}.envmat.lock")


def creating_marker(venv: str) -> str:
    """Stands beside a venv while a run makes it and syncs it the first time (api.py)."""
    return os.path.join(os.path.dirname(venv), f".{os.path.basename(venv)}.envmat-creating")


def fingerprint(lock: str, venv: str, options: Mapping[str, Any]) -> str | None:
    h = sha256(f"envmat {__version__}\0".encode())
    try:
        with open(lock, "rb") as f:
            h.update(f.read())
        if os.path.basename(lock) == "uv.lock":
            pyproject = os.path.join(os.path.dirname(os.path.abspath(lock)), "pyproject.toml")
            if os.path.exists(pyproject):
                with open(pyproject, "rb") as f:
                    h.update(b"\0pyproject\0" + f.read())
        python = os.path.join(venv, "bin", "python")
        st = os.stat(python)
        h.update(f"\0{os.path.realpath(python)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    except OSError:
        return None
    h.update(canonical(options).encode())
    return str(h.hexdigest())


def canonical(options: Mapping[str, Any]) -> str:
    """One text for the same options (their values are booleans and lists of names)."""
    return repr(
        sorted((k, list(v) if isinstance(v, (list, tuple)) else v) for k, v in options.items())
    )


def dist_infos(venv: str, site_dirs: list[str]) -> list[str] | None:
    names: list[str] = []
    for site in site_dirs:
        try:
            with os.scandir(os.path.join(venv, site)) as it:
                names += [f"{site}/{e.name}" for e in it if e.name.endswith(".dist-info")]
        except OSError:
            return None
    return sorted(names)


def try_noop(lock: str, venv: str, options: Mapping[str, Any]) -> int | None:
    """The number of distributions kept when the venv provably matches, else None."""
    import fcntl

    venv = os.path.abspath(venv)
    try:
        with open(os.path.join(venv, STATE_FILE), "rb") as f:
            state = loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or any(os.path.lexists(os.path.join(venv, j)) for j in JOURNALS):
        return None
    fp = fingerprint(lock, venv, options)
    if fp is None or state.get("fingerprint") != fp:
        return None
    try:
        fd = os.open(lock_file(venv), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        try:
            # the same flock filelock takes; busy means a sync is running: take the slow path
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None
        site_dirs = state.get("site_dirs")
        recorded = state.get("dist_infos")
        if not isinstance(site_dirs, list) or not isinstance(recorded, list):
            return None
        if dist_infos(venv, site_dirs) != sorted(recorded):
            return None
        if any(os.path.lexists(os.path.join(venv, j)) for j in JOURNALS):
            return None
        if os.path.lexists(creating_marker(venv)):
            return None  # its first sync never finished: the full path removes and remakes it
        return len(state.get("dists", {}))
    finally:
        os.close(fd)


def noop_options(
    *,
    extras: Any = (),
    all_extras: bool = False,
    groups: Any = (),
    all_groups: bool = False,
    no_default_groups: bool = False,
    only_groups: Any = (),
    no_dev: bool = False,
    no_install_project: bool = False,
    inexact: bool = False,
    compile_bytecode: bool = False,
    strict: bool = False,
) -> dict[str, Any]:
    """The options a sync's outcome depends on, in the one form both paths hash."""
    return {
        "extras": sorted(extras),
        "all_extras": all_extras,
        "groups": sorted(groups),
        "all_groups": all_groups,
        "no_default_groups": no_default_groups,
        "only_groups": sorted(only_groups),
        "no_dev": no_dev,
        "no_install_project": no_install_project,
        "inexact": inexact,
        "compile_bytecode": compile_bytecode,
        "strict": strict,
    }


def jobs_problem(n: object) -> str | None:
    """Why ``n`` cannot be ``--jobs`` (a whole number, 1 or more), or None."""
    if isinstance(n, bool) or not isinstance(n, int):
        return f"{n!r} is not a whole number"
    return None if n >= 1 else f"{n} is not 1 or more"


def seconds_problem(x: object, *, zero_ok: bool, unit: str = "seconds") -> str | None:
    """Why ``x`` cannot be a duration: a finite number more than 0 (``zero_ok``: 0 or more)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return f"{x!r} is not a number of {unit}"
    if (x >= 0 if zero_ok else x > 0) and x < float("inf"):  # (NaN fails both)
        return None
    return f"{x:g} is not a number of {unit}, {'0 or more' if zero_ok else 'greater than 0'}"


def parse_jobs(text: str) -> int:
    """``--jobs``: a whole number, 1 or more (raises ValueError saying what is wrong)."""
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    _raise_if(jobs_problem(n))
    return n


def parse_timeout(text: str) -> float:
    """``--timeout``: seconds, more than 0 (sockets refuse anything else)."""
    x = _number(text, "seconds")
    _raise_if(seconds_problem(x, zero_ok=False))
    return x


def parse_wait(text: str) -> float:
    """``--lock-timeout``: seconds, 0 or more (0: give up at once when the venv is held)."""
    x = _number(text, "seconds")
    _raise_if(seconds_problem(x, zero_ok=True))
    return x


def parse_days(text: str) -> float:
    """``cache prune --older-than``: days, 0 or more."""
    x = _number(text, "days")
    _raise_if(seconds_problem(x, zero_ok=True, unit="days"))
    return x


def _number(text: str, unit: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of {unit}") from None


def _raise_if(problem: str | None) -> None:
    if problem:
        raise ValueError(problem)


#: options whose values the fast parse checks as the full parser does (cli.py)
CHECKED = {"--jobs": parse_jobs, "--timeout": parse_timeout, "--lock-timeout": parse_wait}

# Options a no-op answer does not depend on (they only say how to do work) -> takes a value?
_NEUTRAL = {
    "--venv": True,
    "--cache-dir": True,
    "--link-mode": True,
    "--jobs": True,
    "--timeout": True,
    "--lock-timeout": True,
    "--offline": False,
    "-q": False,
    "--quiet": False,
    "-v": False,
    "--verbose": False,
}
# Options that are part of the fingerprint: name -> (key in noop_options, takes a value?)
_SELECTING = {
    "--extra": ("extras", True),
    "--group": ("groups", True),
    "--only-group": ("only_groups", True),
    "--all-extras": ("all_extras", False),
    "--all-groups": ("all_groups", False),
    "--no-default-groups": ("no_default_groups", False),
    "--no-dev": ("no_dev", False),
    "--no-install-project": ("no_install_project", False),
    "--inexact": ("inexact", False),
    "--strict": ("strict", False),
    "--compile-bytecode": ("compile_bytecode", False),
}


def takes_value(name: str) -> bool:
    """Whether ``name``, an option the fast parse knows, takes a value."""
    return name == "--python" or (_NEUTRAL[name] if name in _NEUTRAL else _SELECTING[name][1])


def parse_sync_argv(
    argv: list[str],
) -> tuple[str, str, dict[str, Any], bool, dict[str, str]] | None:
    """(lock, venv, options, quiet, the other options' values) for a plain ``sync``; None for
    anything argparse must see."""
    if not argv or argv[0] != "sync":
        return None
    lock = None
    venv = ".venv"
    quiet = False
    opts: dict[str, Any] = {"extras": [], "groups": [], "only_groups": []}
    given: dict[str, str] = {}
    args = argv[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if not arg.startswith("-"):
            if lock is not None:
                return None
            lock = arg
        elif name in _NEUTRAL or name in _SELECTING or name == "--python":
            takes = takes_value(name)
            if takes and not eq:
                if i + 1 >= len(args):
                    return None
                i += 1
                value = args[i]
                if value.startswith("-"):
                    return None  # argparse takes it for an option (and says what is missing)
            elif eq and not takes:
                return None
            if takes:
                given[name] = value
            if name in CHECKED:
                try:
                    CHECKED[name](value)
                except ValueError:
                    return None  # argparse says what is wrong with it
            if name == "--venv":
                venv = value
            elif name in ("-q", "--quiet"):
                quiet = True
            elif name in _SELECTING:
                key = _SELECTING[name][0]
                if takes:
                    opts[key].append(value)
                else:
                    opts[key] = True
        else:
            return None  # --json, --dry-run, -h, ...: the full path
        i += 1
    if lock is None:
        return None
    return lock, venv, noop_options(**opts), quiet, given


def read_pyvenv_cfg(venv: str) -> dict[str, str]:
    """A venv's pyvenv.cfg as lowercase keys and values; empty when it cannot be read."""
    cfg: dict[str, str] = {}
    try:
        with open(os.path.join(venv, "pyvenv.cfg"), encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition("=")
                if sep:
                    cfg[key.strip().lower()] = value.strip()
    except (OSError, UnicodeDecodeError):
        pass
    return cfg


def python_matches(venv: str, spec: str) -> bool:
    """Whether ``--python spec`` names the venv's own interpreter, decided without running one:
    the same executable (a path), or the version its pyvenv.cfg records (digits and dots, as
    ``venv.check_python_matches`` compares them). Anything else is for the full path to decide."""
    if os.sep in spec:
        here = os.path.join(venv, "bin", "python")
        return os.path.exists(spec) and os.path.realpath(spec) == os.path.realpath(here)
    if not spec or not spec.replace(".", "").isdigit():
        return False
    cfg = read_pyvenv_cfg(venv)
    have = cfg.get("version_info") or cfg.get("version") or ""
    return have == spec or have.startswith(spec + ".")


def main_fast(argv: list[str], start: float) -> int | None:
    """Exit status when ``argv`` is a sync the venv already matches, or a new venv that
    replays a remembered sync (replay.py); None to go the full way."""
    parsed = parse_sync_argv(argv)
    if parsed is None:
        return None
    lock, venv, options, quiet, given = parsed
    if not os.path.lexists(venv):
        from .replay import main_replay

        return main_replay(lock, venv, options, quiet, given, start)
    if "--python" in given and not python_matches(venv, given["--python"]):
        return None  # the full path checks what the venv has, and says what differs
    kept = try_noop(lock, venv, options)
    if kept is None:
        return None
    if not quiet:
        import sys
        import time

        elapsed = time.perf_counter() - start
        print(
            f"Nothing to do: {kept} package(s) already match the lock ({elapsed:.2f}s)",
            file=sys.stderr,
        )
    return 0
