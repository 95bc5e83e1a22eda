"""envmat benchmarks: envmat vs ``uv pip sync`` vs ``pip install --no-deps``, same locks, same run.

    python benchmarks/run.py [--workloads small,medium,namespace] [--runs N]
                             [--out benchmarks/results] [--tools envmat,uv,pip] [--quick]

See benchmarks/README.md for what each case means.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # allow ``python -m`` style and plain script runs alike
    sys.path.insert(0, str(HERE))

import report  # noqa: E402
from timing import ProcResult, run_proc, summary  # noqa: E402
from tools import Envmat, Phase, Pip, Tool, Uv, find_tool, install_envmat  # noqa: E402
from workloads import (  # noqa: E402
    DEFAULT_WORKLOADS,
    WORKLOADS,
    Workload,
    check_matches,
    prepare_workload,
    rmtree,
    tree_stats,
)

# case -> how it is run. Fresh-kind cases make a new venv per run.
CASES: dict[str, dict[str, object]] = {
    "fresh": {"kind": "fresh", "link_mode": "hardlink"},
    # uv's true warm figure (--offline: it revalidates every URL otherwise), against envmat's
    # plain warm sync in the same rounds: envmat never asks the network about a file the cache
    # holds (warm_netless proves it), so it takes no flag; the `fresh` case interleaves both with
    # pip's and uv's default runs, which rewrite hundreds of MB between them
    "fresh_offline": {"kind": "fresh", "link_mode": "hardlink", "offline": ("uv",)},
    "fresh_copy": {"kind": "fresh", "link_mode": "copy"},
    "compile": {"kind": "fresh", "compile_bytecode": True},
    "noop": {"kind": "noop"},
    "upgrade": {"kind": "upgrade"},
    "remove": {"kind": "remove"},
    "cold": {"kind": "fresh", "cold": True},
    "warm_netless": {"kind": "fresh", "link_mode": "hardlink", "netless": True},
}


def runs_for(case: str, runs: int) -> int:
    if case == "noop":
        return max(2, 2 * runs)
    if case == "compile":
        return max(1, min(runs, 3))
    if case == "cold":  # the noisiest case (network, and a disk that has just deleted a tree)
        return max(1, min(runs, 5))
    if case == "warm_netless":
        return 1
    return runs


@dataclass
class CaseResult:
    workload: str
    case: str
    tool: str
    whole: list[float] = field(default_factory=list)
    step: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system seconds, whole figure
    error: str | None = None
    stderr_tail: str = ""
    tree: dict[str, int] | None = None
    skipped: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "workload": self.workload,
            "case": self.case,
            "tool": self.tool,
            "n": len(self.whole),
            "whole": summary(self.whole),
            "step": summary(self.step),
            "whole_runs": [round(x, 6) for x in self.whole],
            "step_runs": [round(x, 6) for x in self.step],
            "cpu": summary(self.cpu),
            "peak_rss_mb": round(max(self.rss_kb) / 1024, 1) if self.rss_kb else None,
            "ok": self.error is None and self.skipped is None and bool(self.whole),
            "error": self.error,
            "stderr_tail": self.stderr_tail,
            "skipped": self.skipped,
            "tree": self.tree,
        }


_URL_HOST = re.compile(r"(?<=://)[^/\s\"'<>]+")


class Redactor:
    """Keeps this machine's absolute paths out of everything we write."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        # longest first, so the most specific placeholder wins
        self.pairs = sorted({(a, b) for a, b in pairs if a and a != "/"}, key=lambda p: -len(p[0]))

    def __call__(self, text: str) -> str:
        for path, placeholder in self.pairs:
            text = text.replace(path, placeholder)
        # no index / registry host names either: keep the URL's path only
        return _URL_HOST.sub("<host>", text)


def real_python(spec: str) -> str:
    """The real interpreter for ``spec`` (a path or a version like 3.11), never a shim."""
    probe = "import sys; print(getattr(sys, '_base_executable', None) or sys.executable)"
    if os.sep in spec:
        candidate = spec
    elif sys.version_info[:2] == tuple(int(x) for x in spec.split(".")[:2]):
        candidate = sys.executable
    else:
        found = shutil.which(f"python{spec}")
        if not found:
            raise SystemExit(f"no python{spec} on PATH; pass --python PATH")
        candidate = found
    out = subprocess.run([candidate, "-c", probe], capture_output=True, text=True, check=True)
    path = out.stdout.strip()
    return os.path.realpath(path) if os.path.exists(path) else path


def netless_prefix() -> list[str] | None:
    """``unshare -n`` (a network namespace with no route out), if this machine allows it."""
    if not shutil.which("unshare"):
        return None
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
                return prefix
        except OSError:
            pass
    return None


class Bench:
    def __init__(self, args: argparse.Namespace, tools: list[Tool], redact: Redactor, log) -> None:
        self.args = args
        self.tools = tools
        self.redact = redact
        self.log = log
        self.rundir = Path(args.work) / "runs"
        self.graveyard = Path(args.work) / "graveyard"
        self._buried = 0
        self.netless = netless_prefix()

    def bury(self, path: Path) -> None:
        """Move a finished run's tree aside; ``clear_graveyard`` deletes them all at the end.

        Deleting between runs skews every later run that creates files: ext4 without a
        journal (these VMs) skips each inode freed in the last minute (five while its inode
        table block is dirty) on every create, one lookup each, so a tree made right after
        another was deleted took up to 5x the time (uv cold, medium: 1.06 s vs 0.38 s).
        """
        if not os.path.lexists(path):
            return
        self.graveyard.mkdir(parents=True, exist_ok=True)
        self._buried += 1
        os.replace(path, self.graveyard / f"{self._buried}-{path.name}")

    def set_aside_old_graveyard(self) -> None:
        """An interrupted run's trees wait for this run's end too: deleting them now would slow
        every case that follows (see ``bury``)."""
        if os.path.lexists(self.graveyard):
            os.replace(self.graveyard, self.graveyard.with_name(f"graveyard-old-{os.getpid()}"))

    def clear_graveyard(self) -> None:
        rmtree(self.graveyard)
        for old in self.graveyard.parent.glob("graveyard-old-*"):
            rmtree(old)

    # -- one process list -------------------------------------------------------------

    def _run_phases(
        self, phases: list[Phase], netless: bool = False
    ) -> tuple[list[ProcResult], ProcResult | None]:
        """Run phases in order; return (results, failing result or None)."""
        results = []
        for ph in phases:
            argv = ph.argv
            if netless and ph.name != "venv" and self.netless:
                argv = [*self.netless, *argv]
            res = run_proc(argv, env=ph.env, timeout=self.args.timeout)
            results.append(res)
            if not res.ok:
                return results, res
        return results, None

    def _fail(self, cr: CaseResult, what: str, res: ProcResult | None, msg: str = "") -> None:
        if res is not None:
            cmd = " ".join(shlex.quote(a) for a in res.argv)
            msg = msg or f"{what}: exit {res.returncode}: {cmd}"
            cr.stderr_tail = self.redact(res.tail(self.args.tail_lines))
        cr.error = self.redact(msg or what)
        self.log(f"    {cr.tool:6s} FAILED ({cr.error.splitlines()[0][:160]})")
        if cr.stderr_tail:
            for line in cr.stderr_tail.splitlines()[-4:]:
                self.log(f"           | {line[:160]}")

    # -- one case ---------------------------------------------------------------------

    def run_case(self, wl: Workload, case: str) -> list[CaseResult]:
        spec = CASES[case]
        kind = spec["kind"]
        # (ab.py asks for exactly --runs rounds: it compares versions, not a full table)
        n = (
            self.args.runs
            if getattr(self.args, "exact_runs", False)
            else runs_for(case, self.args.runs)
        )
        warmup = 0 if case == "warm_netless" else self.args.warmup
        results: dict[str, CaseResult] = {}
        active: list[Tool] = []
        venvs: dict[str, Path] = {}
        casedir = self.rundir / wl.name / case
        self.bury(casedir)
        casedir.mkdir(parents=True, exist_ok=True)
        for tool in self.tools:
            if case not in tool.cases:
                continue
            cr = results.setdefault(tool.name, CaseResult(wl.name, case, tool.name))
            if spec.get("netless") and not self.netless:
                cr.skipped = "unshare -n is not available here"
                continue
            if kind in ("noop", "upgrade", "remove"):
                venv = casedir / f"{tool.name}-venv"
                start = "old" if kind == "upgrade" else "main"
                _, bad = self._run_phases(tool.fresh(wl, venv, start))
                if bad is not None:
                    self._fail(cr, f"setup (sync to the {start} lock)", bad)
                    continue
                venvs[tool.name] = venv
            active.append(tool)

        for i in range(warmup + n):
            counted = i >= warmup
            last = i == warmup + n - 1
            # each round starts with the next tool: a tool that always ran right after pip's
            # (which writes ~570 MB on large) found the page cache full of pip's pages, its own
            # cache's inodes evicted, and paid for it (envmat's warm large: 0.62 s with 0.79 s
            # of CPU after pip, 0.35 s with 0.50 s in the same batch's --offline case)
            k = i % len(active) if active else 0
            for tool in active[k:] + active[:k]:
                cr = results[tool.name]
                ok = self._one_run(
                    wl, case, tool, cr, casedir, venvs.get(tool.name), i, counted, last
                )
                if not ok:
                    active.remove(tool)
                os.sync()
        self.bury(casedir)
        return list(results.values())

    def _one_run(self, wl, case, tool, cr, casedir, venv, i, counted, last) -> bool:
        spec = CASES[case]
        kind = spec["kind"]
        cold_cache: Path | None = None
        expected = "main"
        if kind == "fresh":
            venv = casedir / f"{tool.name}-{i}"
            if spec.get("cold"):
                cold_cache = Path(tempfile.mkdtemp(prefix=f"cold-{tool.name}-", dir=casedir))
            phases = tool.fresh(
                wl,
                venv,
                "main",
                link_mode=spec.get("link_mode"),  # type: ignore[arg-type]
                offline=tool.name in spec.get("offline", ()),  # type: ignore[operator]
                compile_bytecode=bool(spec.get("compile_bytecode")),
                cache=cold_cache,
            )
        else:
            assert venv is not None
            if kind == "upgrade":
                if i > 0:  # back to the old release, untimed
                    _, bad = self._run_phases(tool.sync(wl, venv, "old"))
                    if bad is not None:
                        self._fail(cr, "re-setup (sync to the old lock)", bad)
                        return False
                phases = tool.sync(wl, venv, "main")
            elif kind == "remove":
                if i > 0:  # back to the full lock, untimed
                    _, bad = self._run_phases(tool.sync(wl, venv, "main"))
                    if bad is not None:
                        self._fail(cr, "re-setup (sync to the main lock)", bad)
                        return False
                phases = tool.remove(wl, venv)
                expected = "minus"
            else:  # noop
                phases = tool.sync(wl, venv, "main")
        try:
            res, bad = self._run_phases(phases, netless=bool(spec.get("netless")))
            if bad is not None:
                self._fail(cr, "run" if counted else "warm-up run", bad)
                return False
            mismatch = check_matches(venv, wl.expected(expected))
            if mismatch:
                self._fail(cr, "wrong result", None, mismatch)
                return False
            if counted:
                cr.whole.append(sum(r.seconds for r in res))
                steps = [r.seconds for ph, r in zip(phases, res) if ph.name == "step"]
                if steps:
                    cr.step.append(sum(steps))
                cr.rss_kb.append(max(r.maxrss_kb for r in res))
                cr.cpu.append(sum(r.cpu_seconds for r in res))
            if last:
                cr.tree = tree_stats(venv)
            return True
        finally:
            if kind == "fresh":
                self.bury(venv)
            if cold_cache is not None:
                self.bury(cold_cache)

    def run_workload(self, wl: Workload) -> list[CaseResult]:
        out: list[CaseResult] = []
        for case in self.args.cases:
            t0 = time.perf_counter()
            got = self.run_case(wl, case)
            out.extend(got)
            parts = []
            for cr in got:
                if cr.whole:
                    s = summary(cr.whole)
                    assert s is not None
                    parts.append(f"{cr.tool} {s['median']:.3f}s")
                else:
                    parts.append(f"{cr.tool} {'skipped' if cr.skipped else 'FAILED'}")
            self.log(
                f"  [{wl.name}] {case:13s} {', '.join(parts)}  ({time.perf_counter() - t0:.0f}s)"
            )
        return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--workloads",
        default=",".join(DEFAULT_WORKLOADS),
        help=f"comma list of {', '.join(WORKLOADS)} or 'all' (default: %(default)s)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=5,
        help="counted runs per case after the warm-up (noop: 2x, compile: at most 3, cold: at most 5)",
    )
    p.add_argument("--warmup", type=int, default=1, help="uncounted runs before the counted ones")
    p.add_argument("--tools", default="envmat,uv,pip", help="comma list of envmat, uv, pip")
    p.add_argument("--cases", default=",".join(CASES), help="comma list of cases (default: all)")
    p.add_argument(
        "--out",
        default=None,
        help="results dir (default: benchmarks/results; --quick: benchmarks/scratch/quick-results)",
    )
    p.add_argument(
        "--work", default=str(HERE / "scratch"), help="scratch dir for locks, caches, venvs"
    )
    p.add_argument(
        "--python", default="3.11", help="interpreter for the venvs: a version or a path"
    )
    p.add_argument(
        "--envmat",
        default=None,
        help="envmat command (default: a regular install of this checkout in <work>/envmat-venv)",
    )
    p.add_argument(
        "--envmat-stub",
        action="store_true",
        help="use benchmarks/stub_envmat.py (uv behind envmat's CLI) to test the harness",
    )
    p.add_argument(
        "--uv", default=None, help="uv binary (default: next to this python, or on PATH)"
    )
    p.add_argument(
        "--pip", default=None, help="pip script (default: next to this python, or on PATH)"
    )
    p.add_argument("--quick", action="store_true", help="smoke test: small workload, 2 runs")
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds before a process is killed"
    )
    p.add_argument("--tail-lines", type=int, default=12, help="stderr lines kept for a failure")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument(
        "--keep-run-trees",
        action="store_true",
        help="leave this run's trees for the next run to delete at its end (a run started "
        "right after a big delete is slowed: see Bench.bury)",
    )
    p.add_argument(
        "--from-json",
        default=None,
        metavar="RESULTS_JSON",
        help="only re-render the tables and the plot from an earlier results.json into --out",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.workloads = "small"
        args.runs = 2
        if args.out is None:
            args.out = str(HERE / "scratch" / "quick-results")
    if args.out is None:
        args.out = str(HERE / "results")
    args.workloads = (
        list(WORKLOADS)
        if args.workloads == "all"
        else [w.strip() for w in args.workloads.split(",") if w.strip()]
    )
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for w in args.workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r}")
    for t in args.tools:
        if t not in ("envmat", "uv", "pip"):
            p.error(f"unknown tool {t!r}")
    for c in args.cases:
        if c not in CASES:
            p.error(f"unknown case {c!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log: Callable[[str], None] = lambda msg: print(msg, flush=True)  # noqa: E731
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        data["ratios"] = report.ratios(data)
        print(report.render(data))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.md").write_text(report.render(data), encoding="utf-8")
        if not args.no_plot:
            report.plot(data, out / "results.png")
        return 0
    work = Path(args.work).resolve()
    out = Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    args.work = str(work)

    python = real_python(args.python)
    uv = args.uv or find_tool("uv")
    pip = args.pip or find_tool("pip")
    if not uv or not pip:
        raise SystemExit(
            "uv and pip are needed (the workloads are made with uv, pip's wheel dir with pip)"
        )
    if args.envmat_stub:
        envmat_cmd = [sys.executable, str(HERE / "stub_envmat.py")]
    elif args.envmat:
        envmat_cmd = shlex.split(args.envmat)
    elif "envmat" in args.tools:
        envmat_cmd = install_envmat(work, python, uv)
    else:
        envmat_cmd = ["envmat"]

    caches = work / "caches"
    tools: list[Tool] = []
    for name in args.tools:
        if name == "envmat":
            tools.append(Envmat(python, caches / "envmat", envmat_cmd))
        elif name == "uv":
            tools.append(Uv(python, caches / "uv", uv))
        else:
            tools.append(Pip(python, caches / "pip", pip, uv))

    home = str(Path.home())
    redact = Redactor([
        (str(work), "<work>"), (str(HERE.parent), "<repo>"), (str(out), "<out>"),
        (tempfile.gettempdir(), "<tmp>"), (sys.prefix, "<tools-venv>"),
        (sys.base_prefix, "<python-prefix>"), (os.path.dirname(os.path.dirname(python)), "<python-prefix>"),
        (home, "~"),
    ])  # fmt: skip

    versions = {}
    for tool in tools:
        res = run_proc(tool.version(), env=dict(os.environ))
        first = (
            (res.stdout.strip() or res.tail(1)).splitlines()[0]
            if (res.stdout or res.stderr)
            else ""
        )
        # "pip 26.3 from ... (python 3.11)" / "uv 0.13.9 (x86_64-...)" -> "pip 26.3" / "uv 0.13.9"
        first = first.split(" from ")[0].split(" (")[0].strip()
        versions[tool.name] = redact(first if res.ok else f"{first[:60]} (--version failed)")
        if tool.name == "envmat" and args.envmat_stub:
            versions[tool.name] += " (STUB: uv behind envmat's CLI)"
    py_ver = subprocess.run([python, "-c", "import platform;print(platform.python_version())"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    meta = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpus",
        "platform": platform.platform(),
        "python": py_ver,
        "tools": versions,
        "runs": args.runs,
        "warmup": args.warmup,
        "workloads": args.workloads,
        "cases": args.cases,
        "argv": redact(" ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))),
    }
    log(
        f"envmat benchmarks: python {py_ver}; "
        + "; ".join(f"{k}: {v}" for k, v in versions.items())
    )

    bench = Bench(args, tools, redact, log)
    if "warm_netless" in args.cases and bench.netless is None:
        log("note: unshare -n is not available; the warm_netless check is skipped")
    prep_env = dict(os.environ)
    prep_env.pop("VIRTUAL_ENV", None)
    all_results: list[CaseResult] = []
    workload_info = {}
    t_start = time.perf_counter()
    bench.set_aside_old_graveyard()
    try:
        for name in args.workloads:
            t0 = time.perf_counter()
            try:
                wl = prepare_workload(WORKLOADS[name], work, uv, pip, python, prep_env, log)
            except Exception as exc:  # a workload that cannot be generated must not stop the others
                log(f"[{name}] could not be prepared: {redact(str(exc))}")
                workload_info[name] = {"error": redact(str(exc))}
                continue
            workload_info[name] = {
                "requirements": list(wl.spec.requirements),
                "packages": len(wl.packages),
                "upgrade": f"{wl.spec.upgrade} {wl.upgrade_from} -> {wl.upgrade_to}",
                "remove": wl.spec.remove,
                "notes": wl.notes,
            }
            log(f"[{name}] prepared in {time.perf_counter() - t0:.1f}s")
            all_results.extend(bench.run_workload(wl))
    finally:
        if args.keep_run_trees:
            log(f"the run trees are left in {bench.graveyard} for the next run to delete")
        else:
            log("removing the run trees (kept until now: see Bench.bury)")
            bench.clear_graveyard()
        for tool in tools:
            if isinstance(tool, Uv):
                # uv's default warm sync revalidates every URL and may download a wheel again
                # (a new cache entry each time): unpruned, its warm cache grew to 54 GB over a
                # few dozen runs and filled the disk mid-run
                subprocess.run(
                    [uv, "cache", "prune", "-q"], env=tool.env(), capture_output=True, check=False
                )
        log(
            "  (creating files right after a big delete is slower on some filesystems: before"
            " timing anything else, wait a few minutes or, as root, `sync; echo 3 >"
            " /proc/sys/vm/drop_caches`)"
        )
    meta["seconds"] = round(time.perf_counter() - t_start, 1)

    data = {
        "meta": meta,
        "workloads": workload_info,
        "results": [r.to_json() for r in all_results],
    }
    data["ratios"] = report.ratios(data)
    text = report.render(data)
    print()
    print(text)
    (out / "results.json").write_text(report.dumps(data), encoding="utf-8")
    (out / "results.md").write_text(text, encoding="utf-8")
    written = [out / "results.json", out / "results.md"]
    if not args.no_plot:
        png = report.plot(data, out / "results.png")
        if png:
            written.append(png)
    log("wrote " + ", ".join(redact(str(p)) for p in written) + f" in {meta['seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
