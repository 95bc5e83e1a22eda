"""select_uvlock: what ``uv sync --frozen`` installs from a uv.lock, for fixed targets and against uv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from packaging import tags as ptags
from packaging.markers import Marker, default_environment

from envmat.errors import EnvmatError
from envmat.lock import read_toml
from envmat.lock.model import LockedDist, Selection
from envmat.lock.uvlock import select_uvlock
from envmat.target import Target

# --- targets --------------------------------------------------------------------------------


def _env(**overrides: str) -> dict[str, str]:
    env = {
        "implementation_name": "cpython",
        "implementation_version": "3.12.4",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "platform_release": "6.1.0",
        "platform_system": "Linux",
        "platform_version": "#1 SMP",
        "python_full_version": "3.12.4",
        "python_version": "3.12",
        "sys_platform": "linux",
    }
    env.update(overrides)
    return env


def _tags(version: tuple[int, int], platforms: list[str]) -> tuple[str, ...]:
    interpreter = f"cp{version[0]}{version[1]}"
    found = [*ptags.cpython_tags(python_version=version, platforms=platforms)]
    found += ptags.compatible_tags(
        python_version=version, interpreter=interpreter, platforms=platforms
    )
    return tuple(str(t) for t in found)


def _target(version: tuple[int, int, int], env: dict[str, str], platforms: list[str]) -> Target:
    return Target(
        executable="/fake/bin/python",
        prefix="/fake",
        version=version,
        implementation="cpython",
        environment=env,
        tags=_tags(version[:2], platforms),
        paths={},
    )


_MANYLINUX = [f"manylinux_2_{m}_x86_64" for m in range(36, 16, -1)] + [
    "manylinux2014_x86_64",
    "linux_x86_64",
]

LINUX_312 = _target((3, 12, 4), _env(), _MANYLINUX)
MAC_39 = _target(
    (3, 9, 18),
    _env(
        implementation_version="3.9.18",
        os_name="posix",
        platform_machine="arm64",
        platform_system="Darwin",
        platform_release="23.1.0",
        python_full_version="3.9.18",
        python_version="3.9",
        sys_platform="darwin",
    ),
    list(ptags.mac_platforms((14, 0), "arm64")),
)
WIN_311 = _target(
    (3, 11, 9),
    _env(
        implementation_version="3.11.9",
        os_name="nt",
        platform_machine="AMD64",
        platform_system="Windows",
        platform_release="10",
        python_full_version="3.11.9",
        python_version="3.11",
        sys_platform="win32",
    ),
    ["win_amd64"],
)
ALL_TARGETS = [LINUX_312, MAC_39, WIN_311]


# --- fixtures -------------------------------------------------------------------------------

H = "sha256:" + "ab" * 32  # any well-formed digest; nothing is fetched here


def _whl(name: str, tag: str = "py3-none-any") -> str:
    return f'{{ url = "https://files.example/{name}-{tag}.whl", hash = "{H}", size = 100 }}'


# A virtual project ("no [build-system]") with markers, two numpy versions split by Python,
# an extra whose edge carries an extra of its own, and two dependency groups.
DEMO = f"""
version = 1
revision = 5
requires-python = ">=3.9"
resolution-markers = ["python_full_version >= '3.10'", "python_full_version < '3.10'"]

[[package]]
name = "demo"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "six" }},
    {{ name = "typing-extensions", marker = "python_full_version < '3.11'" }},
    {{ name = "colorama", marker = "sys_platform == 'win32'" }},
    {{ name = "numpy", version = "1.26.4", source = {{ registry = "https://files.example/simple" }}, marker = "python_full_version < '3.10'" }},
    {{ name = "numpy", version = "2.1.0", source = {{ registry = "https://files.example/simple" }}, marker = "python_full_version >= '3.10'" }},
]

[package.optional-dependencies]
x = [{{ name = "idna" }}]
cli = [{{ name = "rich", extra = ["jupyter"] }}]

[package.dev-dependencies]
dev = [{{ name = "iniconfig" }}]
lint = [{{ name = "tomli" }}]

[package.metadata]
requires-dist = []
provides-extras = ["x", "cli", "empty"]

[package.metadata.requires-dev]
dev = [{{ name = "iniconfig" }}]
lint = [{{ name = "tomli" }}]

[[package]]
name = "six"
version = "1.17.0"
source = {{ registry = "https://files.example/simple" }}
sdist = {{ url = "https://files.example/six-1.17.0.tar.gz", hash = "{H}", size = 10 }}
wheels = [{_whl("six-1.17.0", "py2.py3-none-any")}]

[[package]]
name = "typing-extensions"
version = "4.12.2"
source = {{ registry = "https://files.example/simple" }}
wheels = [{_whl("typing_extensions-4.12.2")}]

[[package]]
name = "colorama"
version = "0.4.6"
source = {{ registry = "https://files.example/simple" }}
wheels = [{_whl("colorama-0.4.6", "py2.py3-none-any")}]

[[package]]
name = "numpy"
version = "1.26.4"
source = {{ registry = "https://files.example/simple" }}
resolution-markers = ["python_full_version < '3.10'"]
wheels = [
    {_whl("numpy-1.26.4", "cp39-cp39-macosx_11_0_arm64")},
    {_whl("numpy-1.26.4", "cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64")},
]

[[package]]
name = "numpy"
version = "2.1.0"
source = {{ registry = "https://files.example/simple" }}
resolution-markers = ["python_full_version >= '3.10'"]
wheels = [
    {_whl("numpy-2.1.0", "cp311-cp311-win_amd64")},
    {_whl("numpy-2.1.0", "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64")},
    {_whl("numpy-2.1.0", "cp312-cp312-win_amd64")},
]

[[package]]
name = "idna"
version = "3.10"
source = {{ registry = "https://files.example/simple" }}
wheels = [{_whl("idna-3.10")}]

[[package]]
name = "rich"
version = "13.9.4"
source = {{ registry = "https://files.example/simple" }}
dependencies = [{{ name = "pygments" }}]
wheels = [{_whl("rich-13.9.4")}]

[package.optional-dependencies]
jupyter = [{{ name = "ipywidgets" }}]

[[package]]
name = "pygments"
version = "2.18.0"
source = {{ registry = "https://files.example/simple" }}
wheels = [{_whl("pygments-2.18.0")}]

[[package]]
name = "ipywidgets"
version = "8.1.5"
source = {{ registry = "https://files.example/simple" }}
wheels = [{_whl("ipywidgets-8.1.5")}]

[[package]]
name = "iniconfig"
version = "2.0.0"
source = {{ registry = "https://files.example/simple" }}
wheels = [{_whl("iniconfig-2.0.0")}]

[[package]]
name = "tomli"
version = "2.0.2"
source = {{ registry = "https://files.example/simple" }}
wheels = [{_whl("tomli-2.0.2")}]
"""


def write(tmp_path: Path, lock: str, pyproject: str | None = None) -> Path:
    path = tmp_path / "uv.lock"
    path.write_text(textwrap.dedent(lock))
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    return path


def select(path: Path, target: Target = LINUX_312, **selection: Any) -> list[LockedDist]:
    return select_uvlock(path, read_toml(path), target, Selection(**selection))


def versions(path: Path, target: Target = LINUX_312, **selection: Any) -> dict[str, str | None]:
    return {d.name: d.version for d in select(path, target, **selection)}


def error(path: Path, target: Target = LINUX_312, **selection: Any) -> EnvmatError:
    with pytest.raises(EnvmatError) as info:
        select(path, target, **selection)
    return info.value


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return write(tmp_path, DEMO, '[project]\nname = "demo"\nversion = "0.1.0"\n')


# --- the walk -------------------------------------------------------------------------------


BASE = {"six": "1.17.0", "iniconfig": "2.0.0"}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (LINUX_312, {**BASE, "numpy": "2.1.0"}),
        (MAC_39, {**BASE, "numpy": "1.26.4", "typing-extensions": "4.12.2"}),
        (WIN_311, {**BASE, "numpy": "2.1.0", "colorama": "0.4.6"}),
    ],
    ids=["linux-3.12", "macos-arm64-3.9", "windows-3.11"],
)
def test_default_selection_follows_markers_per_target(
    demo: Path, target: Target, expected: dict[str, str]
) -> None:
    # The virtual root is not installed; `dev` is a default group; one numpy per target.
    assert versions(demo, target) == expected


def test_two_versions_of_one_name_pick_the_matching_wheel(demo: Path) -> None:
    by_target = {t.describe(): {d.name: d for d in select(demo, t)}["numpy"] for t in ALL_TARGETS}
    assert {k: v.wheel.filename for k, v in by_target.items() if v.wheel} == {
        LINUX_312.describe(): "numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        MAC_39.describe(): "numpy-1.26.4-cp39-cp39-macosx_11_0_arm64.whl",
        WIN_311.describe(): "numpy-2.1.0-cp311-cp311-win_amd64.whl",
    }


def test_registry_wheel_is_a_url_with_its_hash_and_size(demo: Path) -> None:
    six = {d.name: d for d in select(demo)}["six"]
    assert six.kind == "wheel"
    assert six.direct_url is None
    assert six.key_path == "package[1] (six)"
    assert six.wheel is not None
    assert six.wheel.url == "https://files.example/six-1.17.0-py2.py3-none-any.whl"
    assert six.wheel.path is None
    assert six.wheel.hashes == {"sha256": "ab" * 32}
    assert six.wheel.size == 100


def test_extra_pulls_optional_dependencies_and_edge_extras(demo: Path) -> None:
    assert versions(demo, extras=("x",)) == {**BASE, "numpy": "2.1.0", "idna": "3.10"}
    # `rich[jupyter]` on the edge pulls rich's own optional dependency too.
    got = versions(demo, extras=("cli",))
    assert {"rich", "pygments", "ipywidgets"} <= set(got)
    assert "idna" not in got
    assert {"idna", "rich", "ipywidgets"} <= set(versions(demo, all_extras=True))


def test_declared_but_empty_extra_is_accepted(demo: Path) -> None:
    assert versions(demo, extras=("empty",)) == versions(demo)


def test_group_adds_to_the_defaults(demo: Path) -> None:
    assert versions(demo, groups=("lint",)) == {**BASE, "numpy": "2.1.0", "tomli": "2.0.2"}


def test_only_group_leaves_out_the_project_and_its_dependencies(demo: Path) -> None:
    assert versions(demo, only_groups=("lint",)) == {"tomli": "2.0.2"}
    # extras belong to the project, which --only-group leaves out (uv: `dev.prod()` is false)
    assert versions(demo, only_groups=("lint",), extras=("x",)) == {"tomli": "2.0.2"}


def test_no_dev_and_no_default_groups_and_all_groups(demo: Path) -> None:
    assert versions(demo, no_dev=True) == {"six": "1.17.0", "numpy": "2.1.0"}
    assert versions(demo, no_default_groups=True) == {"six": "1.17.0", "numpy": "2.1.0"}
    assert versions(demo, no_default_groups=True, groups=("dev",)) == versions(demo)
    assert set(versions(demo, all_groups=True)) == {"six", "numpy", "iniconfig", "tomli"}
    # exclusion wins over inclusion, as uv's DependencyGroups::contains
    assert set(versions(demo, all_groups=True, no_dev=True)) == {"six", "numpy", "tomli"}


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ('default-groups = ["lint"]', {"tomli"}),
        ('default-groups = "all"', {"tomli", "iniconfig"}),
        ("default-groups = []", set()),
    ],
)
def test_default_groups_come_from_pyproject(
    tmp_path: Path, setting: str, expected: set[str]
) -> None:
    path = write(tmp_path, DEMO, f'[project]\nname = "demo"\n\n[tool.uv]\n{setting}\n')
    assert set(versions(path)) - {"six", "numpy"} == expected


def test_unknown_extra_or_group_lists_the_available_ones(demo: Path) -> None:
    e = error(demo, extras=("nope",))
    assert "no extra 'nope'" in e.message
    assert "cli, empty, x" in e.render()
    e = error(demo, groups=("typo",))
    assert "no dependency group 'typo'" in e.message
    assert "dev, lint" in e.render()
    assert "no dependency group" in error(demo, only_groups=("typo",)).message


def test_names_are_normalized(demo: Path) -> None:
    assert versions(demo, groups=("LINT",)) == versions(demo, groups=("lint",))


# --- conflict markers -----------------------------------------------------------------------

# As uv 0.13.9 writes `tool.uv.conflicts = [[{extra="cpu"}, {extra="gpu"}]]`: the `torch` edge
# depends on which extra is active; the dev group activates `cpu` through `demo[cpu]`.
CONFLICTS = f"""
version = 1
revision = 5
requires-python = ">=3.9"
conflicts = [[
    {{ package = "demo", extra = "cpu" }},
    {{ package = "demo", extra = "gpu" }},
]]

[[package]]
name = "demo"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [{{ name = "six" }}]

[package.optional-dependencies]
cpu = [{{ name = "torch", version = "2.5.0+cpu", source = {{ registry = "https://files.example/cpu" }}, marker = "extra == 'extra-4-demo-cpu'" }}]
gpu = [{{ name = "torch", version = "2.5.0", source = {{ registry = "https://files.example/simple" }}, marker = "extra == 'extra-4-demo-gpu' and extra != 'extra-4-demo-cpu'" }}]

[package.dev-dependencies]
dev = [{{ name = "iniconfig" }}]
tests = [{{ name = "demo", extra = ["cpu"] }}]

[package.metadata]
provides-extras = ["cpu", "gpu"]

[[package]]
name = "six"
version = "1.17.0"
source = {{ registry = "https://files.example/simple" }}
wheels = [{_whl("six-1.17.0")}]

[[package]]
name = "iniconfig"
version = "2.0.0"
source = {{ registry = "https://files.example/simple" }}
dependencies = [{{ name = "six", marker = "extra == 'group-4-demo-dev'" }}]
wheels = [{_whl("iniconfig-2.0.0")}]

[[package]]
name = "torch"
version = "2.5.0"
source = {{ registry = "https://files.example/simple" }}
wheels = [{_whl("torch-2.5.0")}]

[[package]]
name = "torch"
version = "2.5.0+cpu"
source = {{ registry = "https://files.example/cpu" }}
wheels = [{_whl("torch-2.5.0+cpu")}]
"""


def test_conflict_markers_follow_the_activated_extras(tmp_path: Path) -> None:
    path = write(tmp_path, CONFLICTS, '[project]\nname = "demo"\n')
    assert "torch" not in versions(path)
    assert versions(path, extras=("cpu",))["torch"] == "2.5.0+cpu"
    assert versions(path, extras=("gpu",))["torch"] == "2.5.0"
    # an extra activated by an edge (`demo[cpu]` in a group) counts like one given on the command
    # line; the edge reaches the project again, so its own dependencies come back too (as uv)
    assert versions(path, only_groups=("tests",)) == {"torch": "2.5.0+cpu", "six": "1.17.0"}


def test_group_conflict_marker_is_true_only_when_the_group_is_active(tmp_path: Path) -> None:
    # iniconfig -> six only under `group-4-demo-dev`; six is also a root dependency, so use --only-group.
    path = write(tmp_path, CONFLICTS, '[project]\nname = "demo"\n')
    assert versions(path, only_groups=("dev",)) == {"iniconfig": "2.0.0", "six": "1.17.0"}


def test_conflicting_extras_together_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, CONFLICTS, '[project]\nname = "demo"\n')
    e = error(path, extras=("cpu", "gpu"))
    assert "conflicting" in e.message
    assert "conflicts[0]" in e.render()


def test_real_uv_conflict_marker_shape(tmp_path: Path) -> None:
    # The marker uv 0.13.9 wrote for `packaging` under conflicting extras x and y.
    lock = CONFLICTS.replace(
        "marker = \"extra == 'extra-4-demo-gpu' and extra != 'extra-4-demo-cpu'\"",
        "marker = \"(python_full_version < '3.10' or extra == 'extra-4-demo-cpu') and extra == 'extra-4-demo-gpu'\"",
    )
    path = write(tmp_path, lock, '[project]\nname = "demo"\n')
    assert "torch" not in versions(path, LINUX_312, extras=("gpu",))
    assert versions(path, MAC_39, extras=("gpu",))["torch"] == "2.5.0"


# --- roots and source kinds -----------------------------------------------------------------

EDITABLE = f"""
version = 1
revision = 5
requires-python = ">=3.9"

[[package]]
name = "app"
version = "1.0"
source = {{ editable = "." }}
dependencies = [{{ name = "six" }}]

[[package]]
name = "six"
version = "1.17.0"
source = {{ registry = "https://files.example/simple" }}
wheels = [{_whl("six-1.17.0")}]
"""


def test_editable_root_is_a_clear_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, EDITABLE, '[project]\nname = "app"\n[build-system]\nrequires = ["hatchling"]\n'
    )
    e = error(path)
    assert (
        e.message
        == "app is locked as a editable project (.); envmat does not build source trees yet"
    )
    assert e.context == (f"in {path}: package[0] (app)",)
    assert e.hint is not None and "--no-install-project" in e.hint


def test_no_install_project_skips_the_root_but_keeps_its_dependencies(tmp_path: Path) -> None:
    path = write(tmp_path, EDITABLE)  # no pyproject: the `editable = "."` package is the project
    assert versions(path, no_install_project=True) == {"six": "1.17.0"}


def test_directory_root_and_path_dependencies(tmp_path: Path) -> None:
    lock = EDITABLE.replace('source = { editable = "." }', 'source = { directory = "." }')
    lock = lock.replace(
        'dependencies = [{ name = "six" }]',
        'dependencies = [{ name = "six" }, { name = "lib" }]',
        1,
    )
    lock += '\n[[package]]\nname = "lib"\nversion = "0.1"\nsource = { editable = "libs/lib" }\n'
    path = write(tmp_path, lock)
    e = error(path)  # two packages fail; both are reported
    assert "2 packages" in e.message
    assert any("app is locked as a local directory" in d for d in e.details)
    # --no-install-project skips only the project; a path dependency is still a source tree
    e = error(path, no_install_project=True)
    assert e.message.startswith("lib is locked as a editable project (libs/lib)")
    assert "package[2] (lib)" in e.render()


def test_git_and_source_archives_are_source_trees(tmp_path: Path) -> None:
    lock = EDITABLE.replace(
        'source = { registry = "https://files.example/simple" }\nwheels',
        'source = { git = "https://git.example/six?rev=v1#0123456789abcdef0123456789abcdef01234567" }\nwheels',
    )
    e = error(write(tmp_path, lock), no_install_project=True)
    assert "git checkout" in e.message and "six" in e.message
    lock = EDITABLE.replace(
        f'source = {{ registry = "https://files.example/simple" }}\nwheels = [{_whl("six-1.17.0")}]',
        f'source = {{ url = "https://files.example/six-1.17.0.tar.gz" }}\nsdist = {{ hash = "{H}" }}',
    )
    e = error(write(tmp_path, lock), no_install_project=True)
    assert "source archive (https://files.example/six-1.17.0.tar.gz)" in e.message


def test_url_and_path_wheels_are_direct_references(tmp_path: Path) -> None:
    lock = EDITABLE.replace(
        'dependencies = [{ name = "six" }]',
        'dependencies = [{ name = "six" }, { name = "local" }]',
        1,
    )
    lock = lock.replace(
        f'source = {{ registry = "https://files.example/simple" }}\nwheels = [{_whl("six-1.17.0")}]',
        f'source = {{ url = "https://files.example/d/six-1.17.0-py3-none-any.whl" }}\n'
        f'wheels = [{{ filename = "six-1.17.0-py3-none-any.whl", hash = "{H}" }}]',
    )
    lock += (
        f'\n[[package]]\nname = "local"\nversion = "2.0"\nsource = {{ path = "dist/local-2.0-py3-none-any.whl" }}\n'
        f'wheels = [{{ filename = "local-2.0-py3-none-any.whl", hash = "{H}" }}]\n'
    )
    dists = {d.name: d for d in select(write(tmp_path, lock), no_install_project=True)}
    six, local = dists["six"], dists["local"]
    assert six.kind == local.kind == "archive"
    assert (
        six.wheel is not None
        and six.wheel.url == "https://files.example/d/six-1.17.0-py3-none-any.whl"
    )
    archive_info = {"hashes": {"sha256": "ab" * 32}, "hash": "sha256=" + "ab" * 32}
    assert six.direct_url == {"url": six.wheel.url, "archive_info": archive_info}
    wheel_path = (tmp_path / "dist" / "local-2.0-py3-none-any.whl").resolve()
    assert local.wheel is not None and local.wheel.path == str(wheel_path)
    assert local.direct_url == {"url": wheel_path.as_uri(), "archive_info": archive_info}


def test_local_registry_wheel_paths_are_relative_to_the_registry(tmp_path: Path) -> None:
    lock = EDITABLE.replace(
        f'source = {{ registry = "https://files.example/simple" }}\nwheels = [{_whl("six-1.17.0")}]',
        f'source = {{ registry = "wheelhouse" }}\nwheels = [{{ path = "six-1.17.0-py3-none-any.whl", hash = "{H}" }}]',
    )
    (six,) = select(write(tmp_path, lock), no_install_project=True)
    assert six.wheel is not None
    assert six.wheel.path == str(
        (tmp_path / "wheelhouse" / "six-1.17.0-py3-none-any.whl").resolve()
    )
    assert six.kind == "wheel" and six.direct_url is None


def test_virtual_root_with_workspace_members(tmp_path: Path) -> None:
    # A non-project workspace root: every member is a root; root-level groups live in [manifest].
    lock = f"""
    version = 1
    revision = 5
    requires-python = ">=3.9"

    [manifest]
    members = ["a", "b"]

    [manifest.dependency-groups]
    dev = [{{ name = "iniconfig" }}]

    [[package]]
    name = "a"
    version = "0.1"
    source = {{ virtual = "packages/a" }}
    dependencies = [{{ name = "six" }}]

    [[package]]
    name = "b"
    version = "0.1"
    source = {{ editable = "packages/b" }}

    [package.dev-dependencies]
    lint = [{{ name = "tomli" }}]

    [[package]]
    name = "six"
    version = "1.17.0"
    source = {{ registry = "https://files.example/simple" }}
    wheels = [{_whl("six-1.17.0")}]

    [[package]]
    name = "iniconfig"
    version = "2.0.0"
    source = {{ registry = "https://files.example/simple" }}
    wheels = [{_whl("iniconfig-2.0.0")}]

    [[package]]
    name = "tomli"
    version = "2.0.2"
    source = {{ registry = "https://files.example/simple" }}
    wheels = [{_whl("tomli-2.0.2")}]
    """
    path = write(tmp_path, lock, "[tool.uv.workspace]\nmembers = ['packages/*']\n")
    assert "b is locked as a editable project" in error(path).message
    assert versions(path, no_install_project=True) == {"six": "1.17.0", "iniconfig": "2.0.0"}
    assert versions(path, no_install_project=True, groups=("lint",), no_dev=True) == {
        "six": "1.17.0",
        "tomli": "2.0.2",
    }
    assert versions(path, only_groups=("dev",)) == {"iniconfig": "2.0.0"}


# --- wheels ---------------------------------------------------------------------------------


def test_best_wheel_follows_the_target_tag_order(tmp_path: Path) -> None:
    lock = EDITABLE.replace(
        f"wheels = [{_whl('six-1.17.0')}]",
        "wheels = ["
        + ", ".join(
            _whl("six-1.17.0", t)
            for t in (
                "py3-none-any",
                "cp39-abi3-manylinux_2_17_x86_64",
                "cp312-cp312-manylinux_2_28_x86_64",
                "cp312-cp312-manylinux_2_17_x86_64",
            )
        )
        + "]",
    )
    path = write(tmp_path, lock)
    best = {t.describe(): select(path, t, no_install_project=True)[0].wheel for t in ALL_TARGETS}
    assert {k: v.filename if v else None for k, v in best.items()} == {
        LINUX_312.describe(): "six-1.17.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        MAC_39.describe(): "six-1.17.0-py3-none-any.whl",
        WIN_311.describe(): "six-1.17.0-py3-none-any.whl",
    }


def test_sdist_only_for_this_target_names_package_target_and_wheels(tmp_path: Path) -> None:
    lock = EDITABLE.replace(
        f"wheels = [{_whl('six-1.17.0')}]",
        f'sdist = {{ url = "https://files.example/six-1.17.0.tar.gz", hash = "{H}" }}\n'
        f"wheels = [{_whl('six-1.17.0', 'cp312-cp312-win_amd64')}]",
    )
    e = error(write(tmp_path, lock), MAC_39, no_install_project=True)
    assert (
        e.message
        == "six 1.17.0 only has a source distribution for CPython 3.9 on macosx_14_0_arm64; envmat does not build sdists yet"
    )
    assert e.details == ("six-1.17.0-cp312-cp312-win_amd64.whl",)
    assert f"in {tmp_path / 'uv.lock'}: package[1] (six)" in e.context


def test_no_wheel_and_no_sdist(tmp_path: Path) -> None:
    lock = EDITABLE.replace(
        f"wheels = [{_whl('six-1.17.0')}]",
        f"wheels = [{_whl('six-1.17.0', 'cp312-cp312-win_amd64')}]",
    )
    e = error(write(tmp_path, lock), MAC_39, no_install_project=True)
    assert e.message == "no wheel in the lock fits CPython 3.9 on macosx_14_0_arm64 for six 1.17.0"


def test_bad_hash_and_bad_filename_name_the_key_path(tmp_path: Path) -> None:
    lock = EDITABLE.replace(H, "md5-nope")
    assert (
        "package[1].wheels[0].hash"
        in error(write(tmp_path, lock), no_install_project=True).render()
    )
    lock = EDITABLE.replace("six-1.17.0-py3-none-any.whl", "six.whl")
    assert "package[1].wheels[0]" in error(write(tmp_path, lock), no_install_project=True).render()


@pytest.mark.parametrize("bad", ["http://[::1/six-1.17.0-py3-none-any.whl", "https://h:99999/six-1.17.0-py3-none-any.whl"])
def test_a_wheel_url_that_is_not_one_names_its_key(tmp_path: Path, bad: str) -> None:
    start = EDITABLE.index("wheels = [", EDITABLE.index('name = "six"'))
    url_at = EDITABLE.index('url = "', start) + len('url = "')
    lock = EDITABLE[:url_at] + bad + EDITABLE[EDITABLE.index('"', url_at) :]
    e = error(write(tmp_path, lock), no_install_project=True)
    assert "package[1].wheels[0].url" in e.render() and "is not a valid URL" in e.message


# --- the lock as a whole ------------------------------------------------------------------------


def test_newer_lock_version_is_refused(tmp_path: Path) -> None:
    e = error(write(tmp_path, EDITABLE.replace("version = 1\n", "version = 2\n", 1)))
    assert "version 2" in e.message and "uv.lock" in e.message
    assert e.hint is not None and "upgrade envmat" in e.hint


def test_requires_python_is_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path, EDITABLE.replace('requires-python = ">=3.9"', 'requires-python = ">=3.10"')
    )
    e = error(path, MAC_39)
    assert "CPython 3.9" in e.message and ">=3.10" in e.message
    assert e.hint is not None and "--python" in e.hint
    assert versions(path, LINUX_312, no_install_project=True) == {"six": "1.17.0"}


def test_supported_markers_must_include_the_target(tmp_path: Path) -> None:
    lock = EDITABLE.replace(
        'requires-python = ">=3.9"',
        'requires-python = ">=3.9"\nsupported-markers = ["sys_platform == \'linux\'", "sys_platform == \'win32\'"]',
    )
    path = write(tmp_path, lock)
    assert "not one of the environments" in error(path, MAC_39).message
    assert versions(path, WIN_311, no_install_project=True) == {"six": "1.17.0"}


def test_missing_project_in_lock(tmp_path: Path) -> None:
    path = write(tmp_path, EDITABLE, '[project]\nname = "other"\n')
    e = error(path)
    assert "'other'" in e.message and e.hint is not None and "uv lock" in e.hint


# --- against uv itself --------------------------------------------------------------------------

PROJECT = """
[project]
name = "sample"
version = "0.1.0"
requires-python = ">=3.9"
dependencies = [
    "six",
    "packaging>=23",
    "tomli>=2; python_version < '3.11'",
    "colorama; sys_platform == 'win32'",
]

[project.optional-dependencies]
x = ["idna"]

[dependency-groups]
dev = ["iniconfig"]
lint = ["tomli"]
"""

BUILD_SYSTEM = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""

FLAGS: list[tuple[list[str], dict[str, Any]]] = [
    ([], {}),
    (["--extra", "x", "--group", "lint"], {"extras": ("x",), "groups": ("lint",)}),
    (["--no-dev"], {"no_dev": True}),
    (["--only-group", "lint"], {"only_groups": ("lint",)}),
]


def _uv() -> str:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed next to the test interpreter")
    return uv


def _host_env() -> dict[str, str]:
    return {k: str(v) for k, v in default_environment().items()}


def _running_target() -> Target:
    return Target(
        executable=sys.executable,
        prefix=sys.prefix,
        version=(sys.version_info[0], sys.version_info[1], sys.version_info[2]),
        implementation=sys.implementation.name,
        environment=_host_env(),
        tags=tuple(str(t) for t in ptags.sys_tags()),
        paths={},
    )


def _uv_run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_PYTHON": sys.executable, "NO_COLOR": "1"}
    return subprocess.run(
        [_uv(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _exported(cwd: Path, flags: list[str]) -> dict[str, str]:
    """``uv export`` is universal: evaluate its markers for the running interpreter."""
    out = _uv_run(
        [
            "export",
            "--frozen",
            "--format",
            "requirements.txt",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--no-emit-project",
            *flags,
        ],
        cwd,
    )
    assert out.returncode == 0, out.stderr
    found = {}
    for line in out.stdout.splitlines():
        req, _, marker = line.partition(";")
        if not req.strip() or req.startswith(("#", "-e")):
            continue
        if marker.strip() and not Marker(marker.strip()).evaluate(dict(_host_env())):
            continue
        name, _, version = req.strip().partition("==")
        found[name.lower()] = version
    return found


@pytest.mark.network
@pytest.mark.parametrize("build_system", [False, True], ids=["virtual", "editable"])
def test_matches_uv_export(tmp_path: Path, build_system: bool) -> None:
    (tmp_path / "pyproject.toml").write_text(PROJECT + (BUILD_SYSTEM if build_system else ""))
    locked = _uv_run(["lock"], tmp_path)
    if locked.returncode != 0:
        pytest.skip(
            f"uv lock could not reach the registry: {locked.stderr.strip().splitlines()[-1:]}"
        )
    lock_path = tmp_path / "uv.lock"
    data = read_toml(lock_path)
    root = next(p for p in data["package"] if p["name"] == "sample")
    assert root["source"] == ({"editable": "."} if build_system else {"virtual": "."})
    for flags, selection in FLAGS:
        if build_system and "only_groups" not in selection:
            with pytest.raises(EnvmatError, match="editable project"):
                select_uvlock(lock_path, data, _running_target(), Selection(**selection))
            selection = {**selection, "no_install_project": True}
        got = select_uvlock(lock_path, data, _running_target(), Selection(**selection))
        assert {d.name: d.version for d in got} == _exported(tmp_path, flags), flags
        assert all(d.wheel is not None and d.wheel.sha256 for d in got)


CONFLICTING_PROJECT = """
[project]
name = "demo"
version = "0.1.0"
requires-python = ">=3.9"
dependencies = ["six"]

[project.optional-dependencies]
cpu = ["idna==3.9"]
gpu = ["idna==3.10"]

[dependency-groups]
dev = ["iniconfig"]
tests = ["demo[cpu]"]

[tool.uv]
conflicts = [[{ extra = "cpu" }, { extra = "gpu" }], [{ group = "tests" }, { extra = "gpu" }]]
"""


@pytest.mark.network
def test_conflict_markers_match_uv_export(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(CONFLICTING_PROJECT)
    locked = _uv_run(["lock"], tmp_path)
    if locked.returncode != 0:
        pytest.skip(
            f"uv lock could not reach the registry: {locked.stderr.strip().splitlines()[-1:]}"
        )
    lock_path = tmp_path / "uv.lock"
    data = read_toml(lock_path)
    assert "extra == 'extra-4-demo-cpu'" in lock_path.read_text()
    cases: list[tuple[list[str], dict[str, Any]]] = [
        ([], {}),
        (["--extra", "cpu"], {"extras": ("cpu",)}),
        (["--extra", "gpu"], {"extras": ("gpu",)}),
        (["--group", "tests"], {"groups": ("tests",)}),
        (["--only-group", "tests"], {"only_groups": ("tests",)}),
    ]
    for flags, selection in cases:
        got = select_uvlock(lock_path, data, _running_target(), Selection(**selection))
        assert {d.name: d.version for d in got} == _exported(tmp_path, flags), flags
    for selection in ({"extras": ("cpu", "gpu")}, {"groups": ("tests",), "extras": ("gpu",)}):
        with pytest.raises(EnvmatError, match="conflicting"):
            select_uvlock(lock_path, data, _running_target(), Selection(**selection))
