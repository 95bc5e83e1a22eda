"""The transaction journal under ``<venv>/.envmat/``: what a sync is about to change, and recovery.

Protocol (DESIGN.md §4): the journal is written and fsynced before the first change; replaced
and removed files are moved into ``stash-<txid>/``; new bytes are staged beside their targets as
``.<name>.envmat-<txid>``; renaming ``journal.json`` to ``journal.committed`` is the commit point.
Recovery is idempotent, so a process killed while recovering is recovered by the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
from pathlib import Path
from typing import Any, Literal

from attrs import frozen

from .fs import fsync_dir, op
from .installed import STATE_DIR

JOURNAL = f"{STATE_DIR}/journal.json"
COMMITTED = f"{STATE_DIR}/journal.committed"


@frozen(kw_only=True)
class Journal:
    txid: str
    #: [path, existed-before] for each file written, in journal order
    writes: tuple[tuple[str, bool], ...]
    removes: tuple[str, ...]
    #: directories the transaction creates, shallow first
    dirs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "txid": self.txid,
            "writes": [list(w) for w in self.writes],
            "removes": list(self.removes),
            "dirs": list(self.dirs),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Journal:
        return cls(
            txid=d["txid"],
            writes=tuple((p, bool(e)) for p, e in d["writes"]),
            removes=tuple(d["removes"]),
            dirs=tuple(d["dirs"]),
        )


def staging_name(path: str, txid: str) -> str:
    head, tail = posixpath.split(path)
    # a dot name with no .py/.pth suffix: never imported or read by site.py while staged
    return posixpath.join(head, f".{tail}.envmat-{txid}")


def stash_dir(txid: str) -> str:
    return f"{STATE_DIR}/stash-{txid}"


def stash_name(txid: str, index: int) -> str:
    return f"{stash_dir(txid)}/{index}"


def write_journal(prefix: Path, journal: Journal, durable: bool = True) -> None:
    """Write the journal; ``durable``: fsynced, so that it survives a power loss as well."""
    state = prefix / STATE_DIR
    state.mkdir(exist_ok=True)
    tmp = state / f"journal.json.tmp-{journal.txid}"
    data = json.dumps(journal.to_json()).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, prefix / JOURNAL)
    if durable:
        fsync_dir(str(state))


def commit(prefix: Path, durable: bool = True) -> None:
    op()
    os.replace(prefix / JOURNAL, prefix / COMMITTED)
    if durable:
        fsync_dir(str(prefix / STATE_DIR))


def read_pending(prefix: Path) -> tuple[Literal["commit", "rollback"], Journal] | None:
    for name, kind in ((COMMITTED, "commit"), (JOURNAL, "rollback")):
        try:
            raw = (prefix / name).read_bytes()
        except FileNotFoundError:
            continue
        return kind, Journal.from_json(json.loads(raw))  # type: ignore[return-value]
    return None


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def prune_dirs(prefix: Path, paths: list[str], stop: set[str]) -> None:
    """Remove directories left empty by removed files, deepest first, never a scheme root."""
    candidates: set[str] = set()
    for p in paths:
        d = posixpath.dirname(p)
        while d and d not in stop:
            candidates.add(d)
            d = posixpath.dirname(d)
    base = os.fspath(prefix)
    kept: set[str] = set()  # directories still holding something, and so their parents
    for d in sorted(candidates, key=lambda x: x.count("/"), reverse=True):
        if d in kept:
            continue
        try:
            os.rmdir(f"{base}/{d}")
        except FileNotFoundError:
            pass  # already gone
        except OSError:
            # not empty: somebody still owns something there, and so in every parent
            parent = posixpath.dirname(d)
            while parent and parent not in kept:
                kept.add(parent)
                parent = posixpath.dirname(parent)


def finish(prefix: Path, journal: Journal, stop: set[str], durable: bool = True) -> None:
    """After the commit point: drop the stash and the directories the change emptied."""
    op(cleanup=True)
    shutil.rmtree(prefix / stash_dir(journal.txid), ignore_errors=True)
    op(cleanup=True)
    # only removals can empty a directory; writes only ever fill them
    prune_dirs(prefix, list(journal.removes), stop)
    op(cleanup=True)
    _unlink(prefix / COMMITTED)
    if durable:
        fsync_dir(str(prefix / STATE_DIR))


def rollback(prefix: Path, journal: Journal) -> None:
    """Before the commit point: put every stashed file back and remove what was added."""
    # each step is counted only when it changes something, so a kill lands on real work
    for i, (path, existed) in enumerate(journal.writes):
        staged = prefix / staging_name(path, journal.txid)
        if os.path.lexists(staged):
            op(cleanup=True)
            _unlink(staged)
        stashed = prefix / stash_name(journal.txid, i)
        if os.path.lexists(stashed):
            op(cleanup=True)
            os.replace(stashed, prefix / path)
        elif not existed and os.path.lexists(prefix / path):
            op(cleanup=True)
            _unlink(prefix / path)
    base = len(journal.writes)
    for j, path in enumerate(journal.removes):
        stashed = prefix / stash_name(journal.txid, base + j)
        if os.path.lexists(stashed):
            op(cleanup=True)
            os.replace(stashed, prefix / path)
    for d in reversed(journal.dirs):
        if os.path.isdir(prefix / d):
            op(cleanup=True)
            with contextlib.suppress(OSError):
                os.rmdir(prefix / d)
    op(cleanup=True)
    shutil.rmtree(prefix / stash_dir(journal.txid), ignore_errors=True)
    op(cleanup=True)
    _unlink(prefix / JOURNAL)
    fsync_dir(str(prefix / STATE_DIR))


def _drop_torn_journals(prefix: Path) -> None:
    """A process killed inside ``write_journal`` leaves its temporary file and changed nothing."""
    try:
        names = os.listdir(prefix / STATE_DIR)
    except OSError:
        return
    for name in names:
        if name.startswith("journal.json.tmp-"):
            _unlink(prefix / STATE_DIR / name)


def recover(prefix: Path, stop: set[str]) -> str | None:
    """Finish or roll back an interrupted sync; returns what was done, for the user."""
    _drop_torn_journals(prefix)
    pending = read_pending(prefix)
    if pending is None:
        return None
    kind, journal = pending
    if kind == "commit":
        finish(prefix, journal, stop)
        return "finished an interrupted sync (it had reached its commit point)"
    rollback(prefix, journal)
    return "rolled back an interrupted sync; the venv is as it was before it"
