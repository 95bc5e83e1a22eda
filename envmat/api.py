"""The composition root: ``sync()`` wires the stages; ``LockedVenv`` is the seed's wheel API."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .errors import EnvmatError
from .fs import LINK_MODES
from .lock.model import FileRef, LockedDist, Selection
from .logs import Logger
from .progress import Progress
from .report import SyncReport
from .target import Target, query_target, remember_target
from .venv import (
    check_existing_venv,
    check_python_matches,
    create_venv,
    creating_marker,
    find_python_and_target,
    venv_python,
)

if TYPE_CHECKING:
    from .ahead import PlaceAhead
    from .fs import Linker, LinkMode

log = Logger(__name__)

Notify = Callable[[str], None]


def _default_jobs() -> int:
    return min(32, (os.cpu_count() or 1) * 4)


def _target_info(target: Target) -> dict[str, str]:
    return {
        "python": ".".join(map(str, target.version)),
        "implementation": target.implementation,
        "platform": target.platform,
        "executable": target.executable,
    }


def _check_numbers(jobs: int | None, timeout: float, lock_timeout: float | None) -> None:
    """The library's side of the checks the command line makes (the same rules: fastpath.py)."""
    from .fastpath import jobs_problem, seconds_problem

    problems = {
        "jobs": jobs_problem(jobs) if jobs is not None else None,
        "timeout": seconds_problem(timeout, zero_ok=False),
        "lock_timeout": seconds_problem(lock_timeout, zero_ok=True)
        if lock_timeout is not None
        else None,
    }
    bad = [f"{name}: {why}" for name, why in problems.items() if why]
    if bad:
        raise EnvmatError(
            "invalid " + "; ".join(bad),
            hint="jobs: 1 or more (or None); timeout: seconds above 0; lock_timeout: 0 or more (or None)",
        )


class _Engine:
    """One sync's settings and the steps shared by ``sync`` and the wheel API."""

    def __init__(
        self,
        venv: Path,
        *,
        cache_dir: Path | None,
        link_mode: LinkMode,
        offline: bool,
        jobs: int | None,
        lock_timeout: float | None,
        strict: bool,
        timeout: float = 30.0,
        notify: Notify | None = None,
        progress: Progress | None = None,
    ) -> None:
        from .cache import default_cache_dir

        self.progress = progress
        self._cache_obj: Any = None
        if link_mode not in LINK_MODES:
            raise EnvmatError(
                f"unknown link mode {link_mode!r}", hint=f"use one of {', '.join(LINK_MODES)}"
            )
        _check_numbers(jobs, timeout, lock_timeout)
        self.venv = Path(os.path.abspath(venv))
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.link_mode = link_mode
        self.offline = offline
        self.jobs = jobs or _default_jobs()
        self.downloads = jobs  # None: the cache's default (cache._DOWNLOADS)
        self.lock_timeout = lock_timeout
        self.strict = strict
        self.timeout = timeout
        self.notify = notify or (lambda msg: log.info("%s", msg))
        self.warnings: list[str] = []
        #: fsync the journal (an existing venv); a venv made by this run has its marker instead
        self.durable = True
        #: what the last transaction wrote (replay.py records a first sync's)
        self.last_writes: Sequence[Any] = ()
        #: a new venv's files placed while its wheels downloaded (``create``, ahead.py), and the
        #: linker that placed them (the transaction goes on with it)
        self.ahead: PlaceAhead | None = None
        self.linker: Linker | None = None

    def open(self, python: str | None) -> tuple[bool, Target, str | None]:
        """(must create, target, recovery message) for the venv, creating nothing yet.

        For a missing venv the target comes from the interpreter that will make it, so that a
        lock or wheel that does not fit fails before any venv exists. An existing venv keeps
        its interpreter, and an interrupted sync in it is finished or rolled back first.
        """
        marker = creating_marker(self.venv)
        if marker.exists():
            # a previous run was killed while making the venv: what is there is ours and partial
            shutil.rmtree(self.venv, ignore_errors=True)
            marker.unlink()
            self.notify(f"removed the half-made venv {self.venv} left by an interrupted run")
        if check_existing_venv(self.venv):
            check_python_matches(self.venv, python, None)
            target = self.target()
            return False, target, self.recover(target)
        from . import prefetch

        found = prefetch.take(python, self.cache_dir)  # asked while the CLI imported us
        if found is not None:
            self.interpreter, target = found
            return True, target, None
        self.interpreter, target = find_python_and_target(python, self.cache_dir)
        return True, target, None

    def report(
        self,
        lock: str,
        target: Target,
        changes: Sequence[Any],
        stats: Mapping[str, Any],
        start: float,
        *,
        created: bool,
        recovered: str | None,
        dry_run: bool = False,
    ) -> SyncReport:
        return SyncReport(
            lock=lock,
            venv=str(self.venv),
            target=target.describe(),
            target_info=_target_info(target),
            changes=tuple(changes),
            elapsed=time.perf_counter() - start,
            dry_run=dry_run,
            created_venv=created,
            downloaded_bytes=stats.get("downloaded", 0),
            warnings=tuple(self.warnings),
            recovered=recovered,
            link_mode=stats.get("link_mode"),
            files_written=stats.get("written", 0),
            files_removed=stats.get("removed", 0),
        )

    @contextlib.contextmanager
    def undo_creation(self, created: bool) -> Iterator[None]:
        """A venv this run made goes again if its first sync fails: it did not exist before.

        Its creation marker (``create``) stands until the first sync is done, so a venv whose
        first sync was killed is removed by the next run rather than rolled back to empty.
        """
        try:
            yield
        except BaseException:
            if created:
                shutil.rmtree(self.venv, ignore_errors=True)
                creating_marker(self.venv).unlink(missing_ok=True)
            raise
        if created:
            creating_marker(self.venv).unlink(missing_ok=True)

    def create(self, base: Target, dists: Sequence[LockedDist]) -> Target:
        """Fetch and verify every file and make the venv; its target without asking again.

        With every file in the cache the venv is made once they are verified. When some must be
        fetched, the venv is made first and each wheel's files are placed in it as soon as its
        cache entry is filled (ahead.py); a failed fetch removes the venv again.

        A marker beside the venv stands while it is being made and first synced (until
        ``undo_creation`` ends), so that a venv half-made by a killed process is recognised and
        made again by the next run (``open``). The first sync's journal therefore need not be
        durable: nothing it could restore existed before.
        """
        from .venv import make_template, template_ready

        python = venv_python(self.venv)
        # what asking the new venv's interpreter would answer (target()): its base's answer
        # under its own name; kept, so that the next sync into the venv need not start it
        answer = attrs.evolve(base, executable=str(python))
        target = answer.in_venv(self.venv)
        # a cold cache has no template venv for this interpreter yet: its venv module runs
        # (a subprocess) while the wheels download
        maker = None
        if not template_ready(self.interpreter, self.cache_dir):
            import threading

            maker = threading.Thread(
                target=make_template, args=(self.interpreter, self.cache_dir), daemon=True
            )
            maker.start()

        def make_venv() -> None:
            if maker is not None:
                maker.join()
            creating_marker(self.venv).touch()
            create_venv(self.venv, self.interpreter, self.cache_dir)

        cache = self._cache()
        if self.offline or not cache.missing(dists):
            try:
                cache.prepare(dists)
            finally:
                if maker is not None:
                    maker.join()
            make_venv()
        else:
            from .ahead import PlaceAhead
            from .fs import Linker

            self.linker = Linker(self.link_mode)
            ahead = PlaceAhead(str(self.venv), target, str(python), self.linker, make_venv)
            try:
                try:
                    cache.prepare(dists, on_fill=ahead.submit)
                finally:
                    ahead.finish()
            except BaseException:
                shutil.rmtree(self.venv, ignore_errors=True)
                creating_marker(self.venv).unlink(missing_ok=True)
                raise
            self.ahead = ahead
        self.durable = False
        remember_target(python, self.cache_dir, answer)
        return target

    def remember_for_replay(
        self,
        lock: str,
        python: str | None,
        options: Mapping[str, Any],
        link_mode: str,
        report: SyncReport,
    ) -> None:
        """Record this first sync for later venvs from the same lock (replay.py)."""
        import attrs

        from . import replay
        from .report import change_lines, summary_line

        path = replay.recipe_path(str(self.cache_dir), lock, python, options, link_mode)
        if path is None or not self.last_writes:
            return
        summary = summary_line(attrs.evolve(report, elapsed=-1.0, downloaded_bytes=0))
        replay.record(
            path,
            venv=str(self.venv),
            python=str(self.interpreter),
            writes=[
                (tf.path, tf.link, tf.data, tf.executable, tf.size, tf.stamp)
                for tf in self.last_writes
            ],
            lines=[f"warning: {w}" for w in report.warnings] + change_lines(report.changes),
            summary=summary.replace("-1.00s", "@ELAPSED@").replace(str(self.venv), "@VENV@"),
        )

    def target(self) -> Target:
        """The venv's target. Its interpreter is asked without site (``-I -S``, targetquery.py),
        and without site a venv's interpreter reports its base's prefix and scheme (site.py is
        what makes a venv a venv): the venv's own paths come from the scheme the interpreter
        gives a venv (``Target.in_venv``). The base's scheme is not always a venv's: Debian's
        Python installs into local/lib/pythonX.Y/dist-packages, a venv of it into
        lib/pythonX.Y/site-packages."""
        return query_target(venv_python(self.venv), self.cache_dir).in_venv(self.venv)

    def recover(self, target: Target) -> str | None:
        from .journal import recover

        done = recover(self.venv, self.stop_dirs(target))
        if done:
            self.notify(done)
        return done

    def stop_dirs(self, target: Target) -> set[str]:
        from .execute import scheme_roots

        # the venv's own directories stay; data directories (share/, etc/) go when emptied,
        # as a fresh sync would not have them
        return scheme_roots(
            [target.rel(k) for k in ("purelib", "platlib", "scripts")] + ["include"]
        )

    def apply(
        self,
        target: Target,
        locked: Sequence[LockedDist],
        *,
        inexact: bool,
        reinstall: Mapping[str, Collection[str]] | None = None,
        dry_run: bool = False,
        fingerprint: str | None = None,
        compile_bytecode: bool = False,
    ) -> tuple[list[Any], dict[str, Any]]:
        from .installed import InstalledState, scan
        from .plan import plan_dists

        if self.ahead is not None:
            # made by this run: its only files are those placed ahead, which no RECORD lists yet
            installed = InstalledState(dists={}, state={})
        else:
            installed = scan(self.venv, target)
        cache = self._cache()
        cached_keys = self._cached_keys(cache, locked)
        changes = plan_dists(
            locked, installed, inexact=inexact, reinstall=set(reinstall or {}), cached=cached_keys
        )
        stats: dict[str, Any] = {}
        if dry_run:
            return changes, stats
        changing = {c.name for c in changes if c.action in ("add", "replace")}
        to_install = [d for d in locked if d.name in changing]
        if (
            not any(c.action != "keep" for c in changes)
            and installed.state.get("fingerprint") == fingerprint
        ):
            return changes, stats
        from .execute import SourceGone

        for attempt in (1, 2):
            try:
                manifest = self._apply_once(
                    target, changes, installed, to_install, reinstall, fingerprint, stats
                )
                break
            except SourceGone as e:
                # `envmat cache clean/prune` removed an entry between reading and linking it;
                # the transaction rolled back, so fetch it again and start over, once
                if attempt == 2:
                    raise EnvmatError(
                        f"a cache entry disappeared while installing from it ({e.path})",
                        hint="another process is cleaning the cache; run envmat sync again",
                    ) from None
                cache.forget()
        if compile_bytecode:
            stats["compiled"] = self._compile(target, manifest)
        return changes, stats

    def _apply_once(
        self,
        target: Target,
        changes: list[Any],
        installed: Any,
        to_install: list[LockedDist],
        reinstall: Mapping[str, Collection[str]] | None,
        fingerprint: str | None,
        stats: dict[str, Any],
    ) -> Any:
        from .execute import apply
        from .manifest import build_manifest
        from .plan import plan_files

        cache = self._cache()
        # a file edited in the venv may be a hardlink into the cache: check those entries first
        wheels = cache.prepare(to_install, verify=set(reinstall or {}))
        stats["downloaded"] = sum(w.downloaded for w in wheels)
        ahead = self.ahead
        manifest = build_manifest(
            wheels,
            target,
            str(venv_python(self.venv)),
            strict=self.strict,
            parts=ahead.parts if ahead is not None else None,
        )
        self.warnings += manifest.conflicts
        site_dirs = sorted({target.rel("purelib"), target.rel("platlib")})
        untrusted = {p for paths in (reinstall or {}).values() for p in paths}
        fplan = plan_files(
            changes,
            manifest,
            installed,
            {"fingerprint": fingerprint, "site_dirs": site_dirs},
            untrusted=untrusted,
        )
        self.last_writes = fplan.writes
        if not fplan.empty:
            result = apply(
                self.venv,
                fplan,
                link_mode=self.link_mode,
                jobs=self.jobs,
                progress=self.progress,
                stop=self.stop_dirs(target),
                durable=self.durable,
                placed=ahead.placed if ahead is not None else None,
                linker=self.linker,
            )
            stats.update(written=result.written, removed=result.removed, link_mode=result.link_mode)
            self.warnings += result.fallbacks
        return manifest

    def _compile(self, target: Target, manifest: Any) -> int:
        from .bytecode import add_to_records, compile_modules

        sites = (target.rel("purelib") + "/", target.rel("platlib") + "/")
        owner_record: dict[str, str] = {}
        for dm in manifest.dists.values():
            for f in dm.files:
                if f.endswith(".py") and f.startswith(sites):
                    owner_record.setdefault(f, f"{dm.dist_info}/RECORD")
        pairs = compile_modules(
            venv_python(self.venv), [str(self.venv / f) for f in sorted(owner_record)], self.jobs
        )
        records: dict[str, list[str]] = {}
        for src, pyc in pairs:
            rel_src = os.path.relpath(src, self.venv).replace(os.sep, "/")
            records.setdefault(owner_record[rel_src], []).append(
                os.path.relpath(pyc, self.venv).replace(os.sep, "/")
            )
        add_to_records(self.venv, records)
        return len(pairs)

    def modified_files(self, target: Target) -> dict[str, set[str]]:
        """Missing or modified files per distribution (``--reinstall-modified``)."""
        from .check import verify_files
        from .installed import scan

        out: dict[str, set[str]] = {}
        for issue in verify_files(self.venv, scan(self.venv, target), self.jobs):
            if issue.dist and issue.path:
                out.setdefault(issue.dist, set()).add(issue.path)
        return out

    def _cache(self) -> Any:

        if self._cache_obj is None:
            self._cache_obj = self._new_cache()
        return self._cache_obj

    def _new_cache(self) -> Any:
        from .cache import Cache

        return Cache(
            self.cache_dir,
            offline=self.offline,
            jobs=self.jobs,
            downloads=self.downloads,
            timeout=self.timeout,
            progress=self.progress,
        )

    @staticmethod
    def _cached_keys(cache: Any, locked: Sequence[LockedDist]) -> set[str]:
        from .cache import cache_key

        keys = set()
        for d in locked:
            if d.wheel is not None:
                k = cache_key(d.wheel)
                if cache.unpacked_dir(k).is_dir() or cache.archive_path(k).is_file():
                    keys.add(k)
        return keys


def sync(
    lock: str | os.PathLike[str],
    venv: str | os.PathLike[str] = ".venv",
    *,
    python: str | None = None,
    extras: Sequence[str] = (),
    all_extras: bool = False,
    groups: Sequence[str] = (),
    all_groups: bool = False,
    no_default_groups: bool = False,
    only_groups: Sequence[str] = (),
    no_dev: bool = False,
    no_install_project: bool = False,
    inexact: bool = False,
    link_mode: LinkMode = "auto",
    offline: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    lock_timeout: float | None = None,
    timeout: float = 30.0,
    dry_run: bool = False,
    strict: bool = False,
    compile_bytecode: bool = False,
    reinstall_modified: bool = False,
    notify: Notify | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Make ``venv`` hold exactly what ``lock`` selects for its interpreter; see the README."""
    from .lock import LockReader
    from .venvlock import venv_lock

    start = time.perf_counter()
    lock_path = Path(lock)
    selection = Selection(
        extras=tuple(extras),
        all_extras=all_extras,
        groups=tuple(groups),
        all_groups=all_groups,
        no_default_groups=no_default_groups,
        only_groups=tuple(only_groups),
        no_dev=no_dev,
        no_install_project=no_install_project,
        strict=strict,
    )
    eng = _Engine(
        Path(venv),
        cache_dir=Path(cache_dir) if cache_dir else None,
        link_mode=link_mode,
        offline=offline,
        jobs=jobs,
        lock_timeout=lock_timeout,
        strict=strict,
        timeout=timeout,
        notify=notify,
        progress=progress,
    )
    reader = LockReader(lock_path, eng.cache_dir)
    if not (reader.remembered or offline or dry_run):
        from .fetch import start_tls_setup

        # a lock not seen before probably means downloads: load the CA bundle meanwhile (it
        # loads without the GIL, so beside the check; that touches nothing either)
        start_tls_setup()
    reader.check()  # a bad lock fails before anything is touched
    from .fastpath import fingerprint, noop_options

    options = noop_options(
        extras=extras,
        all_extras=all_extras,
        groups=groups,
        all_groups=all_groups,
        no_default_groups=no_default_groups,
        only_groups=only_groups,
        no_dev=no_dev,
        no_install_project=no_install_project,
        inexact=inexact,
        compile_bytecode=compile_bytecode,
        strict=strict,
    )
    from .cache import cache_lock

    with venv_lock(eng.venv, lock_timeout, eng.notify), cache_lock(eng.cache_dir, shared=True):
        create, target, recovered = eng.open(python)
        locked, warnings = reader.select(target, selection)
        eng.warnings += warnings  # shown once, with the report (cli.py)
        if create and dry_run:
            from .installed import InstalledState
            from .plan import plan_dists

            cached = eng._cached_keys(eng._cache(), locked)
            changes = plan_dists(locked, InstalledState(dists={}, state={}), cached=cached)
            stats: dict[str, Any] = {}
        else:
            if create:
                target = eng.create(target, locked)
            reinstall = eng.modified_files(target) if reinstall_modified and not create else {}
            with eng.undo_creation(create):
                changes, stats = eng.apply(
                    target,
                    locked,
                    inexact=inexact,
                    dry_run=dry_run,
                    fingerprint=fingerprint(str(lock_path), str(eng.venv), options),
                    reinstall=reinstall,
                    compile_bytecode=compile_bytecode,
                )
    report = eng.report(
        str(lock_path),
        target,
        changes,
        stats,
        start,
        created=create and not dry_run,
        recovered=recovered,
        dry_run=dry_run,
    )
    replayable = (
        create
        and not (dry_run or compile_bytecode or reinstall_modified)
        and stats.get("link_mode") == "hardlink"
        and link_mode in ("auto", "hardlink")
        and (python is None or os.sep in python)
        and lock_path.name != "uv.lock"  # its selection also reads pyproject.toml
    )
    if replayable:
        eng.remember_for_replay(str(lock_path), python, options, link_mode, report)
    return report


def _wheel_dist(path: Path) -> LockedDist:
    from packaging.utils import parse_wheel_filename

    from .fetch import hash_local

    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise EnvmatError(f"wheel {path} {what}", hint="pass the path of a .whl file")
    try:
        name, version, _, _ = parse_wheel_filename(path.name)
    except ValueError as e:
        raise EnvmatError(
            f"{path.name} is not a wheel file name: {e}", hint="pass a .whl file"
        ) from None
    size, hashes = hash_local(path, {"sha256": ""})
    ref = FileRef(
        filename=path.name, path=str(path.resolve()), size=size, hashes={"sha256": hashes["sha256"]}
    )
    return LockedDist(
        name=str(name), version=str(version), kind="wheel", wheel=ref, key_path=str(path)
    )


def _check_tags(dists: Sequence[LockedDist], target: Target) -> None:
    from packaging.utils import parse_wheel_filename

    supported = set(target.tags)
    bad = [
        d.wheel.filename
        for d in dists
        if d.wheel and not {str(t) for t in parse_wheel_filename(d.wheel.filename)[3]} & supported
    ]
    if bad:
        raise EnvmatError(
            f"{len(bad)} wheel(s) do not fit {target.describe()}",
            details=bad,
            hint="use wheels built for this interpreter and platform",
        )


class LockedVenv:
    """A venv that wheels are installed into under its lock, one transaction per call."""

    def __init__(
        self,
        venv: str | os.PathLike[str],
        *,
        python: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        link_mode: LinkMode = "auto",
        lock_timeout: float | None = None,
    ) -> None:
        self.python = python
        self._engine_args: dict[str, Any] = dict(
            cache_dir=Path(cache_dir) if cache_dir else None,
            link_mode=link_mode,
            offline=False,
            jobs=None,
            lock_timeout=lock_timeout,
            strict=False,
        )
        self.venv = Path(os.path.abspath(venv))

    def install_wheel(self, wheel: str | os.PathLike[str]) -> SyncReport:
        """Install (or replace) one wheel; other distributions in the venv stay."""
        return self.install_wheels([wheel])

    def install_wheels(self, wheels: Iterable[str | os.PathLike[str]]) -> SyncReport:
        from .venvlock import venv_lock

        start = time.perf_counter()
        dists = [_wheel_dist(Path(w)) for w in wheels]
        names = [d.name for d in dists]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise EnvmatError(
                f"several wheels given for {', '.join(dupes)}",
                hint="pass one wheel per distribution",
            )
        eng = _Engine(self.venv, **self._engine_args)
        from .cache import cache_lock

        with (
            venv_lock(eng.venv, eng.lock_timeout, eng.notify),
            cache_lock(eng.cache_dir, shared=True),
        ):
            created, target, recovered = eng.open(self.python)
            _check_tags(dists, target)
            if created:
                target = eng.create(target, dists)
            with eng.undo_creation(created):
                changes, stats = eng.apply(target, dists, inexact=True)
        return eng.report("", target, changes, stats, start, created=created, recovered=recovered)


def install_wheels_venv(
    wheels: Iterable[str | os.PathLike[str]], venv: str | os.PathLike[str]
) -> SyncReport:
    """Install every wheel into ``venv`` in one transaction (the seed's function)."""
    return LockedVenv(venv).install_wheels(wheels)


class CheckResult:
    """What ``envmat check`` found."""

    def __init__(
        self, venv: Path, issues: list[Any], dists: int, files: int, recovered: str | None
    ) -> None:
        self.venv = venv
        self.issues = issues
        self.dists = dists
        self.files = files
        self.recovered = recovered

    @property
    def ok(self) -> bool:
        return not self.issues

    def to_json(self) -> dict[str, Any]:
        return {
            "venv": str(self.venv),
            "ok": self.ok,
            "distributions": self.dists,
            "files": self.files,
            "recovered": self.recovered,
            "issues": [i.to_json() for i in self.issues],
        }


def check(
    venv: str | os.PathLike[str],
    lock: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    lock_timeout: float | None = None,
    notify: Notify | None = None,
    **selection: Any,
) -> CheckResult:
    """Verify every installed file against its RECORD, and the venv against ``lock`` if given."""
    from .check import lock_issues, unowned_files, verify_files
    from .installed import scan
    from .venvlock import venv_lock

    eng = _Engine(
        Path(venv),
        cache_dir=Path(cache_dir) if cache_dir else None,
        link_mode="auto",
        offline=True,
        jobs=None,
        lock_timeout=lock_timeout,
        strict=False,
        notify=notify,
    )
    if not check_existing_venv(eng.venv):
        raise EnvmatError(
            f"{eng.venv} is not a virtual environment", hint="pass --venv with the venv to check"
        )
    with venv_lock(eng.venv, lock_timeout, eng.notify):
        target = eng.target()
        recovered = eng.recover(target)
        installed = scan(eng.venv, target)
        issues = verify_files(eng.venv, installed, eng.jobs)
        issues += unowned_files(eng.venv, installed, [target.rel("purelib"), target.rel("platlib")])
        if lock is not None:
            from .lock import read_toml, select_from_lock
            from .plan import plan_dists

            lock_path = Path(lock)
            locked, _ = select_from_lock(
                lock_path, read_toml(lock_path), target, Selection(**selection)
            )
            issues += lock_issues(plan_dists(locked, installed))
    return CheckResult(
        eng.venv,
        issues,
        len(installed.dists),
        sum(len(d.files) for d in installed.dists.values()),
        recovered,
    )
