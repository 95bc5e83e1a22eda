"""Command line: parse arguments, call the library, render the report or the error.

Nothing heavy is imported before the no-op fast path has had its chance (DESIGN.md §5).
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

LINK_MODES = ("auto", "hardlink", "reflink", "copy", "symlink")


def _checked(parse: Any) -> Any:
    """An argparse type from a fastpath parser: its ValueError becomes argparse's usage error."""
    import argparse

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def _add_common(p: argparse.ArgumentParser) -> None:
    from .fastpath import parse_wait

    p.add_argument("--venv", default=".venv", help="the virtual environment (default: .venv)")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="cache directory (env ENVMAT_CACHE_DIR; default: the user cache)",
    )
    p.add_argument(
        "--lock-timeout",
        type=_checked(parse_wait),
        default=None,
        metavar="SECONDS",
        help="give up waiting for another envmat holding the venv after SECONDS (exit 3)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail (repeat for debug logs)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


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
        help="install this dependency group (repeatable; pylock: replaces the default groups, uv.lock: adds to them)",
    )
    p.add_argument("--all-groups", action="store_true", help="install every dependency group")
    p.add_argument("--no-default-groups", action="store_true", help="leave out the default groups")
    p.add_argument(
        "--only-group",
        action="append",
        default=[],
        metavar="NAME",
        help="only this group, not the project (uv.lock)",
    )
    p.add_argument("--no-dev", action="store_true", help="leave out the dev group (uv.lock)")
    p.add_argument(
        "--no-install-project",
        action="store_true",
        help="skip the project's own source tree (uv.lock)",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="use only the cache and local paths; never the network",
    )
    p.add_argument(
        "--strict", action="store_true", help="treat lock warnings and file conflicts as errors"
    )
    p.add_argument(
        "--inexact", action="store_true", help="keep installed packages the lock does not list"
    )


def build_parser() -> argparse.ArgumentParser:
    import argparse

    from .fastpath import parse_days, parse_jobs, parse_timeout

    parser = argparse.ArgumentParser(
        prog="envmat", description="Make a virtual environment match a lockfile exactly."
    )
    parser.add_argument("--version", action="store_true", help="print envmat's version")
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("sync", help="make the venv match the lock (create it if missing)")
    _add_selection(s)
    _add_common(s)
    s.add_argument(
        "--link-mode",
        choices=LINK_MODES,
        default=os.environ.get("ENVMAT_LINK_MODE", "auto"),
        help="how files come from the cache (default: auto = reflink, else hardlink, else copy)",
    )
    s.add_argument(
        "--compile-bytecode",
        action="store_true",
        help="compile installed modules to .pyc (listed in RECORD)",
    )
    s.add_argument(
        "--reinstall-modified",
        action="store_true",
        help="reinstall distributions whose files were modified or deleted",
    )
    s.add_argument(
        "--jobs",
        type=_checked(parse_jobs),
        default=None,
        help="parallel downloads and file operations (default: 3 downloads, 4 file operations per core)",
    )
    s.add_argument(
        "--timeout",
        type=_checked(parse_timeout),
        default=30.0,
        metavar="SECONDS",
        help="network timeout per request",
    )
    s.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would change, change nothing (same as plan)",
    )
    p = sub.add_parser("plan", help="show what sync would do, change nothing")
    _add_selection(p)
    _add_common(p)
    c = sub.add_parser(
        "check", help="verify installed files against their RECORDs (and against a lock)"
    )
    c.add_argument("lock", nargs="?", default=None, help="also compare the venv with this lock")
    _add_common(c)
    cache = sub.add_parser("cache", help="inspect or clean the cache")
    cache.add_argument("action", choices=("dir", "info", "clean", "prune"))
    cache.add_argument("--cache-dir", default=None, help="cache directory (env ENVMAT_CACHE_DIR)")
    cache.add_argument(
        "--older-than",
        type=_checked(parse_days),
        default=30.0,
        metavar="DAYS",
        help="prune: entries no sync used for DAYS",
    )
    cache.add_argument("-q", "--quiet", action="store_true")
    cache.add_argument("-v", "--verbose", action="count", default=0)
    cache.add_argument("--json", action="store_true")
    return parser


#: argparse's names for the options whose own names do not give them
_SHORT = {"-q": "quiet", "-v": "verbose"}


def fast_args(argv: list[str]) -> Any:
    """What ``build_parser().parse_args(argv)`` gives for a plain ``sync`` (the options the
    no-op path reads), without importing and building argparse (~25 ms of a cold sync's start);
    None for anything else, which argparse parses and, if need be, explains."""
    from types import SimpleNamespace

    from . import fastpath

    if fastpath.parse_sync_argv(argv) is None:
        return None
    ns = SimpleNamespace(
        version=False,
        command="sync",
        lock=None,
        python=None,
        extra=[],
        all_extras=False,
        group=[],
        all_groups=False,
        no_default_groups=False,
        only_group=[],
        no_dev=False,
        no_install_project=False,
        offline=False,
        strict=False,
        inexact=False,
        venv=".venv",
        cache_dir=None,
        lock_timeout=None,
        quiet=False,
        verbose=0,
        json=False,
        link_mode=os.environ.get("ENVMAT_LINK_MODE", "auto"),
        compile_bytecode=False,
        reinstall_modified=False,
        jobs=None,
        timeout=30.0,
        dry_run=False,
    )
    rest = argv[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        i += 1
        if not arg.startswith("-"):
            ns.lock = arg
            continue
        name, eq, value = arg.partition("=")
        dest = _SHORT.get(name) or name[2:].replace("-", "_")  # as argparse names it
        if name in ("-v", "--verbose"):
            ns.verbose += 1
        elif not fastpath.takes_value(name):
            setattr(ns, dest, True)
        else:
            if not eq:
                value = rest[i]
                i += 1
            if name in ("--extra", "--group", "--only-group"):
                getattr(ns, dest).append(value)
            else:  # (parse_sync_argv checked the value already)
                setattr(ns, dest, fastpath.CHECKED.get(name, str)(value))
    if ns.link_mode not in LINK_MODES:
        return None
    return ns


def _setup_logging(verbose: int, quiet: bool) -> None:
    from . import logs

    # logging's DEBUG/INFO/WARNING/ERROR levels, without importing it (logs.py)
    level = 10 if verbose >= 2 else 20 if verbose == 1 else 30
    logs.configure(40 if quiet else level)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        extras=args.extra,
        all_extras=args.all_extras,
        groups=args.group,
        all_groups=args.all_groups,
        no_default_groups=args.no_default_groups,
        only_groups=args.only_group,
        no_dev=args.no_dev,
        no_install_project=args.no_install_project,
        inexact=args.inexact,
        strict=args.strict,
    )


def main(argv: Sequence[str] | None = None) -> int:
    start = time.perf_counter()
    from .fastpath import main_fast

    # a sync the venv already matches is answered before argparse or anything heavy is imported
    try:
        fast = main_fast(list(sys.argv[1:] if argv is None else argv), start)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    if fast is not None:
        return fast
    args = fast_args(list(sys.argv[1:] if argv is None else argv))
    if args is None:
        parser = build_parser()
        args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(f"envmat {__version__}")
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
        if args.command == "check":
            return _check(args, notify)
        if args.command == "cache":
            return _cache(args)
        return _sync(args, notify)
    except EnvmatError as e:
        print(e.render(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_gone():
            raise
        return _reader_gone()


def _stdout_gone() -> bool:
    """stdout is a pipe whose reader has closed it (``envmat plan | head``)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _reader_gone() -> int:
    """What is left to print goes nowhere (not into a second BrokenPipeError at exit), and the
    exit status is a pipe's: 128 + SIGPIPE, what a tool killed by the signal reports."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return 141


def _spare_the_collector() -> None:
    """The modules just imported live as long as the process: out of the cyclic collector's
    sight (gc.freeze), and fewer young-generation passes over what a sync allocates (mostly
    acyclic: refcounting frees it). A command line's choice; the library leaves gc alone."""
    import gc

    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])


#: packages from which a cold sync starts a helper process: below, its start-up (about 0.15 s
#: of CPU) costs what it saves (measured: small, 7 packages, 7% slower; medium, 26, 13% faster)
_HELPER_FROM = 10


def _sync(args: argparse.Namespace, notify: Any) -> int:
    if not os.path.lexists(args.venv):
        from pathlib import Path

        from .cachedir import cache_root, many_new
        from .prefetch import start

        root = str(Path(args.cache_dir or cache_root()))  # as the engine spells it
        cold = args.command == "sync" and not (args.dry_run or args.offline)
        if cold and many_new(root, args.lock, _HELPER_FROM):
            from . import fillhelper

            # many packages from a lock the cache has not seen probably mean a cold sync: a
            # helper process gets ready to fill the cache beside this one (fillhelper.py);
            # first, as its start-up is the longest of what runs beside the engine's imports
            fillhelper.start_ahead(root, args.timeout)
        # a new venv: its interpreter is found and asked while the engine is imported
        start(args.python, root)
    from .api import sync
    from .report import change_lines, summary_line

    _spare_the_collector()

    dry = args.command == "plan" or args.dry_run
    kwargs = _options(args)
    kwargs.update(
        python=args.python,
        offline=args.offline,
        cache_dir=args.cache_dir,
        lock_timeout=args.lock_timeout,
    )
    if args.command == "sync":
        kwargs.update(
            link_mode=args.link_mode,
            jobs=args.jobs,
            timeout=args.timeout,
            compile_bytecode=args.compile_bytecode,
            reinstall_modified=args.reinstall_modified,
        )
    progress = None
    if not args.quiet and not dry and not args.json:
        from .report import BarProgress, LineProgress

        # bars on a terminal, plain lines in logs, nothing with -q
        progress = BarProgress(sys.stderr) if sys.stderr.isatty() else LineProgress(sys.stderr)
    try:
        report = sync(args.lock, args.venv, dry_run=dry, notify=notify, progress=progress, **kwargs)
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        import json

        print(json.dumps(report.to_json(), indent=2))
        return 0
    if args.quiet:
        return 0
    # like uv: a sync's account goes to stderr; a plan is the command's output
    out = sys.stdout if dry else sys.stderr
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for line in change_lines(report.changes, verbose=bool(args.verbose) or dry):
        print(line, file=out)
    print(summary_line(report), file=out)
    return 0


def _check(args: argparse.Namespace, notify: Any) -> int:
    from .api import check

    result = check(
        args.venv,
        args.lock,
        cache_dir=args.cache_dir,
        lock_timeout=args.lock_timeout,
        notify=notify,
    )
    if args.json:
        import json

        print(json.dumps(result.to_json(), indent=2))
    elif not args.quiet:
        for issue in result.issues:
            print(issue.line())
        if result.ok:
            print(
                f"OK: {result.files} files of {result.dists} distribution(s) match their RECORDs"
                + (" and the lock" if args.lock else "")
            )
        else:
            print(
                f"{len(result.issues)} problem(s) found; `envmat sync LOCK --reinstall-modified` repairs modified files"
            )
    return 0 if result.ok else 1


def _cache(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .cache import cache_info, cache_lock, clean_cache, default_cache_dir, prune_cache

    root = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    if args.action == "dir":
        print(root)
        return 0
    if args.action == "info":
        info = cache_info(root)
        if args.json:
            import json

            print(json.dumps(info, indent=2))
        else:
            print(f"cache: {root}")
            for k, v in info.items():
                if k != "path":
                    print(f"  {k}: {v}")
        return 0

    def waiting(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr)

    with cache_lock(root, shared=False, on_wait=waiting):
        if args.action == "clean":
            freed = clean_cache(root)
        else:
            freed = prune_cache(root, older_than_days=args.older_than)
    if not args.quiet:
        print(
            f"removed {freed['entries']} cache entries, {freed['bytes'] / 2**20:.1f} MiB from {root}"
        )
    return 0


def run() -> None:
    """The console entry (and ``python -m envmat``): ``main``, then exit without tearing the
    interpreter down. Freeing every object and module of a finished sync is work nobody waits
    for (a cold ``medium`` sync: ~0.09 s of CPU, ~20 ms of its wall time); the files envmat
    writes are closed by then, and the exit handlers still run. Anything unusual (a thread
    still running, output that cannot be flushed) takes the ordinary exit instead.

    The cyclic garbage collector is off for the whole process: a sync's objects are nearly all
    acyclic (refcounting frees them), and the collector's passes over what a ``large`` sync
    holds cost ~70 ms of CPU, ~30 ms of it in the transaction's one-core part and ~15 ms in
    the imports before the first download (peak RSS unchanged: 68 MB)."""
    import gc

    gc.disable()
    code = main()
    threading = sys.modules.get("threading")  # (not imported by a no-op: no threads then)
    if threading is None or threading.active_count() == 1:
        import atexit

        try:
            atexit._run_exitfuncs()  # (the helper process is let go, logging flushed)
            try:
                sys.stdout.flush()
            except BrokenPipeError:
                if not _stdout_gone():
                    raise
                code = _reader_gone()
            sys.stderr.flush()
        except BaseException:  # anything else: the interpreter reports it as it would
            sys.exit(code)
        os._exit(code)
    sys.exit(code)
