"""Every bad input ends in a clear ``error:`` with a ``hint:``, exit 1, no traceback, the venv untouched."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import find_python, run_envmat, tree_snapshot
from tests.httpserver import FaultServer
from tests.wheelmaker import package_entry, sha256_file, wheel_entry, write_pylock

MakeWheel = Callable[..., Path]


# --- helpers ---------------------------------------------------------------------------------


def assert_user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 1, an ``error:`` line and a ``hint:`` line on stderr, no traceback; returns stderr."""
    err = proc.stderr
    assert proc.returncode == 1, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{err}"
    assert "Traceback" not in err and "Traceback" not in proc.stdout, err
    assert re.search(r"^error: \S", err, re.M), err
    assert re.search(r"^\s*hint: \S", err, re.M), err
    for needle in needles:
        assert needle in err, f"{needle!r} not in stderr:\n{err}"
    return err


def ok(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = run_envmat(*args)
    assert proc.returncode == 0, proc.stderr
    return proc


def dist_lock(
    path: Path, wheels: list[Path], *, url_for: Callable[[str], str] | None = None
) -> Path:
    """A pylock with one package per wheel, by relative path or (``url_for``) by URL."""
    pkgs = []
    for whl in wheels:
        name, version = whl.name.split("-")[:2]
        entry = (
            wheel_entry(whl, url=url_for(whl.name))
            if url_for
            else wheel_entry(whl, base=path.parent)
        )
        pkgs.append(package_entry(name.replace("_", "-"), version, [entry]))
    return write_pylock(path, pkgs)


@pytest.fixture
def synced(make_wheel: MakeWheel, tmp_path: Path) -> tuple[Path, Path]:
    """An existing venv synced from a good lock: (venv, good wheel)."""
    good = make_wheel("good-pkg", "1.0", files={"good_pkg/__init__.py": "X = 1\n"})
    venv = tmp_path / "venv"
    ok("sync", dist_lock(tmp_path / "good" / "pylock.toml", [good]), "--venv", venv)
    return venv, good


def snap(venv: Path) -> dict[str, tuple[str, int | str]]:
    # pyc caches are not envmat's; everything else must stay byte-identical
    return tree_snapshot(venv)


def serve(tmp_path: Path, whl: Path) -> Path:
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    return Path(shutil.copy(whl, served / whl.name))


# --- the lock file itself --------------------------------------------------------------------


def test_lock_file_missing(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    err = assert_user_error(run_envmat("sync", tmp_path / "nope.toml", "--venv", venv), "nope.toml")
    assert "does not exist" in err
    assert not venv.exists()


def test_lock_not_toml(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text('lock-version = "1.0"\npackages = [\n')
    venv = tmp_path / "venv"
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv), "pylock.toml")
    assert "TOML" in err
    assert not venv.exists()


def test_lock_not_utf8(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_bytes(b'lock-version = "1.0"\ncreated-by = "\xff\xfe caf\xe9"\n')
    venv = tmp_path / "venv"
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv), "pylock.toml")
    assert "UTF-8" in err
    assert not venv.exists()


def test_lock_is_a_directory(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.mkdir()
    venv = tmp_path / "venv"
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv), "pylock.toml")
    assert "directory" in err
    assert not venv.exists()


def test_lock_missing_created_by(
    make_wheel: MakeWheel, tmp_path: Path, synced: tuple[Path, Path]
) -> None:
    venv, good = synced
    before = snap(venv)
    lock = dist_lock(tmp_path / "bad" / "pylock.toml", [good])
    text = lock.read_text()
    lock.write_text(re.sub(r"^created-by = .*\n", "", text, flags=re.M))
    assert "created-by" not in lock.read_text()
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv), "created-by", "pylock.toml")
    assert "not a valid pylock" in err
    assert snap(venv) == before


def test_lock_empty_hashes_names_the_key_path(
    make_wheel: MakeWheel, tmp_path: Path, synced: tuple[Path, Path]
) -> None:
    venv, good = synced
    before = snap(venv)
    other = make_wheel("other-pkg", "1.0", files={"other_pkg.py": ""})
    base = tmp_path / "bad"
    entry = wheel_entry(other, base=base)
    entry["hashes"] = {}
    lock = write_pylock(
        base / "pylock.toml",
        [
            package_entry("good-pkg", "1.0", [wheel_entry(good, base=base)]),
            package_entry("other-pkg", "1.0", [entry]),
        ],
    )
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv), "packages[1]")
    assert "hashes" in err
    assert snap(venv) == before


# --- selection against the target ------------------------------------------------------------


def test_no_wheel_fits_the_target(
    make_wheel: MakeWheel, tmp_path: Path, synced: tuple[Path, Path]
) -> None:
    venv, good = synced
    before = snap(venv)
    old = make_wheel(
        "ancient",
        "0.1",
        tag="cp27-cp27mu-manylinux1_x86_64",
        root_is_purelib=False,
        files={"ancient.py": ""},
    )
    old2 = make_wheel(
        "ancient", "0.1", tag="cp27-cp27m-win32", root_is_purelib=False, files={"ancient.py": ""}
    )
    base = tmp_path / "bad"
    lock = write_pylock(
        base / "pylock.toml",
        [
            package_entry("good-pkg", "1.0", [wheel_entry(good, base=base)]),
            package_entry(
                "ancient", "0.1", [wheel_entry(old, base=base), wheel_entry(old2, base=base)]
            ),
        ],
    )
    err = assert_user_error(
        run_envmat("sync", lock, "--venv", venv), "ancient", old.name, old2.name, "packages[1]"
    )
    assert re.search(r"CPython 3\.\d+", err), err
    # the platform the target runs on is named
    assert re.search(r"(linux|macosx|win)[_a-z0-9]*", err.split("\n")[0]), err
    assert snap(venv) == before


def test_no_wheel_fits_leaves_no_new_venv(make_wheel: MakeWheel, tmp_path: Path) -> None:
    old = make_wheel(
        "ancient",
        "0.1",
        tag="cp27-cp27mu-manylinux1_x86_64",
        root_is_purelib=False,
        files={"ancient.py": ""},
    )
    venv = tmp_path / "venv"
    assert_user_error(
        run_envmat("sync", dist_lock(tmp_path / "pylock.toml", [old]), "--venv", venv), "ancient"
    )
    assert not venv.exists()


def test_requires_python_not_satisfied(
    make_wheel: MakeWheel, tmp_path: Path, synced: tuple[Path, Path]
) -> None:
    venv, good = synced
    before = snap(venv)
    base = tmp_path / "bad"
    lock = write_pylock(
        base / "pylock.toml",
        [package_entry("good-pkg", "1.0", [wheel_entry(good, base=base)])],
        requires_python=">=3.99",
    )
    assert_user_error(run_envmat("sync", lock, "--venv", venv), ">=3.99")
    assert snap(venv) == before
    fresh = tmp_path / "fresh"
    assert_user_error(run_envmat("sync", lock, "--venv", fresh), ">=3.99")
    assert not fresh.exists()


def test_environments_not_matching(
    make_wheel: MakeWheel, tmp_path: Path, synced: tuple[Path, Path]
) -> None:
    venv, good = synced
    before = snap(venv)
    base = tmp_path / "bad"
    lock = write_pylock(
        base / "pylock.toml",
        [package_entry("good-pkg", "1.0", [wheel_entry(good, base=base)])],
        environments=["sys_platform == 'nonesuch'"],
    )
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv), "environments")
    assert "nonesuch" in err
    assert snap(venv) == before


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        (
            "sdist",
            {
                "sdist": {
                    "name": "srconly-1.0.tar.gz",
                    "path": "srconly-1.0.tar.gz",
                    "hashes": {"sha256": "0" * 64},
                }
            },
        ),
        ("directory", {"directory": {"path": "src/srconly"}}),
        (
            "vcs",
            {
                "vcs": {
                    "type": "git",
                    "url": "https://example.invalid/srconly.git",
                    "commit-id": "a" * 40,
                }
            },
        ),
    ],
)
def test_source_trees_are_refused(
    kind: str, extra: dict[str, object], tmp_path: Path, synced: tuple[Path, Path]
) -> None:
    venv, good = synced
    before = snap(venv)
    base = tmp_path / "bad"
    lock = write_pylock(
        base / "pylock.toml",
        [
            package_entry("good-pkg", "1.0", [wheel_entry(good, base=base)]),
            package_entry("srconly", "1.0", **extra),
        ],
    )
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv), "srconly", "packages[1]")
    assert "does not build source trees" in err
    assert snap(venv) == before


@pytest.mark.parametrize("flag", ["--extra", "--group"])
def test_unknown_extra_or_group_lists_the_declared_ones(
    flag: str, tmp_path: Path, synced: tuple[Path, Path]
) -> None:
    venv, good = synced
    before = snap(venv)
    base = tmp_path / "bad"
    lock = write_pylock(
        base / "pylock.toml",
        [package_entry("good-pkg", "1.0", [wheel_entry(good, base=base)])],
        extras=["cli", "docs"],
        dependency_groups=["dev", "test"],
        default_groups=["dev"],
    )
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv, flag, "nonesuch"), "nonesuch")
    declared = ("cli", "docs") if flag == "--extra" else ("dev", "test")
    for name in declared:
        assert name in err
    assert snap(venv) == before


# --- file integrity ------------------------------------------------------------------------


def test_hash_mismatch_local_path(
    make_wheel: MakeWheel, tmp_path: Path, synced: tuple[Path, Path]
) -> None:
    venv, _good = synced
    before = snap(venv)
    bad = make_wheel("bad-pkg", "1.0", files={"bad_pkg.py": "X = 1\n"})
    base = tmp_path / "bad"
    entry = wheel_entry(bad, base=base)
    actual = entry["hashes"]["sha256"]
    entry["hashes"] = {"sha256": "ab" * 32}
    lock = write_pylock(base / "pylock.toml", [package_entry("bad-pkg", "1.0", [entry])])
    assert_user_error(
        run_envmat("sync", lock, "--venv", venv), "hash mismatch", "ab" * 32, actual, bad.name
    )
    assert snap(venv) == before


def test_hash_mismatch_served(
    make_wheel: MakeWheel,
    tmp_path: Path,
    http_server: FaultServer,
    cache_dir: Path,
    synced: tuple[Path, Path],
) -> None:
    venv, _good = synced
    before = snap(venv)
    bad = make_wheel("bad-pkg", "1.0", files={"bad_pkg.py": "X = 1\n"})
    serve(tmp_path, bad)
    entry = wheel_entry(bad, url=http_server.url_for(bad.name))
    actual = entry["hashes"]["sha256"]
    entry["hashes"] = {"sha256": "cd" * 32}
    lock = write_pylock(
        tmp_path / "bad" / "pylock.toml", [package_entry("bad-pkg", "1.0", [entry])]
    )
    assert_user_error(
        run_envmat("sync", lock, "--venv", venv),
        "hash mismatch",
        "cd" * 32,
        actual,
        http_server.url_for(bad.name),
    )
    assert snap(venv) == before
    # nothing unverified entered the cache
    assert not list(cache_dir.glob("archives-v1/*.whl"))


def test_size_mismatch(make_wheel: MakeWheel, tmp_path: Path, synced: tuple[Path, Path]) -> None:
    venv, _good = synced
    before = snap(venv)
    bad = make_wheel("bad-pkg", "1.0", files={"bad_pkg.py": "X = 1\n"})
    base = tmp_path / "bad"
    entry = wheel_entry(bad, base=base)
    real = entry["size"]
    entry["size"] = real + 7
    lock = write_pylock(base / "pylock.toml", [package_entry("bad-pkg", "1.0", [entry])])
    assert_user_error(
        run_envmat("sync", lock, "--venv", venv), "size mismatch", str(real), str(real + 7)
    )
    assert snap(venv) == before


# --- downloads -----------------------------------------------------------------------------


def _served_lock(
    tmp_path: Path, make_wheel: MakeWheel, server: FaultServer, fault: str | None, **kw: object
) -> tuple[Path, Path]:
    whl = make_wheel(
        "net-pkg", "1.0", files={"net_pkg/__init__.py": "V = 'net'\n" + "# pad\n" * 2000}
    )
    serve(tmp_path, whl)
    if fault:
        server.set_fault(whl.name, fault, **kw)
    lock = dist_lock(tmp_path / "netlock" / "pylock.toml", [whl], url_for=server.url_for)
    return lock, whl


@pytest.mark.parametrize(
    ("fault", "needles"),
    [
        ("404", ("404",)),
        ("always-500", ("500",)),
        ("wrong-size", ("larger than",)),
        ("wrong-bytes", ("hash mismatch",)),
        ("redirect-loop", ("redirect",)),
    ],
)
def test_download_failures_are_clean(
    fault: str,
    needles: tuple[str, ...],
    make_wheel: MakeWheel,
    tmp_path: Path,
    http_server: FaultServer,
    cache_dir: Path,
    synced: tuple[Path, Path],
) -> None:
    venv, _ = synced
    before = snap(venv)
    lock, whl = _served_lock(tmp_path, make_wheel, http_server, fault)
    proc = run_envmat("sync", lock, "--venv", venv, "--timeout", "5")
    assert_user_error(proc, http_server.url_for(whl.name), *needles)
    assert snap(venv) == before
    assert not list(cache_dir.glob("archives-v1/*.whl"))
    # a new venv is not created either
    fresh = tmp_path / "fresh"
    assert_user_error(run_envmat("sync", lock, "--venv", fresh, "--timeout", "5"), *needles)
    assert not fresh.exists()


@pytest.mark.parametrize("fault", ["500-then-200", "drop-mid-body"])
def test_transient_download_failures_are_retried(
    fault: str, make_wheel: MakeWheel, tmp_path: Path, http_server: FaultServer, cache_dir: Path
) -> None:
    lock, whl = _served_lock(tmp_path, make_wheel, http_server, fault)
    venv = tmp_path / "venv"
    ok("sync", lock, "--venv", venv)
    gets = [r for r in http_server.requests if r.method == "GET"]
    assert len(gets) >= 2  # the fault fired, then the retry succeeded
    (sp,) = venv.glob("lib/python3.*/site-packages")
    assert (sp / "net_pkg/__init__.py").read_text().startswith("V = 'net'\n")
    # the cache holds the wheel unpacked under its hash (a streamed download is not kept)
    assert [p.name for p in (cache_dir / "unpacked-v1").iterdir()] == [sha256_file(whl)]


# --- broken and unsafe wheels --------------------------------------------------------------


_GOOD_HASH = "sha256=" + "A" * 43  # well-formed, wrong


@pytest.mark.parametrize(
    ("case", "kw", "needle"),
    [
        ("wrong-hash", {"record": f"broken_rec.py,{_GOOD_HASH},6\n"}, "broken_rec.py"),
        ("two-fields", {"record": "broken_rec.py,\n"}, "RECORD"),
        ("bad-size", {"record": f"broken_rec.py,{_GOOD_HASH},six\n"}, "size"),
        ("unlisted-file", {"omit_from_record": ["broken_rec.py"]}, "broken_rec.py"),
        ("empty", {"record": ""}, "RECORD"),
        ("not-a-zip", {}, "zip"),
    ],
)
def test_broken_record(
    case: str,
    kw: dict[str, object],
    needle: str,
    make_wheel: MakeWheel,
    tmp_path: Path,
    synced: tuple[Path, Path],
) -> None:
    venv, good = synced
    before = snap(venv)
    broken = make_wheel("broken-rec", "1.0", files={"broken_rec.py": "X = 1\n"}, **kw)
    if case == "not-a-zip":
        broken.write_bytes(b"this is not a zip archive\n")
    lock = dist_lock(tmp_path / "bad" / "pylock.toml", [good, broken])
    assert_user_error(run_envmat("sync", lock, "--venv", venv), broken.name, needle)
    assert snap(venv) == before
    fresh = tmp_path / "fresh"
    assert_user_error(run_envmat("sync", lock, "--venv", fresh), broken.name)
    assert not fresh.exists()


def test_unsafe_path_in_wheel(
    make_wheel: MakeWheel, tmp_path: Path, synced: tuple[Path, Path]
) -> None:
    venv, good = synced
    before = snap(venv)
    outside_before = sorted(
        p.relative_to(tmp_path).as_posix()
        for p in tmp_path.rglob("*")
        if "cache" not in p.parts and "venv" not in p.parts
    )
    evil = make_wheel("evil-pkg", "1.0", files={"evil_pkg.py": "", "../evil.py": "import os\n"})
    lock = dist_lock(tmp_path / "bad" / "pylock.toml", [good, evil])
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv), evil.name)
    assert "../evil.py" in err
    assert snap(venv) == before
    fresh = tmp_path / "fresh"
    assert_user_error(run_envmat("sync", lock, "--venv", fresh), evil.name)
    assert not fresh.exists()
    # nothing named evil.py was written anywhere under the test's directory (cache included)
    assert not [p for p in tmp_path.rglob("evil.py")]
    outside_after = sorted(
        p.relative_to(tmp_path).as_posix()
        for p in tmp_path.rglob("*")
        if "cache" not in p.parts and "venv" not in p.parts
    )
    new = set(outside_after) - set(outside_before)
    # the lock, the wheel, and the hidden venv lock file envmat keeps next to a venv (DESIGN.md §4)
    assert all(p.startswith(("bad", "wheels")) or p == ".fresh.envmat.lock" for p in new), new


# --- the venv and the interpreter ----------------------------------------------------------


def test_venv_is_a_file(make_wheel: MakeWheel, tmp_path: Path) -> None:
    good = make_wheel("good-pkg", "1.0", files={"good_pkg.py": ""})
    venv = tmp_path / "venv"
    venv.write_text("not a venv\n")
    assert_user_error(
        run_envmat("sync", dist_lock(tmp_path / "pylock.toml", [good]), "--venv", venv),
        str(venv),
        "file",
    )
    assert venv.read_text() == "not a venv\n"


def test_venv_is_a_non_empty_other_directory(make_wheel: MakeWheel, tmp_path: Path) -> None:
    good = make_wheel("good-pkg", "1.0", files={"good_pkg.py": ""})
    venv = tmp_path / "project"
    (venv / "src").mkdir(parents=True)
    (venv / "src/main.py").write_text("print('mine')\n")
    before = snap(venv)
    err = assert_user_error(
        run_envmat("sync", dist_lock(tmp_path / "pylock.toml", [good]), "--venv", venv), str(venv)
    )
    assert "not a virtual environment" in err
    assert snap(venv) == before
    assert sorted(p.name for p in venv.iterdir()) == ["src"]


def test_python_version_not_found(make_wheel: MakeWheel, tmp_path: Path) -> None:
    good = make_wheel("good-pkg", "1.0", files={"good_pkg.py": ""})
    venv = tmp_path / "venv"
    assert_user_error(
        run_envmat(
            "sync", dist_lock(tmp_path / "pylock.toml", [good]), "--venv", venv, "--python", "2.9"
        ),
        "2.9",
    )
    assert not venv.exists()


def test_python_path_does_not_exist(make_wheel: MakeWheel, tmp_path: Path) -> None:
    good = make_wheel("good-pkg", "1.0", files={"good_pkg.py": ""})
    venv = tmp_path / "venv"
    missing = tmp_path / "nonexistent" / "python"
    assert_user_error(
        run_envmat(
            "sync", dist_lock(tmp_path / "pylock.toml", [good]), "--venv", venv, "--python", missing
        ),
        str(missing),
    )
    assert not venv.exists()


def test_existing_venv_with_another_python(
    tmp_path: Path, synced: tuple[Path, Path], python_factory: Callable[[str], Path]
) -> None:
    venv, good = synced
    have = subprocess.run(
        [venv / "bin/python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    other = next(
        (v for v in ("3.9", "3.12", "3.11", "3.10", "3.13") if v != have and find_python(v)), None
    )
    if other is None:
        pytest.skip("needs a second CPython version")
    before = snap(venv)
    lock = dist_lock(tmp_path / "again" / "pylock.toml", [good])
    assert_user_error(
        run_envmat("sync", lock, "--venv", venv, "--python", other), have, other, str(venv)
    )
    assert snap(venv) == before
    # the interpreter path form is checked too
    assert_user_error(
        run_envmat("sync", lock, "--venv", venv, "--python", python_factory(other)), have
    )
    assert snap(venv) == before


# --- offline -------------------------------------------------------------------------------


def test_offline_lists_every_missing_file(
    make_wheel: MakeWheel,
    tmp_path: Path,
    http_server: FaultServer,
    cache_dir: Path,
    synced: tuple[Path, Path],
) -> None:
    venv, good = synced
    before = snap(venv)
    wheels = [make_wheel(f"remote-{i}", "1.0", files={f"remote_{i}.py": ""}) for i in range(3)]
    for w in wheels:
        serve(tmp_path, w)
    base = tmp_path / "off"
    pkgs = [package_entry("good-pkg", "1.0", [wheel_entry(good, base=base)])]
    pkgs += [
        package_entry(f"remote-{i}", "1.0", [wheel_entry(w, url=http_server.url_for(w.name))])
        for i, w in enumerate(wheels)
    ]
    lock = write_pylock(base / "pylock.toml", pkgs)
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv, "--offline"), "offline")
    for i, w in enumerate(wheels):
        assert f"remote-{i}" in err and http_server.url_for(w.name) in err
    assert "good-pkg" not in err  # a local path is not missing
    assert http_server.requests == []
    assert snap(venv) == before


# --- failures during an update -------------------------------------------------------------


def test_failed_update_leaves_venv_byte_identical(
    make_wheel: MakeWheel, tmp_path: Path, synced: tuple[Path, Path]
) -> None:
    venv, _good = synced
    before = snap(venv)
    new_good = make_wheel("new-good", "1.0", files={"new_good.py": "Y = 2\n"})
    good2 = make_wheel("good-pkg", "2.0", files={"good_pkg/__init__.py": "X = 2\n"})
    bad = make_wheel("bad-pkg", "1.0", files={"bad_pkg.py": ""})
    base = tmp_path / "update"
    bad_entry = wheel_entry(bad, base=base)
    bad_entry["hashes"] = {"sha256": "ef" * 32}
    lock = write_pylock(
        base / "pylock.toml",
        [
            package_entry("good-pkg", "2.0", [wheel_entry(good2, base=base)]),
            package_entry("new-good", "1.0", [wheel_entry(new_good, base=base)]),
            package_entry("bad-pkg", "1.0", [bad_entry]),
        ],
    )
    assert_user_error(run_envmat("sync", lock, "--venv", venv), "hash mismatch", bad.name)
    assert snap(venv) == before
    # the same venv still syncs the good lock as a no-op
    proc = ok("sync", tmp_path / "good" / "pylock.toml", "--venv", venv)
    assert "Nothing to do" in proc.stderr


def test_several_hash_mismatches_are_reported_together(
    make_wheel: MakeWheel, tmp_path: Path, synced: tuple[Path, Path]
) -> None:
    venv, _ = synced
    before = snap(venv)
    base = tmp_path / "multi"
    pkgs = []
    wheels = [make_wheel(f"bad-{i}", "1.0", files={f"bad_{i}.py": ""}) for i in range(3)]
    for i, w in enumerate(wheels):
        e = wheel_entry(w, base=base)
        e["hashes"] = {"sha256": f"{i}" * 64}
        pkgs.append(package_entry(f"bad-{i}", "1.0", [e]))
    lock = write_pylock(base / "pylock.toml", pkgs)
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv))
    for w in wheels:
        assert w.name in err
    assert snap(venv) == before


@pytest.mark.parametrize(
    ("case", "kw", "needle"),
    [
        ("extra", {"extra_entries": {"../evil.py": "x"}}, "../evil.py"),
        ("nested", {"files": {"pkg/../../evil.py": "x"}}, "../evil.py"),
        ("absolute", {"files": {"/evil_abs.py": "x"}}, "/evil_abs.py"),
        ("data", {"data": {"data": {"../../evil.py": "x"}}}, "../evil.py"),
        ("scripts", {"data": {"scripts": {"../evil": "x"}}}, "../evil"),
        ("headers", {"data": {"headers": {"../../../../evil.h": "x"}}}, "evil.h"),
        (
            "entry-point",
            {
                "files": {"m.py": "def main(): pass\n"},
                "entry_points": {"console_scripts": {"../../../evil": "m:main"}},
            },
            "../../../evil",
        ),
        (
            "entry-point-subdir",
            {
                "files": {"m.py": "def main(): pass\n"},
                "entry_points": {"gui_scripts": {"sub/evil": "m:main"}},
            },
            "sub/evil",
        ),
    ],
)
def test_unsafe_paths_write_nothing(
    case: str, kw: dict[str, object], needle: str, make_wheel: MakeWheel, tmp_path: Path
) -> None:
    """Every way a wheel can name a path outside its scheme directory is refused before any write."""
    evil = make_wheel(f"evil-{case}", "1.0", **kw)
    root = tmp_path / "deep" / "er"
    venv = root / "venv"
    lock = dist_lock(tmp_path / "lock" / "pylock.toml", [evil])
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv), evil.name, needle)
    assert "unsafe" in err
    assert not venv.exists()
    written = [p for p in tmp_path.rglob("evil*") if p.suffix != ".whl"]
    assert written == []


@pytest.mark.parametrize("command", ["plan", "sync --dry-run"])
def test_plan_reports_the_same_errors(command: str, make_wheel: MakeWheel, tmp_path: Path) -> None:
    old = make_wheel(
        "ancient",
        "0.1",
        tag="cp27-cp27mu-manylinux1_x86_64",
        root_is_purelib=False,
        files={"a.py": ""},
    )
    venv = tmp_path / "venv"
    args = command.split()
    lock = dist_lock(tmp_path / "pylock.toml", [old])
    assert_user_error(run_envmat(*args, lock, "--venv", venv), "ancient", old.name)
    bad = tmp_path / "bad" / "pylock.toml"
    bad.parent.mkdir()
    bad.write_text("packages = [\n")
    assert_user_error(run_envmat(*args, bad, "--venv", venv, "--json"), "TOML")
    assert not venv.exists()


@pytest.mark.parametrize("unbuffered", ["1", None])
def test_a_plan_into_a_closed_pipe_stops_quietly(
    unbuffered: str | None, make_wheel: MakeWheel, tmp_path: Path
) -> None:
    """`envmat plan LOCK | head -1`: the reader goes away; envmat neither prints a traceback
    nor a second BrokenPipeError at exit, and exits as a pipe's writer does (128 + SIGPIPE),
    whether each line is written at once (PYTHONUNBUFFERED) or flushed at the end."""
    wheels = [make_wheel(f"piped{i}", "1.0", files={f"piped{i}.py": ""}) for i in range(3)]
    lock = dist_lock(tmp_path / "pylock.toml", wheels)
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    proc = subprocess.Popen(
        [sys.executable, "-m", "envmat", "plan", str(lock), "--venv", str(tmp_path / "venv")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before envmat has printed anything: its first write finds no reader
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""
    assert not (tmp_path / "venv").exists()


def test_a_locked_wheel_path_that_is_a_directory(tmp_path: Path) -> None:
    """Not an IsADirectoryError traceback: the path, the lock entry and a hint."""
    (tmp_path / "adir").mkdir()
    wheel = {"name": "a-1.0-py3-none-any.whl", "path": "adir", "hashes": {"sha256": "0" * 64}}
    lock = write_pylock(tmp_path / "pylock.toml", [package_entry("a", "1.0", [wheel])])
    venv = tmp_path / "venv"
    err = assert_user_error(run_envmat("sync", lock, "--venv", venv), "cannot read the wheel", "adir", "packages[0]")
    assert "Is a directory" in err
    assert not venv.exists()


def test_the_wheel_api_names_a_directory_for_what_it_is(tmp_path: Path) -> None:
    import envmat

    (tmp_path / "d-1.0-py3-none-any.whl").mkdir()
    with pytest.raises(envmat.EnvmatError) as e:
        envmat.LockedVenv(tmp_path / "venv").install_wheel(tmp_path / "d-1.0-py3-none-any.whl")
    assert "is not a file" in e.value.message
    assert not (tmp_path / "venv").exists()
