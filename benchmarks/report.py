"""Tables, ratios against uv and pip (with the anchors' targets), JSON and the PNG plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# (label, envmat case, uv case, pip case, goal, first milestone); None = no target / not run
RATIO_ROWS: list[tuple[str, str, str | None, str | None, float | None, float | None]] = [
    ("no-op (venv already matches)", "noop", "noop", "noop", 1.5, 3.0),
    # (same rounds: envmat's plain warm sync beside uv --offline, run.py's fresh_offline)
    (
        "fresh + sync, hardlink, warm (vs uv --offline)",
        "fresh_offline",
        "fresh_offline",
        "fresh",
        1.0,
        1.5,
    ),
    ("fresh + sync, hardlink, warm (vs uv default)", "fresh", "fresh", "fresh", None, None),
    ("fresh + sync, copy mode", "fresh_copy", "fresh_copy", "fresh", 1.0, 1.5),
    ("cold cache", "cold", "cold", None, 1.0, 1.3),
    ("--compile-bytecode", "compile", "compile", "compile", 1.0, 1.3),
    ("one package upgraded", "upgrade", "upgrade", "upgrade", None, None),
    ("one package removed", "remove", "remove", "remove", None, None),
]
#: peak RSS targets (MB) for envmat on the large workload
RSS_GOAL_MB, RSS_MILESTONE_MB = 100.0, 200.0

TOOL_ORDER = ("envmat", "uv", "pip")
CASE_ORDER = (
    "fresh", "fresh_offline", "fresh_copy", "compile", "cold",
    "noop", "upgrade", "remove", "warm_netless",
)  # fmt: skip


def _index(data: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["workload"], r["case"], r["tool"]): r for r in data["results"]}


def _median(r: dict[str, Any] | None) -> float | None:
    if r and r.get("ok") and r.get("whole"):
        return float(r["whole"]["median"])
    return None


def _verdict(ratio: float | None, goal: float | None, milestone: float | None) -> str:
    if ratio is None or goal is None or milestone is None:
        return ""
    if ratio <= goal:
        return "goal met"
    if ratio <= milestone:
        return "milestone met"
    return "MISSED"


def ratios(data: dict[str, Any]) -> list[dict[str, Any]]:
    idx = _index(data)
    rows = []
    workloads = [
        w for w in data["meta"]["workloads"] if "error" not in data["workloads"].get(w, {})
    ]
    for wl in workloads:
        for label, e_case, u_case, p_case, goal, milestone in RATIO_ROWS:
            env = idx.get((wl, e_case, "envmat"))
            e = _median(env)
            u = _median(idx.get((wl, u_case, "uv"))) if u_case else None
            p = _median(idx.get((wl, p_case, "pip"))) if p_case else None
            r_uv = e / u if e is not None and u else None
            r_pip = e / p if e is not None and p else None
            rows.append({
                "workload": wl, "case": label, "envmat_case": e_case,
                "envmat": e, "uv": u, "pip": p,
                "envmat_over_uv": r_uv, "envmat_over_pip": r_pip,
                "goal": goal, "milestone": milestone,
                "verdict": _verdict(r_uv, goal, milestone),
                "envmat_error": (env or {}).get("error"),
            })  # fmt: skip
        peaks = [
            r["peak_rss_mb"]
            for r in data["results"]
            if r["workload"] == wl and r["tool"] == "envmat" and r.get("peak_rss_mb") is not None
        ]
        peak = max(peaks) if peaks else None
        is_large = wl == "large"
        rows.append({
            "workload": wl, "case": "peak RSS, worst case (MB)", "envmat_case": "*",
            "envmat": peak, "uv": None, "pip": None,
            "envmat_over_uv": None, "envmat_over_pip": None,
            "goal": RSS_GOAL_MB if is_large else None,
            "milestone": RSS_MILESTONE_MB if is_large else None,
            "verdict": _verdict(peak, RSS_GOAL_MB, RSS_MILESTONE_MB) if is_large else "",
            "envmat_error": None,
        })  # fmt: skip
    return rows


def _f(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render(data: dict[str, Any]) -> str:
    meta = data["meta"]
    out = [
        "# envmat benchmarks",
        "",
        f"{meta['date']} · {meta['machine']} · Python {meta['python']} · "
        + " · ".join(f"{k}: {v}" for k, v in meta["tools"].items()),
        f"runs per case: {meta['runs']} (noop 2x, compile ≤3, cold ≤5) after {meta['warmup']} warm-up; "
        f"seconds, whole process(es); step = the installer alone (uv/pip: after `uv venv`); "
        f"CPU = user + system seconds of those processes (median)",
        "",
    ]
    idx = _index(data)
    for wl in meta["workloads"]:
        info = data["workloads"].get(wl, {})
        out.append(f"## {wl}")
        out.append("")
        if "error" in info:
            out += [f"could not be prepared: {info['error']}", ""]
            continue
        out.append(
            f"{info['packages']} packages ({' '.join(info['requirements'])}); "
            f"upgrade: {info['upgrade']}; remove: {info['remove']}"
        )
        out.append("")
        rows = []
        failures = []
        for case in CASE_ORDER:
            for tool in TOOL_ORDER:
                r = idx.get((wl, case, tool))
                if r is None:
                    continue
                w, s = r.get("whole"), r.get("step")
                tree = r.get("tree") or {}
                if r.get("skipped"):
                    status = f"skipped: {r['skipped']}"
                elif not r.get("ok"):
                    status = "FAILED"
                    failures.append(r)
                else:
                    status = "ok"
                rows.append([
                    case, tool,
                    _f(s and s["min"]), _f(s and s["median"]), _f(s and s["max"]),
                    _f(w and w["min"]), _f(w and w["median"]), _f(w and w["max"]),
                    _f((r.get("cpu") or {}).get("median")), str(r["n"]), _f(r.get("peak_rss_mb"), 1),
                    str(tree.get("files", "")), str(tree.get("pyc", "")), status,
                ])  # fmt: skip
        out.append(_table(
            ["case", "tool", "step min", "step med", "step max", "whole min", "whole med",
             "whole max", "CPU med", "n", "peak RSS MB", "files", "pyc", "status"],
            rows, {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
        ))  # fmt: skip
        out.append("")
        for r in failures:
            out.append(f"- {r['case']} / {r['tool']}: {r['error']}")
            if r.get("stderr_tail"):
                out += ["  ```", *("  " + ln for ln in r["stderr_tail"].splitlines()), "  ```"]
        if failures:
            out.append("")

    out += ["## envmat / uv and envmat / pip (medians of the whole figure)", ""]
    rows = []
    for r in data.get("ratios", []):
        rss = r["envmat_case"] == "*"
        rows.append([
            r["workload"], r["case"],
            _f(r["envmat"], 1 if rss else 3) if r["envmat"] is not None else ("FAILED" if r["envmat_error"] else "-"),
            _f(r["uv"]), _f(r["pip"]),
            _f(r["envmat_over_uv"], 2), _f(r["envmat_over_pip"], 2),
            ("≤ %g MB" if rss else "≤ %gx") % r["goal"] if r["goal"] is not None else "",
            ("≤ %g MB" if rss else "≤ %gx") % r["milestone"] if r["milestone"] is not None else "",
            r["verdict"],
        ])  # fmt: skip
    out.append(_table(
        ["workload", "case", "envmat", "uv", "pip", "envmat/uv", "envmat/pip",
         "goal", "first milestone", "verdict"],
        rows, {2, 3, 4, 5, 6},
    ))  # fmt: skip
    out.append("")
    return "\n".join(out)


def dumps(data: dict[str, Any]) -> str:
    def clean(x: Any) -> Any:
        if isinstance(x, float):
            return round(x, 6)
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(data), indent=2, ensure_ascii=False) + "\n"


def plot(data: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars of the median whole time, per case per tool, one subplot per workload."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return None

    idx = _index(data)
    workloads = [
        w for w in data["meta"]["workloads"] if "error" not in data["workloads"].get(w, {})
    ]
    if not workloads:
        return None
    tools = [t for t in TOOL_ORDER if any(k[2] == t for k in idx)]
    colors = {"envmat": "#d62728", "uv": "#6a3d9a", "pip": "#1f77b4"}
    fig, axes = plt.subplots(len(workloads), 1, figsize=(12, 3.6 * len(workloads)), squeeze=False)
    width = 0.8 / max(1, len(tools))
    for ax, wl in zip(axes[:, 0], workloads):
        cases = [
            c for c in CASE_ORDER if c != "warm_netless" and any((wl, c, t) in idx for t in tools)
        ]
        for ti, tool in enumerate(tools):
            xs, meds, lo, hi = [], [], [], []
            for ci, case in enumerate(cases):
                r = idx.get((wl, case, tool))
                x = ci + (ti - (len(tools) - 1) / 2) * width
                if r is None or r.get("skipped"):
                    continue
                if not r.get("ok"):
                    ax.annotate("✗", (x, 0.0), xycoords=("data", "axes fraction"), ha="center",
                                va="bottom", color=colors.get(tool, "k"), fontsize=11)  # fmt: skip
                    continue
                w = r["whole"]
                xs.append(x)
                meds.append(w["median"])
                lo.append(w["median"] - w["min"])
                hi.append(w["max"] - w["median"])
            if xs:
                ax.bar(xs, meds, width=width, color=colors.get(tool), label=tool,
                       yerr=[lo, hi], capsize=2, error_kw={"lw": 0.8})  # fmt: skip
        ax.set_yscale("log")
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels(cases)
        ax.set_ylabel("seconds (median, min-max)")
        ax.set_title(f"{wl} ({data['workloads'][wl]['packages']} packages)")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(tools), fontsize=8)
    meta = data["meta"]
    fig.suptitle(
        "envmat vs uv pip sync vs pip install --no-deps: "
        + ", ".join(str(v).split(" from ")[0].split(" (x")[0] for v in meta["tools"].values())
        + f" (Python {meta['python']}, {meta['machine']})",
        fontsize=9,
    )
    fig.text(
        0.01, 0.005, "✗ = failed; pip: fresh = --no-compile, remove = pip uninstall", fontsize=7
    )
    fig.tight_layout(rect=(0, 0.01, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
