"""No interruption can leave a venv that the next envmat command does not repair to exactly the lock.

A sync from lock A to lock B is stopped at every counted filesystem change
(``ENVMAT_FAULT_KILL_AFTER=k`` makes the process ``os._exit(137)`` there, as SIGKILL would), at
injected ``ENOSPC``/``EACCES`` errors, by a real ``kill -9`` from outside, and while recovering
from an earlier kill; the next run must leave the venv file for file equal to a clean sync of B
into a fresh venv at the same path (DESIGN.md §4, §7).
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.conftest import run_envmat, tree_snapshot
from tests.wheelmaker import make_wheel, package_entry, wheel_entry, write_pylock

NS_INIT = "# namespace package shared by the nvidia-style wheels\n__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
KILLED = 137
PARTS = 3  # the kill-at-every-operation loop is split so that xdist can spread it

Tree = dict[str, Any]


# --- helpers shared with test_concurrency.py and test_properties.py ---------------------------


def venv_tree(venv: Path, *, pycache: bool = False) -> Tree:
    """Every file (relative path -> (sha256, mode)) and every directory (``"d/" -> "dir"``).

    ``__pycache__`` is left out unless ``pycache``; symlinks are recorded, never followed.
    """
    ignore = () if pycache else ("__pycache__",)
    out: Tree = dict(tree_snapshot(venv, ignore=ignore))
    for dirpath, dirnames, _ in os.walk(venv):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if d not in ignore and not (here / d).is_symlink()]
        for d in dirnames:
            out[(here / d).relative_to(venv).as_posix() + "/"] = "dir"
    return dict(sorted(out.items()))


def tree_diff(got: Tree, want: Tree) -> list[str]:
    lines = [f"missing: {k}" for k in sorted(want.keys() - got.keys())]
    lines += [f"unexpected: {k}" for k in sorted(got.keys() - want.keys())]
    lines += [f"differs: {k}" for k in sorted(got.keys() & want.keys()) if got[k] != want[k]]
    return lines


def assert_same_tree(got: Tree, want: Tree, what: str = "") -> None:
    diff = tree_diff(got, want)
    assert not diff, f"{what}: venv differs from the reference:\n" + "\n".join(diff[:40])


def make_empty_venv(path: Path) -> None:
    """What envmat's own venv creation runs (``python -m venv --without-pip``) for the same python."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, capture_output=True
    )


def restore(src: Path, dst: Path) -> None:
    if os.path.lexists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)


def write_lock(path: Path, wheels: Mapping[str, Path]) -> Path:
    """A pylock.toml naming each wheel (name -> file) by a path relative to the lock."""
    pkgs = [
        package_entry(name, whl.name.split("-")[1], [wheel_entry(whl, base=path.parent)])
        for name, whl in sorted(wheels.items())
    ]
    return write_pylock(path, pkgs)


def site_packages(venv: Path) -> Path:
    (sp,) = venv.glob("lib/python3.*/site-packages")
    return sp


def sync_ok(
    lock: Path, venv: Path, env: Mapping[str, str | None]
) -> subprocess.CompletedProcess[str]:
    proc = run_envmat("sync", lock, "--venv", venv, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


@attrs.define
class Scenario:
    """Lock A synced into ``venv`` (and copied to ``pristine``), the reference trees of A and B."""

    root: Path
    venv: Path
    empty: Path
    pristine: Path
    lock_a: Path
    lock_b: Path
    env: dict[str, str | None]
    tree_a: Tree  # with __pycache__: A was byte-compiled
    ref_b: Tree
    modules_a: dict[str, bytes]
    ops: int  # counted filesystem changes of the sync A -> B

    def reset(self) -> None:
        restore(self.pristine, self.venv)

    def sync(self, lock: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return run_envmat("sync", lock, "--venv", self.venv, env={**self.env, **env})

    def check_no_stale_bytecode(self) -> None:
        """Every ``.pyc`` left is of a module whose source is unchanged since A compiled it."""
        sp = site_packages(self.venv)
        for pyc in sp.rglob("__pycache__/*.pyc"):
            src = pyc.parent.parent / (pyc.name.split(".")[0] + ".py")
            rel = src.relative_to(sp).as_posix()
            assert src.is_file(), f"stale {pyc.relative_to(sp)}: {rel} is gone"
            assert self.modules_a.get(rel) == src.read_bytes(), f"stale {pyc.relative_to(sp)}"


def count_ops(venv: Path, lock: Path, cache: Path) -> int:
    """The number of counted changes of one sync, by running it in-process with the hook counting."""
    import envmat
    from envmat import fs

    faults = fs._faults
    saved = (faults.kill_after, faults.errno_after, faults.count)
    # an errno far beyond reach makes the hook count without ever acting
    faults.kill_after, faults.errno_after, faults.count = None, (errno.ENOSPC, 10**9), 0
    try:
        envmat.sync(lock, venv, cache_dir=cache)
        return faults.count
    finally:
        faults.kill_after, faults.errno_after, faults.count = saved


def build_ab_wheels(out: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Lock A's and lock B's wheels (see the module docstring of each change below)."""
    out.mkdir(parents=True, exist_ok=True)
    same = "SAME = 'unchanged between 1.0 and 2.0'\n"
    a1 = make_wheel(
        out,
        "a",
        "1.0",
        files={
            "a/__init__.py": "V = '1'\ndef main():\n    print('a', V)\n",
            "a/same.py": same,
            "a/changed.py": "X = 1\n",
            "a/gone.py": "GONE = True\n",
            "a/sub/__init__.py": "",
            "a/sub/deep.py": "DEEP = 1\n",
        },
        entry_points={"console_scripts": {"a-cli": "a:main"}},
    )
    a2 = make_wheel(
        out,
        "a",
        "2.0",
        files={
            "a/__init__.py": "V = '2'\ndef main():\n    print('a', V)\n",
            "a/same.py": same,  # same bytes: kept in place by the upgrade
            "a/changed.py": "X = 2\n",
            "a/new.py": "NEW = True\n",
            "a/newsub/x.py": "X = 'new dir'\n",
        },
        entry_points={"console_scripts": {"a-cli": "a:main"}},
    )
    ns1 = make_wheel(
        out,
        "shared-ns-1",
        "1.0",
        files={
            "nvidia/__init__.py": NS_INIT,
            "nvidia/one/__init__.py": "",
            "nvidia/one/lib.py": "ONE = 1\n",
        },
    )
    ns2 = make_wheel(
        out,
        "shared-ns-2",
        "1.0",
        files={
            "nvidia/__init__.py": NS_INIT,
            "nvidia/two/__init__.py": "",
            "nvidia/two/lib.py": "TWO = 2\n",
        },
    )
    b1 = make_wheel(
        out,
        "b",
        "1.0",
        files={
            "b/__init__.py": "def main():\n    print('b')\n",
            "common/util.py": "UTIL = 'moves from b to c unchanged'\n",
            "common/other.py": "OTHER = 'b'\n",
        },
        entry_points={"console_scripts": {"b-tool": "b:main"}},
        data={
            "data": {"share/b/b.txt": "b data\n"},
            "scripts": {"b-sh": "#!python\nprint('b-sh')\n"},
        },
    )
    c1 = make_wheel(
        out,
        "c",
        "1.0",
        files={
            "c/__init__.py": "def main():\n    print('c')\n",
            "c/x/y/z.py": "Z = 1\n",
            "common/util.py": "UTIL = 'moves from b to c unchanged'\n",
            "common/other.py": "OTHER = 'c'\n",
        },
        entry_points={"console_scripts": {"c-tool": "c:main"}},
        data={"data": {"share/c/deep/c.txt": "c data\n"}},
    )
    lock_a = {"a": a1, "shared-ns-1": ns1, "shared-ns-2": ns2, "b": b1}
    lock_b = {"a": a2, "shared-ns-2": ns2, "c": c1}
    return lock_a, lock_b


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    root = tmp_path_factory.mktemp("faults")
    cache = root / "cache"
    env: dict[str, str | None] = {
        "ENVMAT_CACHE_DIR": str(cache),
        "ENVMAT_FAULT_KILL_AFTER": None,
        "ENVMAT_FAULT_ERRNO": None,
    }
    wheels_a, wheels_b = build_ab_wheels(root / "wheels")
    lock_a = write_lock(root / "A" / "pylock.toml", wheels_a)
    lock_b = write_lock(root / "B" / "pylock.toml", wheels_b)
    venv, empty, pristine = root / "venv", root / "empty", root / "pristine"
    make_empty_venv(venv)
    shutil.copytree(venv, empty, symlinks=True)
    # the reference: B synced into a fresh venv at the very path the tests use
    sync_ok(lock_b, venv, env)
    ref_b = venv_tree(venv)
    restore(empty, venv)
    sync_ok(lock_a, venv, env)
    sp = site_packages(venv)
    # byte-compile A so that stale .pyc handling is part of every transaction
    subprocess.run([venv / "bin/python", "-m", "compileall", "-q", sp], check=True)
    modules_a = {p.relative_to(sp).as_posix(): p.read_bytes() for p in sp.rglob("*.py")}
    shutil.copytree(venv, pristine, symlinks=True)
    tree_a = venv_tree(venv, pycache=True)
    assert any("__pycache__" in k for k in tree_a)
    ops = count_ops(venv, lock_b, cache)
    assert venv_tree(venv) == ref_b  # the in-process sync is a sync too
    restore(pristine, venv)
    return Scenario(
        root=root,
        venv=venv,
        empty=empty,
        pristine=pristine,
        lock_a=lock_a,
        lock_b=lock_b,
        env=env,
        tree_a=tree_a,
        ref_b=ref_b,
        modules_a=modules_a,
        ops=ops,
    )


def transaction_leftovers(venv: Path) -> list[str]:
    """Journals, their temporary files and stashes in ``.envmat/`` (none once a run is over)."""
    return [n for n in os.listdir(venv / ".envmat") if n.startswith(("journal", "stash-"))]


def journal_state(venv: Path) -> str | None:
    if (venv / ".envmat/journal.committed").exists():
        return "committed"
    if (venv / ".envmat/journal.json").exists():
        return "pending"
    return None


def recovery_message(state: str | None) -> str:
    return {
        "committed": "finished an interrupted sync",
        "pending": "rolled back an interrupted sync",
    }[state or "pending"]


# --- killed at every counted operation ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("part", range(PARTS))
def test_kill_at_every_operation_then_next_command_converges(scenario: Scenario, part: int) -> None:
    s = scenario
    assert s.ops > 20, "the A -> B sync should be a transaction of some size"
    seen: set[str | None] = set()
    k = part + 1
    while True:
        s.reset()
        proc = s.sync(s.lock_b, ENVMAT_FAULT_KILL_AFTER=str(k))
        if k > s.ops:
            # past the last counted change: the hook never fires
            assert proc.returncode == 0, proc.stderr
            assert_same_tree(venv_tree(s.venv), s.ref_b, f"uninterrupted (k={k})")
            break
        assert proc.returncode == KILLED, f"k={k}: {proc.returncode}\n{proc.stderr}"
        state = journal_state(s.venv)
        assert state is not None, f"k={k}: killed mid-transaction without a journal"
        seen.add(state)
        if k % 8 == 0 or state == "committed":
            # any envmat command on the venv recovers first and says so; plan changes nothing else
            plan = run_envmat("plan", s.lock_b, "--venv", s.venv, env=s.env)
            assert plan.returncode == 0, plan.stderr
            assert recovery_message(state) in plan.stderr, f"k={k}: {plan.stderr}"
            want = s.ref_b if state == "committed" else s.tree_a
            got = venv_tree(s.venv, pycache=state != "committed")
            if state != "committed":
                assert_same_tree(got, want, f"plan after a kill at k={k} must roll back to A")
            else:
                assert_same_tree(got, want, f"plan after a kill at k={k} must finish B")
            assert journal_state(s.venv) is None
        proc = s.sync(s.lock_b)
        assert proc.returncode == 0, f"k={k}: {proc.stderr}"
        if k % 8 != 0 and state != "committed":
            assert recovery_message(state) in proc.stderr, f"k={k}: {proc.stderr}"
        assert_same_tree(venv_tree(s.venv), s.ref_b, f"after a kill at k={k}")
        s.check_no_stale_bytecode()
        assert not transaction_leftovers(s.venv), f"k={k}"
        k += PARTS
    # the last three changes come after the commit point (dropping the stash and emptied dirs),
    # so every part met both kinds of leftover journal
    assert seen == {"pending", "committed"}


@pytest.mark.slow
@pytest.mark.parametrize("where", ["early", "middle", "before-commit", "after-commit"])
def test_recovery_itself_killed_then_next_run_converges(scenario: Scenario, where: str) -> None:
    s = scenario
    k = {"early": 2, "middle": s.ops // 2, "before-commit": s.ops - 3, "after-commit": s.ops - 1}[
        where
    ]
    for k2 in (1, 2, 3):
        s.reset()
        assert s.sync(s.lock_b, ENVMAT_FAULT_KILL_AFTER=str(k)).returncode == KILLED
        first = journal_state(s.venv)
        assert first == ("committed" if where == "after-commit" else "pending"), where
        # the follow-up run counts its recovery's changes first: k2 lands inside the recovery
        assert s.sync(s.lock_b, ENVMAT_FAULT_KILL_AFTER=str(k2)).returncode == KILLED
        proc = s.sync(s.lock_b)
        assert proc.returncode == 0, proc.stderr
        assert_same_tree(venv_tree(s.venv), s.ref_b, f"kill at {k}, then at {k2} of the recovery")
        s.check_no_stale_bytecode()


def test_recovery_is_counted_so_kills_can_land_inside_it(scenario: Scenario) -> None:
    """A kill in the middle of rolling back must leave a journal that is still rolled back."""
    s = scenario
    s.reset()
    assert s.sync(s.lock_b, ENVMAT_FAULT_KILL_AFTER=str(s.ops - 3)).returncode == KILLED
    assert journal_state(s.venv) == "pending"
    journal = (s.venv / ".envmat/journal.json").read_bytes()
    # the rollback of a transaction that renamed everything into place has many steps
    assert s.sync(s.lock_b, ENVMAT_FAULT_KILL_AFTER="5").returncode == KILLED
    # still the first transaction's journal: the kill landed inside its rollback
    assert (s.venv / ".envmat/journal.json").read_bytes() == journal
    # plan finishes the rollback, so the venv is exactly A again (byte-compiled files included)
    plan = run_envmat("plan", s.lock_a, "--venv", s.venv, env=s.env)
    assert plan.returncode == 0, plan.stderr
    assert "rolled back an interrupted sync" in plan.stderr
    assert_same_tree(venv_tree(s.venv, pycache=True), s.tree_a, "rollback after a killed rollback")


def test_torn_journal_write_is_dropped(scenario: Scenario) -> None:
    """SIGKILL inside write_journal leaves only its temporary file; nothing was changed."""
    s = scenario
    s.reset()
    (s.venv / ".envmat/journal.json.tmp-0123456789ab").write_bytes(b'{"txid": "0123')
    proc = s.sync(s.lock_b)
    assert proc.returncode == 0, proc.stderr
    assert_same_tree(venv_tree(s.venv), s.ref_b, "after a torn journal")


# --- injected errors: the venv is restored byte for byte ---------------------------------------


@pytest.mark.parametrize("code", ["ENOSPC", "EACCES"])
def test_injected_error_restores_the_venv(scenario: Scenario, code: str) -> None:
    s = scenario
    # the first change, the stash, the renames into place, and the commit mark itself (ops - 3)
    ks = sorted({1, 2, s.ops // 3, s.ops // 2, (2 * s.ops) // 3, s.ops - 4, s.ops - 3})
    if code == "EACCES":
        ks = ks[::2]
    for k in ks:
        s.reset()
        proc = s.sync(s.lock_b, ENVMAT_FAULT_ERRNO=f"{code}:{k}")
        assert proc.returncode == 1, f"{code}:{k}: {proc.returncode}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr
        assert "the venv was restored" in proc.stderr, proc.stderr
        assert os.strerror(getattr(errno, code)) in proc.stderr, proc.stderr
        assert_same_tree(venv_tree(s.venv, pycache=True), s.tree_a, f"{code} at k={k}")
    # once the cause is gone, the same command succeeds
    proc = s.sync(s.lock_b)
    assert proc.returncode == 0, proc.stderr
    assert "interrupted" not in proc.stderr  # nothing was left to recover
    assert_same_tree(venv_tree(s.venv), s.ref_b, "after the errors")


# --- SIGKILL from outside at random moments ----------------------------------------------------


def _big_wheels(out: Path, per_wheel: int) -> tuple[dict[str, Path], dict[str, Path]]:
    """A: w00..w23 at 1.0; B: w00..w05 gone, w06..w23 at 2.0 (a quarter of the files changed,
    a quarter gone, new ones in new directories), w24..w29 new; all share a namespace file."""

    def files(i: int, version: str) -> dict[str, str]:
        fs_: dict[str, str] = {"bigns/__init__.py": NS_INIT}
        pkg = f"bigns/w{i:02d}"
        for j in range(per_wheel):
            sub = f"{pkg}/d{j % 7}"
            if version == "1.0" or j < per_wheel // 2:
                fs_[f"{sub}/m{j:03d}.py"] = f"# w{i} m{j}\nVALUE = {j}\n" + "x = 1\n" * (j % 13)
            elif j < 3 * per_wheel // 4:
                fs_[f"{sub}/m{j:03d}.py"] = f"# w{i} m{j} changed in {version}\nVALUE = -{j}\n"
            else:
                fs_[f"{pkg}/n{j % 5}/new{j:03d}.py"] = f"# w{i} new {j}\n"
        return fs_

    a: dict[str, Path] = {}
    b: dict[str, Path] = {}
    for i in range(30):
        name = f"w{i:02d}"
        if i < 24:
            a[name] = make_wheel(out, name, "1.0", files=files(i, "1.0"))
        if 6 <= i < 24:
            b[name] = make_wheel(out, name, "2.0", files=files(i, "2.0"))
        elif i >= 24:
            b[name] = make_wheel(out, name, "1.0", files=files(i, "1.0"))
    return a, b


@pytest.mark.slow
def test_sigkill_at_random_moments_then_sync_converges(tmp_path: Path, cache_dir: Path) -> None:
    env: dict[str, str | None] = {"ENVMAT_FAULT_KILL_AFTER": None, "ENVMAT_FAULT_ERRNO": None}
    # 30 wheels of 40 files: about 1,000 files change per sync (file creation is what costs)
    wheels_a, wheels_b = _big_wheels(tmp_path / "wheels", per_wheel=60)
    lock_a = write_lock(tmp_path / "A" / "pylock.toml", wheels_a)
    lock_b = write_lock(tmp_path / "B" / "pylock.toml", wheels_b)
    venv = tmp_path / "venv"
    sync_ok(lock_b, venv, env)
    ref_b = venv_tree(venv)
    shutil.rmtree(venv)
    sync_ok(lock_a, venv, env)
    ref_a = venv_tree(venv)
    # each change slowed a little (as on a slow disk) so that the transaction, not the
    # interpreter's start, fills most of a run: random kills then land inside it
    slow = {**env, "ENVMAT_FAULT_DELAY": "0.0005"}
    # how long an A -> B sync takes, start to exit, with a warm cache
    start = time.monotonic()
    sync_ok(lock_b, venv, slow)
    duration = time.monotonic() - start
    assert_same_tree(venv_tree(venv), ref_b, "uninterrupted")

    rng = random.Random(751)
    # a faster sync has a shorter transaction window: enough rounds that several land inside it
    rounds = 16
    outcomes = []
    child_env = {k: v for k, v in os.environ.items() if k not in env}
    child_env["ENVMAT_FAULT_DELAY"] = "0.0005"
    for i in range(rounds):
        # back to A with envmat itself: a converging sync in the other direction
        sync_ok(lock_a, venv, env)
        if i % 3 == 0:
            assert_same_tree(venv_tree(venv), ref_a, f"round {i}: back to A")
        # stratified over the whole run: interpreter start, planning, staging, renames, commit
        delay = 0.9 * duration * (i + rng.random()) / rounds
        proc = subprocess.Popen(
            [sys.executable, "-m", "envmat", "sync", str(lock_b), "--venv", str(venv)],
            env=child_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait()
        outcomes.append((round(delay, 3), rc, journal_state(venv)))
        again = run_envmat("sync", lock_b, "--venv", venv, env=env)
        assert again.returncode == 0, f"round {i} (delay {delay:.3f}s): {again.stderr}"
        assert_same_tree(venv_tree(venv), ref_b, f"round {i}, SIGKILL after {delay:.3f}s")
        assert not transaction_leftovers(venv), f"round {i}"
    # some kills must have landed inside a transaction, or the test tests nothing
    assert sum(state is not None for _, _, state in outcomes) >= 2, outcomes
