"""A fresh venv from a lock this cache has installed before: the first sync's work, replayed.

When a sync makes a new venv with hard links, it records what it did (``replays-v2/<key>`` in the
cache, in marshal form): the cache files it linked (with the size and mtime each had), the bytes it
generated (launchers, RECORDs, dist-info files, the state file) and the lines it printed. The key
covers the lock's bytes and directory, the interpreter asked for, the selecting options, the link
mode and envmat's own code. A later sync of the same into a venv that does not exist yet replays
that record with the standard library only: no lock parsing, no selection, no manifest. The
interpreter start and those imports are most of what a small warm install costs.

The replay is the same transaction as a first sync (``api._Engine.create``): under the venv lock
and a shared cache lock, with the creation marker beside the venv until it is complete, so a kill
makes the next run start over. Anything unexpected (a changed interpreter, a cache file that is
gone or was edited, a link that fails) undoes what the replay made and hands over to the full
path, which then does, and reports, the real work.
"""

from __future__ import annotations

import marshal
import os
import sys

from .cachedir import cache_root, code_stamp
from .fastpath import canonical, creating_marker, fingerprint, lock_file
from .lite import sha256

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing, pathlib, json, base64, shutil: none of them on this path
    from collections.abc import Mapping, Sequence
    from typing import Any

VERSION = 3  # (the key covers it: records of another layout are not read)
DIR = "replays-v2"
STATE = ".envmat/state.json"


def recipe_path(
    cache_dir: str, lock: str, python: str | None, options: Mapping[str, Any], link_mode: str
) -> str | None:
    """Where the record for this sync lives; None when the lock cannot be read."""
    try:
        with open(lock, "rb") as f:
            key = sha256(f.read())
    except OSError:
        return None
    key.update(
        repr(
            [
                VERSION,
                sys.hexversion,  # the record is marshal data
                code_stamp(),
                os.path.dirname(os.path.abspath(lock)),
                # no --python: the interpreter running envmat makes the venv (venv.find_python)
                python or sys.executable,
                canonical(options),
                link_mode,
            ]
        ).encode()
    )
    return os.path.join(cache_dir, DIR, key.hexdigest()[:40])


def record(
    path: str,
    *,
    venv: str,
    python: str,
    writes: Sequence[tuple[str, str | None, bytes | None, bool, int, int | None]],
    lines: Sequence[str],
    summary: str,
) -> None:
    """Keep what a first sync did (``writes``: path, cache file or bytes, executable, and the
    cache file's size and mtime when its index knows them: no stat per file).

    Links are kept by directory: (venv directory, cache directory, [(name, size, mtime)]). A
    cache entry holds a wheel's files under the same relative paths as the venv, so a large
    sync's record is a few thousand directory pairs and short names (a quarter of the bytes one
    (path, source) pair per file took), which this writes and a replay reads the quicker.
    """
    import json

    try:
        st = os.stat(python)
        groups: dict[tuple[str, str], list[tuple[str, int, int]]] = {}
        data = []
        dirs: set[str] = set()
        state_fingerprint = None

        def parents(parent: str) -> None:
            while parent and parent not in dirs:
                dirs.add(parent)
                parent = parent.rpartition("/")[0]

        # the group of the last link: a wheel's files come one directory after another, so
        # most links only need their name split off and their source compared
        last_parent: str | None = None
        last_prefix = ""
        files: list[tuple[str, int, int]] = []
        for rel, src, raw, executable, size, mtime in writes:
            if src is not None:
                if mtime is None:
                    s = os.stat(src)
                    size, mtime = s.st_size, s.st_mtime_ns
                rparent, _, name = rel.rpartition("/")
                if rparent != last_parent or src != last_prefix + name:
                    sparent, _, sname = src.rpartition("/")
                    if name != sname:
                        return  # a link named otherwise than its cache file: not replayable
                    group = groups.get((rparent, sparent))
                    if group is None:
                        parents(rparent)
                        group = groups[rparent, sparent] = []
                    files = group
                    last_parent, last_prefix = rparent, sparent + "/"
                files.append((name, size, mtime))
            else:
                assert raw is not None
                parents(rel.rpartition("/")[0])
                data.append((rel, raw, executable))
                if rel == STATE:
                    state_fingerprint = json.loads(raw)["fingerprint"]
        doc = {
            "venv": venv,
            "python": (python, st.st_size, st.st_mtime_ns),
            # parents before their children
            "dirs": sorted(dirs, key=lambda d: (d.count("/"), d)),
            "groups": [(r, s, files) for (r, s), files in groups.items()],
            "count": sum(len(files) for files in groups.values()) + len(data),
            "data": data,
            "fingerprint": state_fingerprint,
            "lines": list(lines),
            "summary": summary,
        }
    except OSError:
        return  # a cache file gone already: nothing worth replaying
    if state_fingerprint is None:
        return
    from .cachedir import write_entry

    write_entry(path, marshal.dumps(doc))


def _locks(venv: str, cache_dir: str) -> list[int] | None:
    """The venv lock and a shared cache lock, as the full path takes them; None when busy."""
    import fcntl

    fds: list[int] = []
    try:
        for path, mode in (
            (lock_file(venv), fcntl.LOCK_EX),
            (os.path.join(cache_dir, ".lock"), fcntl.LOCK_SH),
        ):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fds.append(fd)
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except OSError:
        for fd in fds:
            os.close(fd)
        return None  # somebody else is at work: the full path waits properly
    return fds


def _load(path: str) -> dict[str, Any] | None:
    """The record at ``path`` when its interpreter is still the one recorded, else None
    (its cache files are checked as they are linked: ``_links``)."""
    try:
        with open(path, "rb") as f:
            doc = marshal.loads(f.read())
        exe, size, mtime = doc["python"]
        st = os.stat(exe)
        if (st.st_size, st.st_mtime_ns) != (size, mtime):
            return None
    except Exception:  # gone, torn, from another envmat: the full path
        return None
    return doc  # type: ignore[no-any-return]


def try_replay(
    lock: str,
    venv: str,
    python: str | None,
    cache_dir: str,
    options: Mapping[str, Any],
    link_mode: str,
) -> tuple[list[str], str] | None:
    """(lines to print, summary) after replaying a record into the new ``venv``; None to take
    the full path (nothing is left behind then)."""
    venv = os.path.abspath(venv)
    marker = creating_marker(venv)
    if link_mode not in ("auto", "hardlink") or os.path.lexists(venv) or os.path.lexists(marker):
        return None
    if python is not None and os.sep not in python:
        return None  # a version or a name on PATH: which interpreter it means can change
    path = recipe_path(cache_dir, lock, python, options, link_mode)
    doc = _load(path) if path is not None else None
    if doc is None or not os.path.isdir(os.path.dirname(venv)):
        return None
    fds = _locks(venv, cache_dir)
    if fds is None:
        return None
    try:
        if os.path.lexists(venv):
            return None
        with open(marker, "w"):
            pass
        try:
            made = _make(venv, cache_dir, doc, lock, options)
        except BaseException as e:
            import shutil

            shutil.rmtree(venv, ignore_errors=True)
            os.unlink(marker)
            if not isinstance(e, Exception):
                raise  # Ctrl-C: nothing is left behind, the CLI says so
            # whatever went wrong, the full path will meet it again and say what it is
            return None
        if not made:
            os.unlink(marker)
            return None
        os.unlink(marker)
    finally:
        for fd in reversed(fds):
            os.close(fd)
    lines = list(doc["lines"])
    if not sys.stderr.isatty():  # as the full path's progress lines (report.LineProgress)
        lines.insert(0, f"Installing {doc['count']} file(s)")
    return lines, doc["summary"].replace("@VENV@", venv)


def _make(
    venv: str,
    cache_dir: str,
    doc: Mapping[str, Any],
    lock: str,
    options: Mapping[str, Any],
) -> bool:
    """Make ``venv`` as recorded; False (nothing made) when its venv template is gone."""
    from .fs import SPLIT_AT, by_depth, in_two, write_bytes
    from .venvclone import clone, find_template

    template = find_template(doc["python"][0], cache_dir)
    if template is None:
        return False  # the full path makes the template again
    clone(*template, venv)
    root = venv + "/"
    dirs, groups = doc["dirs"], doc["groups"]
    if len(dirs) + doc["count"] < SPLIT_AT:
        _mkdirs(root, dirs)
        _links(root, groups)
    else:
        in_two(lambda part: _mkdirs(root, part), by_depth(dirs))
        in_two(lambda part: _links(root, part), [groups])
    # generated bytes name their venv (launchers' shebangs): rewrite them, then the RECORD rows
    # that hash them, and the state file's fingerprint
    old, new = doc["venv"].encode(), venv.encode()
    renamed: dict[bytes, bytes] = {}
    later = []
    for rel, data, executable in doc["data"]:
        if rel.endswith(".dist-info/RECORD") or rel == STATE:
            later.append((rel, data, executable))
            continue
        if old in data:
            fixed = data.replace(old, new)
            renamed[_row(data)] = _row(fixed)
            data = fixed
        write_bytes(root + rel, data, executable)
    for rel, data, executable in later:
        if rel == STATE:
            fp = fingerprint(lock, venv, options)
            if fp is None:
                raise OSError("the new venv has no interpreter")
            was = f'"fingerprint": "{doc["fingerprint"]}"'.encode()
            if data.count(was) != 1:
                raise ValueError("the recorded state file names no fingerprint")
            data = data.replace(was, f'"fingerprint": "{fp}"'.encode())
        else:
            for a, b in renamed.items():
                data = data.replace(a, b)
        write_bytes(root + rel, data, executable)
    return True


def _mkdirs(root: str, dirs: Sequence[str]) -> None:
    from .fs import op

    for d in dirs:
        op()
        try:  # noqa: SIM105  (contextlib is not imported on this path)
            os.mkdir(root + d)
        except FileExistsError:
            pass  # made by the venv template (bin, lib/pythonX.Y/site-packages)


class _Changed(Exception):
    """A cache file is not as recorded: edited through a hard link, or its entry made again."""


def _links(root: str, groups: Sequence[Sequence[Any]]) -> None:
    """Link each recorded cache file, once it is seen unchanged (size and mtime; checked here,
    in the two linking threads, rather than in a pass of its own before: a ``large`` venv has
    16,500 of them). ``_Changed`` undoes the replay: the full path checks the files."""
    from .fs import op

    for rparent, sparent, files in groups:
        into = f"{root}{rparent}/" if rparent else root
        sparent += "/"
        for name, size, mtime in files:
            op()
            src = sparent + name
            s = os.stat(src)
            if s.st_mtime_ns != mtime or s.st_size != size:
                raise _Changed(src)
            os.link(src, into + name)


def _row(data: bytes) -> bytes:
    """The hash and size columns of a RECORD row for ``data`` (PEP 376)."""
    from binascii import b2a_base64

    digest = b2a_base64(sha256(data).digest(), newline=False).rstrip(b"=")
    digest = digest.replace(b"+", b"-").replace(b"/", b"_")  # urlsafe, as RECORD wants
    return b"sha256=" + digest + b"," + str(len(data)).encode() + b"\n"


def main_replay(
    lock: str,
    venv: str,
    options: Mapping[str, Any],
    quiet: bool,
    given: Mapping[str, str],
    start: float,
) -> int | None:
    """The CLI's side: replay and print what the full path would; None to take the full path."""
    cache_dir = given.get("--cache-dir") or cache_root()
    link_mode = given.get("--link-mode") or os.environ.get("ENVMAT_LINK_MODE", "auto")
    done = try_replay(lock, venv, given.get("--python"), cache_dir, options, link_mode)
    if done is None:
        return None
    if not quiet:
        import time

        lines, summary = done
        for line in lines:
            print(line, file=sys.stderr)
        print(summary.replace("@ELAPSED@", f"{time.perf_counter() - start:.2f}s"), file=sys.stderr)
    return 0
