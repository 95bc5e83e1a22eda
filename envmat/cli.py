"""Command line: parse arguments, call the library, render the report or the error."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

LINK_MODES = ("auto", "hardlink", "reflink", "copy", "symlink")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--venv", default=".venv", help="the virtual environment (default: .venv)")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="cache directory (env ENVMAT_CACHE_DIR; default: the user cache)",
    )
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up waiting for another envmat holding the venv (exit 3)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail (repeat for debug logs)"
    )


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("lock", help="pylock.toml (PEP 751) or uv.lock")
    p.add_argument(
        "--python", default=None, help="interpreter for a new venv: a version (3.12) or a path"
    )
    p.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME",
        help="install this extra (repeatable)",
    )
    p.add_argument(
        "--all-extras", action="store_true", help="install every extra the lock declares"
    )
    p.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME",
        help="install this dependency group (repeatable; replaces the default groups)",
    )
    p.add_argument("--all-groups", action="store_true", help="install every dependency group")
    p.add_argument(
        "--no-default-groups", action="store_true", help="do not install the lock's default groups"
    )
    p.add_argument(
        "--only-group",
        action="append",
        default=[],
        metavar="NAME",
        help="uv.lock: only this group, not the project",
    )
    p.add_argument("--no-dev", action="store_true", help="uv.lock: leave out the dev group")
    p.add_argument(
        "--no-install-project",
        action="store_true",
        help="uv.lock: skip the project's own source tree",
    )
    p.add_argument("--offline", action="store_true", help="use only the cache and local paths")
    p.add_argument(
        "--strict", action="store_true", help="treat lock warnings and file conflicts as errors"
    )
    p.add_argument("--json", action="store_true", help="print the plan or report as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envmat", description="Make a virtual environment match a lockfile exactly."
    )
    parser.add_argument("--version", action="store_true", help="print envmat's version")
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("sync", help="make the venv match the lock (create it if missing)")
    _add_selection(s)
    _add_common(s)
    s.add_argument("--inexact", action="store_true", help="keep packages the lock does not list")
    s.add_argument(
        "--link-mode",
        choices=LINK_MODES,
        default=os.environ.get("ENVMAT_LINK_MODE", "auto"),
        help="how files come from the cache (default: auto)",
    )
    s.add_argument("--jobs", type=int, default=None, help="parallel downloads and file operations")
    s.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="network timeout per request"
    )
    s.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p = sub.add_parser("plan", help="show what sync would do, change nothing")
    _add_selection(p)
    _add_common(p)
    p.add_argument("--inexact", action="store_true", help="keep packages the lock does not list")
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    if quiet:
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)


def _selection_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        python=args.python,
        extras=args.extra,
        all_extras=args.all_extras,
        groups=args.group,
        all_groups=args.all_groups,
        no_default_groups=args.no_default_groups,
        only_groups=args.only_group,
        no_dev=args.no_dev,
        no_install_project=args.no_install_project,
        offline=args.offline,
        strict=args.strict,
        cache_dir=args.cache_dir,
        lock_timeout=args.lock_timeout,
        inexact=args.inexact,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"envmat {version('envmat')}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    _setup_logging(args.verbose, args.quiet)
    from .errors import EnvmatError

    def notify(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr)

    try:
        return _run(args, notify)
    except EnvmatError as e:
        print(e.render(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, notify: Any) -> int:
    from .api import sync
    from .report import change_lines, summary_line

    dry = args.command == "plan" or getattr(args, "dry_run", False)
    kwargs = _selection_kwargs(args)
    if args.command == "sync":
        kwargs.update(link_mode=args.link_mode, jobs=args.jobs, timeout=args.timeout)
    report = sync(args.lock, args.venv, dry_run=dry, notify=notify, **kwargs)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    if args.quiet:
        return 0
    # like uv: a sync's account goes to stderr; a plan is the command's output
    out = sys.stdout if args.command == "plan" else sys.stderr
    for line in change_lines(report.changes, verbose=bool(args.verbose) or dry):
        print(line, file=out)
    print(summary_line(report), file=out)
    return 0
