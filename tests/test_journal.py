"""Journal recovery: rollback before the commit point, finish after it; idempotent."""

from __future__ import annotations

import os
from pathlib import Path

from envmat import journal as jr


def _setup(prefix: Path) -> jr.Journal:
    (prefix / "lib").mkdir(parents=True)
    (prefix / "lib/replaced.py").write_text("old")
    (prefix / "lib/removed.py").write_text("bye")
    j = jr.Journal(
        txid="t1",
        writes=(("lib/replaced.py", True), ("lib/new/added.py", False)),
        removes=("lib/removed.py",),
        dirs=("lib/new",),
    )
    jr.write_journal(prefix, j)
    return j


def _apply_partially(prefix: Path, j: jr.Journal) -> None:
    """Everything up to the commit point: stage, stash, rename."""
    (prefix / "lib/new").mkdir()
    for path, _ in j.writes:
        (prefix / jr.staging_name(path, j.txid)).write_text("new")
    (prefix / jr.stash_dir(j.txid)).mkdir()
    os.rename(prefix / "lib/replaced.py", prefix / jr.stash_name(j.txid, 0))
    os.rename(prefix / "lib/removed.py", prefix / jr.stash_name(j.txid, 2))
    for path, _ in j.writes:
        os.replace(prefix / jr.staging_name(path, j.txid), prefix / path)


def test_rollback_restores_everything(tmp_path: Path) -> None:
    j = _setup(tmp_path)
    _apply_partially(tmp_path, j)
    assert jr.recover(tmp_path, {""}) is not None
    assert (tmp_path / "lib/replaced.py").read_text() == "old"
    assert (tmp_path / "lib/removed.py").read_text() == "bye"
    assert not (tmp_path / "lib/new").exists()
    assert sorted(os.listdir(tmp_path / ".envmat")) == []
    assert jr.recover(tmp_path, {""}) is None  # nothing left to do


def test_rollback_of_a_journal_with_nothing_done(tmp_path: Path) -> None:
    _setup(tmp_path)
    assert "rolled back" in (jr.recover(tmp_path, {""}) or "")
    assert (tmp_path / "lib/replaced.py").read_text() == "old"


def test_finish_after_commit(tmp_path: Path) -> None:
    j = _setup(tmp_path)
    _apply_partially(tmp_path, j)
    jr.commit(tmp_path)
    assert "finished" in (jr.recover(tmp_path, {""}) or "")
    assert (tmp_path / "lib/replaced.py").read_text() == "new"
    assert (tmp_path / "lib/new/added.py").read_text() == "new"
    assert not (tmp_path / "lib/removed.py").exists()
    assert not (tmp_path / jr.stash_dir("t1")).exists()


def test_staging_names_are_never_importable() -> None:
    name = jr.staging_name("lib/site/zz.pth", "abc")
    assert name.startswith("lib/site/.") and not name.endswith((".pth", ".py"))


def test_prune_dirs_removes_what_the_change_emptied_and_nothing_else(tmp_path: Path) -> None:
    """Deepest first; a directory that still holds something keeps its parents (they are not
    tried: each would fail), whatever order the removed paths come in."""
    for d in ("sp/pkg/sub/deep", "sp/pkg/other", "sp/keep/inner", "share/tool/1", "stop"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "sp/pkg/other/still.txt").write_text("owned by someone else")
    (tmp_path / "sp/keep/inner/file").write_text("x")
    removed = [
        "share/tool/1/notes.txt",
        "sp/pkg/sub/deep/a.py",
        "sp/pkg/sub/b.py",
        "sp/keep/gone.py",
        "stop/x",
    ]
    jr.prune_dirs(tmp_path, removed, {"sp", "share", "stop", ""})
    assert not (tmp_path / "sp/pkg/sub").exists()  # emptied: gone, deepest first
    assert not (tmp_path / "share/tool").exists()
    assert (tmp_path / "sp/pkg/other/still.txt").exists() and (tmp_path / "sp/pkg").is_dir()
    assert (tmp_path / "sp/keep/inner/file").exists()
    assert (tmp_path / "share").is_dir() and (tmp_path / "stop").is_dir()  # scheme roots stay
