"""Property: whatever sequence of locks a venv was synced to, it ends equal to a fresh sync of the
last one (DESIGN.md §4: per-distribution and per-file diffs never leave anything behind).

The universe: six distributions in two versions each, with a namespace ``__init__.py`` shared by
three of them, files identical across versions, files that move between distributions,
``.data/scripts`` and ``.data/data`` files and console scripts.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envmat
from tests.test_faults import NS_INIT, make_empty_venv, write_lock
from tests.wheelmaker import make_wheel

VERSIONS = ("1.0", "2.0")
DISTS = ("ns-one", "ns-two", "ns-three", "tool", "mover", "other")


def _files(name: str, version: str) -> dict[str, object]:
    """make_wheel keyword arguments for one distribution version."""
    v = version
    if name.startswith("ns-"):
        part = name.split("-")[1]
        files = {
            "nsp/__init__.py": NS_INIT,  # identical in all three and both versions
            f"nsp/{part}/__init__.py": "",
            f"nsp/{part}/common.py": f"COMMON = '{part}'\n",  # identical across versions
            f"nsp/{part}/mod.py": f"VERSION = '{v}'\n",
        }
        if v == "1.0":
            files[f"nsp/{part}/old/legacy.py"] = "LEGACY = True\n"
        else:
            files[f"nsp/{part}/fresh/new.py"] = "NEW = True\n"
        return {"files": files}
    if name == "tool":
        return {
            "files": {"tool/__init__.py": f"def main():\n    print('tool {v}')\n"},
            "entry_points": {"console_scripts": {"tool": "tool:main", f"tool-{v[0]}": "tool:main"}},
            "data": {
                "scripts": {"tool-sh": "#!python\nprint('tool-sh')\n"},  # same in both
                "data": {f"share/tool/{v[0]}/notes.txt": f"notes {v}\n"},
            },
        }
    if name == "mover":
        files = {"mover/__init__.py": "", "mover/a.py": "A = 1\n"}
        if v == "1.0":
            files["shared_mod/util.py"] = "UTIL = 'shared'\n"  # also shipped by other 2.0
            files["mover/old/o.py"] = "O = 1\n"
        else:
            files["mover/new/n.py"] = "N = 1\n"
        return {"files": files}
    assert name == "other"
    files = {"other/__init__.py": f"V = '{v}'\n"}
    if v == "2.0":
        files["shared_mod/util.py"] = "UTIL = 'shared'\n"
    return {"files": files, "data": {"data": {"share/other/o.txt": "same in both\n"}}}


@attrs.define(repr=False)
class Universe:
    root: Path
    wheels: dict[tuple[str, str], Path]
    template: Path
    cache: Path
    counter: itertools.count = attrs.field(factory=itertools.count, repr=False)

    def lock(self, choice: Mapping[str, str]) -> Path:
        key = "_".join(f"{n}{v}" for n, v in sorted(choice.items())) or "empty"
        path = self.root / "locks" / key / "pylock.toml"
        if not path.exists():
            write_lock(path, {n: self.wheels[(n, v)] for n, v in choice.items()})
        return path

    def fresh_venv(self, path: Path | None = None) -> Path:
        venv = path or self.root / "venvs" / f"v{next(self.counter)}"
        shutil.copytree(self.template, venv, symlinks=True)
        return venv

    def sync(self, choice: Mapping[str, str], venv: Path) -> None:
        envmat.sync(self.lock(choice), venv, cache_dir=self.cache, jobs=4)


def snapshot(venv: Path) -> dict[str, object]:
    """Files (sha256, mode), symlinks and directories of a venv, ``__pycache__`` aside."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(venv):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for d in dirnames:
            out[(here / d).relative_to(venv).as_posix() + "/"] = "dir"
        for f in filenames:
            p = here / f
            rel = p.relative_to(venv).as_posix()
            if p.is_symlink():
                out[rel] = ("symlink", os.readlink(p))
            else:
                out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode & 0o777)
    return out


@pytest.fixture(scope="module")
def universe(tmp_path_factory: pytest.TempPathFactory) -> Universe:
    root = tmp_path_factory.mktemp("universe")
    wheels = {
        (n, v): make_wheel(root / "wheels", n, v, **_files(n, v))  # type: ignore[arg-type]
        for n in DISTS
        for v in VERSIONS
    }
    template = root / "template"
    make_empty_venv(template)
    return Universe(root=root, wheels=wheels, template=template, cache=root / "cache")


# a lock: a subset of the distributions, each at one of its versions
locks = st.dictionaries(st.sampled_from(DISTS), st.sampled_from(VERSIONS), max_size=len(DISTS))


@pytest.mark.slow
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(locks, min_size=2, max_size=4))
def test_any_sequence_of_syncs_ends_like_a_fresh_sync(
    universe: Universe, sequence: list[dict[str, str]]
) -> None:
    venv = universe.fresh_venv()
    try:
        for choice in sequence:
            universe.sync(choice, venv)
        got = snapshot(venv)
        # the reference at the same path: launchers and RECORD hashes depend on it
        shutil.rmtree(venv)
        universe.fresh_venv(venv)
        universe.sync(sequence[-1], venv)
        want = snapshot(venv)
        diff = sorted(
            [f"unexpected {k}" for k in got.keys() - want.keys()]
            + [f"missing {k}" for k in want.keys() - got.keys()]
            + [f"differs {k}" for k in got.keys() & want.keys() if got[k] != want[k]]
        )
        assert not diff, diff
    finally:
        shutil.rmtree(venv)


def test_the_universe_exercises_what_it_should(universe: Universe) -> None:
    """The shared files really are one file with several owners, and moves really happen."""
    venv = universe.fresh_venv()
    universe.sync({"ns-one": "1.0", "ns-two": "2.0", "mover": "1.0", "tool": "1.0"}, venv)
    (sp,) = venv.glob("lib/python3.*/site-packages")
    assert (sp / "nsp/__init__.py").read_text() == NS_INIT
    assert (venv / "share/tool/1/notes.txt").exists() and (venv / "bin/tool-1").exists()
    # shared_mod/util.py moves from mover 1.0 to other 2.0 with the same bytes
    universe.sync({"ns-two": "2.0", "mover": "2.0", "other": "2.0"}, venv)
    assert (sp / "shared_mod/util.py").read_text() == "UTIL = 'shared'\n"
    assert (sp / "nsp/__init__.py").exists() and not (sp / "nsp/one").exists()
    assert not (venv / "bin/tool").exists() and not (venv / "share/tool").exists()


def test_emptied_share_dir_is_removed(universe: Universe) -> None:
    venv = universe.fresh_venv()
    universe.sync({"tool": "1.0"}, venv)
    assert (venv / "share/tool/1/notes.txt").exists()
    universe.sync({}, venv)
    assert not (venv / "share/tool").exists()
    assert not (venv / "share").exists(), "a fresh sync of the same lock has no share/"


# --- conflicts: two distributions ship one path with different bytes ---------------------------

CONFLICT_LOCKS = ((), ("alpha",), ("zeta",), ("alpha", "zeta"))


@pytest.fixture(scope="module")
def conflict_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("conflict-wheels")
    return {
        name: make_wheel(
            out, name, "1.0", files={"clash/__init__.py": f"WHO = {name!r}\n", f"{name}.py": ""}
        )
        for name in ("alpha", "zeta")
    }


@pytest.mark.parametrize("first", CONFLICT_LOCKS, ids="+".join)
@pytest.mark.parametrize("second", CONFLICT_LOCKS, ids="+".join)
def test_a_conflicting_path_ends_as_a_fresh_sync_leaves_it(
    universe: Universe,
    conflict_wheels: dict[str, Path],
    tmp_path: Path,
    first: tuple[str, ...],
    second: tuple[str, ...],
) -> None:
    """The first distribution by name keeps the path, whatever was installed before."""
    locks = [
        write_lock(tmp_path / str(i) / "pylock.toml", {n: conflict_wheels[n] for n in names})
        for i, names in enumerate((first, second))
    ]
    venv = universe.fresh_venv(tmp_path / "venv")
    for lock in locks:
        envmat.sync(lock, venv, cache_dir=universe.cache)
    got = snapshot(venv)
    shutil.rmtree(venv)
    universe.fresh_venv(venv)
    envmat.sync(locks[-1], venv, cache_dir=universe.cache)
    assert got == snapshot(venv)
    (sp,) = venv.glob("lib/python3.*/site-packages")
    if second:
        assert (sp / "clash/__init__.py").read_text() == f"WHO = {second[0]!r}\n"


@settings(max_examples=400)
@given(
    site=st.sampled_from(["lib/python3.12/site-packages", "Lib/site-packages", ""]),
    path=st.text(alphabet="ab./\\", min_size=1, max_size=14),
)
def test_record_paths_are_normalised_as_normpath_would(site: str, path: str) -> None:
    """The venv scan's shortcut for RECORD rows that are already normal gives what
    normpath(join(site, path)) gives for every path (None for an absolute one), so no row
    escapes the venv check (installed.record_path_in_venv)."""
    import posixpath

    from envmat.installed import record_path_in_venv

    expected = None if posixpath.isabs(path) else posixpath.normpath(posixpath.join(site, path))
    assert record_path_in_venv(site, path) == expected


@settings(max_examples=500)
@given(name=st.text(alphabet="aZ09-_.É ", min_size=0, max_size=16) | st.text(max_size=12))
def test_installed_names_are_normalized_as_packaging_does(name: str) -> None:
    """The venv scan's own PEP 503 normalization (it avoids importing packaging.utils) gives
    what packaging.utils.canonicalize_name gives, for any text: installed and locked names must
    meet."""
    from packaging.utils import canonicalize_name

    from envmat.installed import normalize_name

    assert normalize_name(name) == canonicalize_name(name)
