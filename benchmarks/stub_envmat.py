"""A stand-in for ``envmat sync`` that drives uv, to test the harness before envmat's CLI exists.

    python benchmarks/stub_envmat.py sync LOCK --venv V [--python P] [--cache-dir D]
        [--link-mode auto|hardlink|copy] [--compile-bytecode] [--offline] [-q]

Set ``ENVMAT_STUB_FAIL_ON=<substring>`` to make it fail (exit 1, a message on stderr)
whenever its command line contains that substring, e.g. ``copy`` or ``--compile``:
this exercises the harness's failure reporting. Its numbers are uv's plus one
Python start, never envmat's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path


def main() -> int:
    fail_on = os.environ.get("ENVMAT_STUB_FAIL_ON")
    if fail_on and fail_on in " ".join(sys.argv[1:]):
        print(
            f"envmat-stub: error: injected failure ({fail_on!r} in the command line)",
            file=sys.stderr,
        )
        return 1
    p = argparse.ArgumentParser(prog="envmat-stub")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sync")
    s.add_argument("lock")
    s.add_argument("--venv", required=True)
    s.add_argument("--python")
    s.add_argument("--cache-dir", default=os.environ.get("ENVMAT_CACHE_DIR"))
    s.add_argument("--link-mode", choices=("auto", "hardlink", "copy"), default="auto")
    s.add_argument("--compile-bytecode", action="store_true")
    s.add_argument("--offline", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--version", action="version", version="envmat-stub 0")
    a = p.parse_args()

    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv") or "uv"
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    if a.cache_dir:
        env["UV_CACHE_DIR"] = a.cache_dir
    venv = Path(a.venv)
    if not (venv / "pyvenv.cfg").exists():
        cmd = [uv, "venv", "-q", str(venv)] + (["--python", a.python] if a.python else [])
        if subprocess.run(cmd, env=env).returncode:
            return 1
    cmd = [uv, "pip", "sync", "-q", "--python", str(venv / "bin" / "python"), a.lock]
    if a.link_mode != "auto":
        cmd += ["--link-mode", a.link_mode]
    if a.offline:
        cmd.append("--offline")
    if a.compile_bytecode:
        cmd.append("--compile-bytecode")
    return subprocess.run(cmd, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
