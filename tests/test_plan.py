"""The diff engine, pure: locked dists + installed state + manifest -> changes and file operations."""

from __future__ import annotations

import hashlib

from envmat.installed import STATE_FILE, InstalledDist, InstalledFile, InstalledState
from envmat.lock.model import FileRef, LockedDist
from envmat.manifest import DistManifest, Manifest, TargetFile
from envmat.plan import plan_dists, plan_files

SITE = "lib/python3.12/site-packages"


def sha(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


def locked(name: str, version: str, key: str | None = None) -> LockedDist:
    ref = FileRef(
        filename=f"{name}-{version}-py3-none-any.whl",
        url=f"https://files.example/{name}.whl",
        size=10,
        hashes={"sha256": key or sha(name + version)},
    )
    return LockedDist(name=name, version=version, kind="wheel", wheel=ref, key_path="packages[0]")


def installed(
    name: str, version: str, files: dict[str, str], key: str | None = None
) -> InstalledDist:
    info = f"{SITE}/{name}-{version}.dist-info"
    fs = [InstalledFile(path=p, sha256=sha(c), size=len(c)) for p, c in files.items()]
    fs.append(InstalledFile(path=f"{info}/RECORD", sha256=None, size=None))
    return InstalledDist(
        name=name,
        version=version,
        dist_info=info,
        installer="envmat",
        files=tuple(fs),
        wheel_key=key,
    )


def target_file(path: str, content: str, *owners: str) -> TargetFile:
    return TargetFile(
        path=path,
        sha256=sha(content),
        size=len(content),
        executable=False,
        owners=owners,
        data=content.encode(),
    )


def state(*dists: InstalledDist) -> InstalledState:
    return InstalledState(dists={d.name: d for d in dists}, state={})



def test_into_a_new_venv_every_file_is_written_records_and_state_last() -> None:
    # nothing installed: the manifest's files in its order, each RECORD after every other
    # file (in the manifest's order too), the state file last
    paths = {
        "a": [f"{SITE}/a/m.py", f"{SITE}/a-1.0.dist-info/RECORD", f"{SITE}/a/n.py"],
        "b": [f"{SITE}/b-1.0.dist-info/RECORD", f"{SITE}/b/m.py", "bin/b"],
    }
    files = {p: target_file(p, p, name) for name in ("a", "b") for p in paths[name]}
    dists = {
        name: DistManifest(
            name=name,
            version="1.0",
            dist_info=f"{SITE}/{name}-1.0.dist-info",
            wheel_key=name,
            wheel_filename=f"{name}-1.0-py3-none-any.whl",
            files=tuple(paths[name]),
        )
        for name in ("a", "b")
    }
    changes = plan_dists([locked("a", "1.0"), locked("b", "1.0")], state())
    fplan = plan_files(changes, Manifest(files=files, dists=dists), state())
    assert [t.path for t in fplan.writes] == [
        f"{SITE}/a/m.py",
        f"{SITE}/a/n.py",
        f"{SITE}/b/m.py",
        "bin/b",
        f"{SITE}/a-1.0.dist-info/RECORD",
        f"{SITE}/b-1.0.dist-info/RECORD",
        STATE_FILE,
    ]
    assert fplan.removes == () and fplan.stale_modules == () and fplan.unchanged == 0

def test_actions_per_distribution() -> None:
    inst = state(
        installed("same", "1.0", {}, key=sha("same1.0")),
        installed("older", "1.0", {}),
        installed("rebuilt", "2.0", {}, key="0" * 64),
        installed("extra", "3.0", {}),
        installed("foreign", "4.0", {}),  # installed by pip: no wheel key, same version -> keep
    )
    lock = [
        locked("same", "1.0"),
        locked("older", "2.0"),
        locked("rebuilt", "2.0"),
        locked("new", "1.0"),
        locked("foreign", "4.0"),
    ]
    changes = {c.name: c for c in plan_dists(lock, inst)}
    assert {n: c.action for n, c in changes.items()} == {
        "same": "keep",
        "older": "replace",
        "rebuilt": "replace",
        "new": "add",
        "extra": "remove",
        "foreign": "keep",
    }
    assert changes["older"].old_version == "1.0" and changes["older"].version == "2.0"
    assert changes["new"].download_size == 10


def test_inexact_keeps_unlisted_and_reinstall_replaces() -> None:
    inst = state(installed("extra", "3.0", {}), installed("same", "1.0", {}))
    changes = {
        c.name: c.action
        for c in plan_dists([locked("same", "1.0")], inst, inexact=True, reinstall={"same"})
    }
    assert changes == {"same": "replace"}


def test_version_comparison_is_pep440() -> None:
    inst = state(installed("pkg", "1.0.0", {}))
    assert plan_dists([locked("pkg", "1.0")], inst)[0].action == "keep"


def test_shared_file_survives_until_its_last_owner_goes() -> None:
    ns = f"{SITE}/nvidia/__init__.py"
    a = installed("nv-a", "1", {ns: "", f"{SITE}/nvidia/a/x.so": "a"})
    b = installed("nv-b", "1", {ns: "", f"{SITE}/nvidia/b/x.so": "b"})
    # lock keeps a, drops b: the shared file stays, b's own file goes
    changes = plan_dists([locked("nv-a", "1")], state(a, b))
    fplan = plan_files(changes, Manifest(files={}, dists={}), state(a, b))
    assert ns not in fplan.removes
    assert f"{SITE}/nvidia/b/x.so" in fplan.removes
    # lock drops both: now it goes
    changes = plan_dists([], state(a, b))
    fplan = plan_files(changes, Manifest(files={}, dists={}), state(a, b))
    assert ns in fplan.removes


def test_replacement_keeps_unchanged_files_and_marks_stale_modules() -> None:
    old = installed(
        "pkg",
        "1.0",
        {f"{SITE}/pkg/same.py": "same", f"{SITE}/pkg/changed.py": "v1", f"{SITE}/pkg/gone.py": "x"},
    )
    files = {
        f"{SITE}/pkg/same.py": target_file(f"{SITE}/pkg/same.py", "same", "pkg"),
        f"{SITE}/pkg/changed.py": target_file(f"{SITE}/pkg/changed.py", "v2", "pkg"),
        f"{SITE}/pkg-2.0.dist-info/RECORD": target_file(
            f"{SITE}/pkg-2.0.dist-info/RECORD", "r", "pkg"
        ),
    }
    dm = DistManifest(
        name="pkg",
        version="2.0",
        dist_info=f"{SITE}/pkg-2.0.dist-info",
        wheel_key="k",
        wheel_filename="pkg-2.0-py3-none-any.whl",
        files=tuple(files),
    )
    changes = plan_dists([locked("pkg", "2.0")], state(old))
    fplan = plan_files(changes, Manifest(files=files, dists={"pkg": dm}), state(old))
    written = [t.path for t in fplan.writes]
    assert f"{SITE}/pkg/same.py" not in written
    assert written[:-2] == [f"{SITE}/pkg/changed.py"]
    # RECORD then the state file come last
    assert written[-2:] == [f"{SITE}/pkg-2.0.dist-info/RECORD", STATE_FILE]
    assert (
        f"{SITE}/pkg/gone.py" in fplan.removes
        and f"{SITE}/pkg-1.0.dist-info/RECORD" in fplan.removes
    )
    assert set(fplan.stale_modules) == {f"{SITE}/pkg/changed.py", f"{SITE}/pkg/gone.py"}
    assert fplan.unchanged == 1


def test_a_shared_file_keeps_its_first_owners_cache_file_and_stamp(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The merged entry of a file several wheels ship links the first owner's cache file, with
    that file's stamp from its index (what the replay record then keeps without a stat)."""
    import sys
    from pathlib import Path

    from envmat.cache import CachedWheel
    from envmat.manifest import build_manifest
    from envmat.target import query_target
    from envmat.wheel import WheelFile, WheelIndex

    def cached(name: str, stamp: int) -> CachedWheel:
        shared = WheelFile(scheme="purelib", path="ns/__init__.py", size=0, sha256=sha(""), executable=False)
        own = WheelFile(scheme="purelib", path=f"ns/{name}.py", size=1, sha256=sha("x"), executable=False)
        index = WheelIndex(
            name=name, version="1.0", dist_info=f"{name}-1.0.dist-info", root_is_purelib=True,
            files=(shared, own), console_scripts={}, gui_scripts={}, stamps=(stamp, stamp + 1),
        )
        return CachedWheel(dist=locked(name, "1.0"), index=index, root=tmp_path / name)

    target = query_target(Path(sys.executable), tmp_path / "cache")
    manifest = build_manifest([cached("b", 200), cached("a", 100)], target, sys.executable)
    (shared,) = [f for p, f in manifest.files.items() if p.endswith("/ns/__init__.py")]
    assert shared.owners == ("a", "b")
    assert shared.link == f"{tmp_path / 'a'}/purelib/ns/__init__.py"
    assert shared.stamp == 100
    (own_b,) = [f for p, f in manifest.files.items() if p.endswith("/ns/b.py")]
    assert own_b.stamp == 201 and own_b.owners == ("b",)
