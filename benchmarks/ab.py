"""Versions of envmat against each other (and uv), interleaved run by run, on one workload.

    python benchmarks/ab.py --rev HEAD~1 --rev HEAD [--rev worktree] [--uv] \\
        [--workload medium] [--cases cold] [--runs 10]

The full harness (run.py) compares envmat with uv and pip; this asks whether a change to envmat
made it faster. Between batches this VM's speed moves by a third or more (benchmarks/README.md),
so two versions are only comparable when measured in the same rounds: each round runs every
variant once, starting with the next one, exactly as run.py interleaves the tools.

Each ``--rev`` (a git revision, or ``worktree`` for the files as they are) is exported into
``<work>/revs/<name>`` and run as ``python -m envmat`` with that directory first on the path, by
the interpreter of the regular install run.py makes (``<work>/envmat-venv``: run run.py once
first); each variant keeps a warm cache of its own. The workload is prepared as run.py does.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from run import CASES, Bench, Redactor, real_python  # noqa: E402
from tools import Envmat, Tool, Uv, find_tool  # noqa: E402
from workloads import WORKLOADS, prepare_workload  # noqa: E402


def export(rev: str, dest: Path) -> Path:
    """``envmat/`` of ``rev`` (or of the work tree) in ``dest``, a fresh copy each time."""
    repo = HERE.parent
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    if rev == "worktree":
        shutil.copytree(
            repo / "envmat", dest / "envmat", ignore=shutil.ignore_patterns("__pycache__")
        )
        return dest
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", rev, "envmat"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        try:
            tar.extractall(dest, filter="data")  # (our own repository's files)
        except TypeError:  # a Python without extraction filters
            tar.extractall(dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rev", action="append", required=True, help="git revision or 'worktree'")
    p.add_argument("--uv", action="store_true", help="uv takes part too (the yardstick)")
    p.add_argument("--workload", default="medium", choices=sorted(WORKLOADS))
    p.add_argument("--cases", default="cold", help="comma list of run.py's cases")
    p.add_argument("--runs", type=int, default=10, help="counted rounds (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--work", default=str(HERE / "scratch"))
    p.add_argument("--python", default="3.11")
    p.add_argument("--timeout", type=float, default=1800.0)
    args = p.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in args.cases:
        if c not in CASES:
            p.error(f"unknown case {c!r}")
    args.tail_lines = 12
    args.exact_runs = True
    work = Path(args.work).resolve()
    args.work = str(work)
    venv_python = work / "envmat-venv" / "bin" / "python"
    if not venv_python.exists():
        raise SystemExit(f"{venv_python} is missing: run benchmarks/run.py once first")
    python = real_python(args.python)

    tools: list[Tool] = []
    for rev in args.rev:
        name = f"envmat@{rev}"
        src = export(rev, work / "revs" / rev.replace("/", "_"))
        command = ["env", f"PYTHONPATH={src}", str(venv_python), "-m", "envmat"]
        tool = Envmat(python, work / "caches" / f"ab-{rev.replace('/', '_')}", command)
        tool.name = name
        tools.append(tool)
    uv, pip = find_tool("uv"), find_tool("pip")
    if not uv or not pip:
        raise SystemExit("uv and pip are needed (the workloads are made as run.py makes them)")
    if args.uv:
        tools.append(Uv(python, work / "caches" / "uv", uv))

    redact = Redactor([(str(work), "<work>"), (str(HERE.parent), "<repo>"),
                       (tempfile.gettempdir(), "<tmp>"), (str(Path.home()), "~")])  # fmt: skip
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    bench = Bench(args, tools, redact, log)
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    wl = prepare_workload(WORKLOADS[args.workload], work, uv, pip, python, env, log)
    bench.set_aside_old_graveyard()
    try:
        for case in args.cases:
            results = bench.run_case(wl, case)
            first = None
            print(f"\n{wl.name} / {case}: {args.runs} interleaved rounds (whole seconds; CPU med)")
            for cr in results:
                if not cr.whole:
                    print(f"  {cr.tool:28s} FAILED: {cr.error or cr.skipped}")
                    continue
                med = statistics.median(cr.whole)
                first = first or med
                print(
                    f"  {cr.tool:28s} med {med:.3f}  min {min(cr.whole):.3f}  "
                    f"max {max(cr.whole):.3f}  CPU {statistics.median(cr.cpu):.3f}  "
                    f"x{med / first:.2f}"
                )
    finally:
        bench.clear_graveyard()
    return 0


if __name__ == "__main__":
    sys.exit(main())
