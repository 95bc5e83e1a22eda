"""A fresh venv from a lock this cache has installed before: the first sync's work, replayed.

When a sync makes a new venv with hard links, it records what it did (``replays-v1/<key>.json``
in the cache): the cache files it linked (with the size and mtime each had), the bytes it
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

import base64
import contextlib
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .cachedir import code_stamp
from .venv import creating_marker
from .venvlock import lock_path

VERSION = 1
DIR = "replays-v1"
STATE = ".envmat/state.json"


def recipe_path(
    cache_dir: str, lock: str, python: str | None, options: Mapping[str, Any], link_mode: str
) -> str | None:
    """Where the record for this sync lives; None when the lock cannot be read."""
    try:
        with open(lock, "rb") as f:
            lock_bytes = f.read()
    except OSError:
        return None
    key = hashlib.sha256(lock_bytes)
    key.update(
        json.dumps(
            [
                VERSION,
                code_stamp(),
                os.path.dirname(os.path.abspath(lock)),
                # no --python: the interpreter running envmat makes the venv (venv.find_python)
                python or sys.executable,
                dict(options),
                link_mode,
            ],
            sort_keys=True,
            default=list,
        ).encode()
    )
    return os.path.join(cache_dir, DIR, key.hexdigest()[:40] + ".json")


def record(
    path: str,
    *,
    venv: str,
    python: str,
    writes: Sequence[tuple[str, str | None, bytes | None, bool]],
    lines: Sequence[str],
    summary: str,
) -> None:
    """Keep what a first sync did (``writes``: path, cache file or bytes, executable)."""
    try:
        st = os.stat(python)
        links = []
        data = []
        for rel, src, raw, executable in writes:
            if src is not None:
                s = os.stat(src)
                links.append([rel, src, s.st_size, s.st_mtime_ns])
            else:
                assert raw is not None
                data.append([rel, base64.b64encode(raw).decode(), executable])
        doc = {
            "venv": venv,
            "python": [python, st.st_size, st.st_mtime_ns],
            "links": links,
            "data": data,
            "lines": list(lines),
            "summary": summary,
        }
    except OSError:
        return  # a cache file gone already: nothing worth replaying
    from .cachedir import write_entry

    write_entry(Path(path), json.dumps(doc))


@contextlib.contextmanager
def _locks(venv: str, cache_dir: str) -> Iterator[bool]:
    """The venv lock and a shared cache lock, as the full path takes them; False when busy."""
    import fcntl

    fds = []
    try:
        for path, mode in (
            (str(lock_path(Path(venv))), fcntl.LOCK_EX),
            (os.path.join(cache_dir, ".lock"), fcntl.LOCK_SH),
        ):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fds.append(fd)
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except OSError:
        for fd in fds:
            os.close(fd)
        yield False  # somebody else is at work: the full path waits properly
        return
    try:
        yield True
    finally:
        for fd in reversed(fds):
            os.close(fd)


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
    marker = str(creating_marker(Path(venv)))
    if link_mode not in ("auto", "hardlink") or os.path.lexists(venv) or os.path.lexists(marker):
        return None
    if python is not None and os.sep not in python:
        return None  # a version or a name on PATH: which interpreter it means can change
    path = recipe_path(cache_dir, lock, python, options, link_mode)
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        exe, size, mtime = doc["python"]
        st = os.stat(exe)
        if (st.st_size, st.st_mtime_ns) != (size, mtime):
            return None
        for _, src, size, mtime in doc["links"]:
            s = os.stat(src)
            if (s.st_size, s.st_mtime_ns) != (size, mtime):
                return None  # edited through a hard link, or rebuilt: the full path checks it
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not os.path.isdir(os.path.dirname(venv)):
        return None
    with _locks(venv, cache_dir) as locked:
        if not locked or os.path.lexists(venv):
            return None
        with open(marker, "w"):
            pass
        try:
            _make(venv, exe, cache_dir, doc, lock, options)
        except BaseException as e:
            shutil.rmtree(venv, ignore_errors=True)
            os.unlink(marker)
            if not isinstance(e, Exception):
                raise  # Ctrl-C: nothing is left behind, the CLI says so
            # whatever went wrong, the full path will meet it again and say what it is
            return None
        os.unlink(marker)
    lines = list(doc["lines"])
    if not sys.stderr.isatty():  # as the full path's progress lines (report.LineProgress)
        lines.insert(0, f"Installing {len(doc['links']) + len(doc['data'])} file(s)")
    return lines, doc["summary"].replace("@VENV@", venv)


def _make(
    venv: str,
    python: str,
    cache_dir: str,
    doc: Mapping[str, Any],
    lock: str,
    options: Mapping[str, Any],
) -> None:
    from .fastpath import fingerprint
    from .fs import op, write_bytes
    from .venv import create_venv

    create_venv(Path(venv), Path(python), Path(cache_dir))
    old, new = doc["venv"].encode(), venv.encode()
    root = venv + "/"
    links = doc["links"]
    made = {d for d, _, _ in os.walk(venv)}
    for rel, *_ in links + doc["data"]:
        d = os.path.dirname(root + rel)
        chain = []
        while d not in made:
            made.add(d)
            chain.append(d)
            d = os.path.dirname(d)
        for d in reversed(chain):
            op()
            os.mkdir(d)
    for rel, src, _, _ in links:
        op()
        os.link(src, root + rel)
    # generated bytes name their venv (launchers' shebangs): rewrite them, then the RECORD rows
    # that hash them, and the state file's fingerprint
    renamed: dict[bytes, bytes] = {}
    later = []
    for rel, raw, executable in doc["data"]:
        data = base64.b64decode(raw)
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
            state = json.loads(data)
            state["fingerprint"] = fingerprint(lock, venv, options)
            data = json.dumps(state, sort_keys=True, indent=1).encode()
        else:
            for a, b in renamed.items():
                data = data.replace(a, b)
        write_bytes(root + rel, data, executable)


def _row(data: bytes) -> bytes:
    """The hash and size columns of a RECORD row for ``data`` (PEP 376)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
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
    from .cachedir import default_cache_dir

    cache_dir = given.get("--cache-dir") or str(default_cache_dir())
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
