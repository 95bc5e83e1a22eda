"""Differential: the same wheels installed by ``pip install --no-deps`` and by ``envmat sync`` give the same tree.

Both venvs are made by the target's own ``venv`` module without pip; pip is the test venv's, run
with ``--python`` so it installs with the target interpreter's schemes. Files are compared byte for
byte (with each venv's own path replaced by a placeholder), with their executable bits; entry-point
launchers are compared by what they import and call, not by bytes (pip and uv write different
boilerplate). uv (``uv pip install --no-deps --offline``) is a second reference.

Known, deliberate difference (asserted exactly, so a change on either side shows up): pip keeps a
``.data/scripts`` file's mode from the zip, so a script stored without the x bit is installed
0o644; uv and envmat make every installed script executable.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_envmat
from tests.venvcompare import launcher_call
from tests.wheelmaker import make_wheel, package_entry, wheel_entry, write_pylock

MakeWheel = Callable[..., Path]
Tree = dict[str, tuple[str, bool]]

# Files an installer writes for itself (PEP 376/610/627) and compiled caches.
INSTALLER_FILES = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
CONSOLE = {"diff-tool": "diff_tool.cli:main", "diff-tool-app": "diff_tool.cli:App.run"}
GUI = {"diff-tool-gui": "diff_tool.cli:main"}


def _pip_python_flag_ok() -> bool:
    try:
        import pip
    except ImportError:
        return False
    major, minor = (int(x) for x in pip.__version__.split(".")[:2])
    return (major, minor) >= (22, 3)


pytestmark = pytest.mark.skipif(
    not _pip_python_flag_ok(), reason="needs pip >= 22.3 (pip --python) in the test venv"
)


def _platform_tag(python: Path) -> str:
    code = "import sysconfig; print(sysconfig.get_platform().replace('-', '_').replace('.', '_'))"
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def build_fixture_wheels(make_wheel: MakeWheel, python: Path) -> list[Path]:
    tool = make_wheel(
        "diff-tool",
        "1.0",
        files={
            "diff_tool/__init__.py": "VERSION = '1.0'\n",
            "diff_tool/cli.py": (
                "import sys\n"
                "def main():\n    print('diff-tool', sys.prefix)\n    return 0\n"
                "class App:\n    @staticmethod\n    def run():\n        print('app')\n        return 0\n"
            ),
            "diff_tool/run.sh": "#!/bin/sh\necho run\n",
            "diff_tool/blob.bin": bytes(range(256)) * 4,
        },
        entry_points={"console_scripts": CONSOLE, "gui_scripts": GUI},
        data={
            "scripts": {
                "diff-sh": "#!python\nimport sys\nprint('script', sys.executable)\n",
                "diff-shw": "#!pythonw\nprint('w')\n",
                "diff-plain": "#!/bin/sh\necho plain\n",
                "diff-noexec": "#!python\nprint('noexec')\n",
                "diff-args": "#!python -u\nprint('args')\n",
                "diff-crlf": b"#!python\r\nprint('crlf')\r\n",
            },
            "data": {
                "share/diff-tool/config.json": '{"a": 1}\n',
                "share/man/man1/diff-tool.1": ".TH DIFF\n",
            },
            "headers": {"diff_tool.h": "#define DIFF 1\n"},
            "purelib": {"diff_tool_extra/__init__.py": "EXTRA = 1\n"},
            "platlib": {"diff_tool_plat/__init__.py": "PLAT = 1\n"},
        },
        # the bit on .data/scripts entries is what a build backend sets; diff-noexec has none
        executable=[
            "diff_tool/run.sh",
            "scripts/diff-sh",
            "scripts/diff-shw",
            "scripts/diff-plain",
            "scripts/diff-args",
            "scripts/diff-crlf",
        ],
    )
    plat = make_wheel(
        "plat-root",
        "2.0",
        tag=f"py3-none-{_platform_tag(python)}",
        root_is_purelib=False,
        files={
            "plat_root/__init__.py": "from plat_root._impl import X\n",
            "plat_root/_impl.py": "X = 42\n",
            "plat_root/_native.so": b"\x7fELF fake shared object\x00\x01\x02",
        },
        data={"purelib": {"plat_root_pure.py": "PURE = True\n"}},
        executable=["plat_root/_native.so"],
    )
    ns = [
        make_wheel(
            f"ns-{x}",
            "1.0",
            files={
                "nsdemo/__init__.py": "# shared namespace init\n",
                f"nsdemo/{x}.py": f"V = {x!r}\n",
            },
        )
        for x in "abcd"
    ]
    return [tool, plat, *ns]


def _venv_text(venv: Path) -> list[bytes]:
    """Spellings of the venv's path that may appear in files (as given and resolved)."""
    forms = {os.fsencode(venv), os.fsencode(venv.resolve())}
    return sorted(forms, key=len, reverse=True)


def tree(venv: Path) -> Tree:
    """Every file under the venv: (sha256 of its bytes with the venv path masked, executable?)."""
    out: Tree = {}
    masks = _venv_text(venv)
    for dirpath, dirnames, filenames in os.walk(venv):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        here = Path(dirpath)
        for name in filenames:
            path = here / name
            rel = path.relative_to(venv).as_posix()
            if path.parent.name.endswith(".dist-info") and name in INSTALLER_FILES:
                continue
            if path.is_symlink():
                out[rel] = (
                    "symlink:" + os.readlink(path).replace(os.fsdecode(masks[0]), "<VENV>"),
                    False,
                )
                continue
            data = path.read_bytes()
            for m in masks:
                data = data.replace(m, b"<VENV>")
            out[rel] = (hashlib.sha256(data).hexdigest(), bool(path.stat().st_mode & 0o111))
    return out




def pip_runner(python: Path, helper: Path) -> Path:
    """An interpreter whose pip can install for ``python``: the test venv's, else a helper venv's.

    Recent pip drops old Pythons (pip 26 needs 3.10+), so for those a helper venv made with the
    target's own ensurepip runs its bundled pip, pointed at the target venv with ``--python``.
    """
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    version = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "--version"],
        capture_output=True,
        text=True,
    )
    if probe.returncode == 0:
        return Path(sys.executable)
    subprocess.run([python, "-m", "venv", helper], check=True, capture_output=True)
    runner = helper / "bin/python"
    ok = subprocess.run(
        [runner, "-m", "pip", "--python", python, "--version"], capture_output=True, text=True
    )
    if ok.returncode != 0:
        pytest.skip(f"no pip that supports --python for Python {version}: {ok.stderr.strip()}")
    return runner


def install_with_pip(python: Path, venv: Path, wheels: list[Path], helper: Path) -> None:
    subprocess.run([python, "-m", "venv", "--without-pip", venv], check=True)
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run(
        [
            pip_runner(python, helper),
            "-m",
            "pip",
            "--python",
            venv / "bin/python",
            "install",
            "--no-deps",
            "--no-index",
            "--no-compile",
            *wheels,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def install_with_envmat(python: Path, venv: Path, wheels: list[Path], lock_dir: Path) -> None:
    pkgs = []
    for whl in wheels:
        name, version = whl.name.split("-")[:2]
        pkgs.append(
            package_entry(name.replace("_", "-"), version, [wheel_entry(whl, base=lock_dir)])
        )
    lock = write_pylock(lock_dir / "pylock.toml", pkgs)
    proc = run_envmat(
        "sync", lock, "--venv", venv, "--python", python, "--cache-dir", lock_dir / "cache"
    )
    assert proc.returncode == 0, proc.stderr


def install_with_uv(python: Path, venv: Path, wheels: list[Path], uv_cache: Path) -> None:
    subprocess.run([python, "-m", "venv", "--without-pip", venv], check=True)
    uv = Path(sys.executable).parent / "uv"
    env = dict(os.environ, UV_CACHE_DIR=str(uv_cache), UV_NO_CONFIG="1")
    proc = subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--python",
            venv / "bin/python",
            "--no-deps",
            "--no-index",
            "--offline",
            *wheels,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module", params=["3.9", "3.12"], ids=["py39", "py312"])
def venvs(
    request: pytest.FixtureRequest,
    python_factory: Callable[[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """The fixture wheels installed by pip, by uv and by envmat, each into a fresh venv (read-only)."""
    target_python = python_factory(request.param)
    tmp_path = tmp_path_factory.mktemp(f"differential-{request.param}")
    wheels = build_fixture_wheels(functools.partial(make_wheel, tmp_path / "wheels"), target_python)
    # the same base name everywhere: activate scripts carry it as the prompt
    out = {tool: tmp_path / tool / "venv" for tool in ("pip", "uv", "envmat")}
    install_with_pip(target_python, out["pip"], wheels, tmp_path / "pip-runner")
    install_with_uv(target_python, out["uv"], wheels, tmp_path / "uv-cache")
    install_with_envmat(target_python, out["envmat"], wheels, tmp_path / "lock")
    return out


# Differences from a reference that are deliberate, with the reason; path -> (reference, envmat).
# pip keeps a .data/scripts file's mode from the zip (diff-noexec has no x bit there, so pip installs
# it 0o644 and `diff-noexec` cannot be run); uv makes every installed script executable, and envmat
# does what uv does. Same bytes, only the executable bit differs.
PIP_NOEXEC_SCRIPT = "bin/diff-noexec"


@pytest.mark.parametrize("reference", ["pip", "uv"])
def test_same_files_bytes_and_modes_as_reference(reference: str, venvs: dict[str, Path]) -> None:
    ref_venv, em_venv = venvs[reference], venvs["envmat"]
    launchers = {f"bin/{n}" for n in (*CONSOLE, *GUI)}
    ref_tree, em_tree = tree(ref_venv), tree(em_venv)
    # envmat keeps its own bookkeeping under .envmat/; it is not part of what the wheels install
    em_tree = {p: v for p, v in em_tree.items() if not p.startswith(".envmat/")}
    if reference == "uv":
        # uv's own bookkeeping: a venv lock file and a cache note in each .dist-info
        ref_tree = {
            p: v
            for p, v in ref_tree.items()
            if p != ".lock" and not p.endswith(".dist-info/uv_cache.json")
        }
    only_ref = sorted(set(ref_tree) - set(em_tree))
    only_envmat = sorted(set(em_tree) - set(ref_tree))
    assert (only_ref, only_envmat) == ([], [])
    if reference == "pip":
        assert ref_tree[PIP_NOEXEC_SCRIPT][0] == em_tree[PIP_NOEXEC_SCRIPT][0]
        assert (ref_tree[PIP_NOEXEC_SCRIPT][1], em_tree[PIP_NOEXEC_SCRIPT][1]) == (False, True)
        del ref_tree[PIP_NOEXEC_SCRIPT], em_tree[PIP_NOEXEC_SCRIPT]
    differ = sorted(p for p in ref_tree if p not in launchers and ref_tree[p] != em_tree[p])
    detail = {p: {reference: ref_tree[p], "envmat": em_tree[p]} for p in differ}
    assert differ == [], json.dumps(detail, indent=1)
    # launchers: same import, same call; each names its own venv's python and is executable
    for rel in sorted(launchers):
        assert launcher_call(ref_venv / rel)[1:] == launcher_call(em_venv / rel)[1:], rel
        for venv in (ref_venv, em_venv):
            assert launcher_call(venv / rel)[0] == f"#!{venv / 'bin/python'}", (venv, rel)
            assert (venv / rel).stat().st_mode & 0o111, (venv, rel)


def test_launchers_call_the_entry_point(venvs: dict[str, Path]) -> None:
    expected = {
        "diff-tool": ("from diff_tool.cli import main", "main()"),
        "diff-tool-gui": ("from diff_tool.cli import main", "main()"),
        "diff-tool-app": ("from diff_tool.cli import App", "App.run()"),
    }
    for tool, venv in venvs.items():
        for name, want in expected.items():
            assert launcher_call(venv / "bin" / name)[1:] == want, (tool, name)


def test_shebangs_rewritten_to_the_venv_python(venvs: dict[str, Path]) -> None:
    for venv in venvs.values():
        # the rest of the first line (interpreter options, a CR) goes, as in pip and uv
        for name in ("diff-sh", "diff-shw", "diff-noexec", "diff-args", "diff-crlf"):
            first = (venv / "bin" / name).read_bytes().split(b"\n", 1)[0]
            assert first == b"#!" + os.fsencode(venv / "bin/python"), (venv, name, first)
        assert (venv / "bin/diff-plain").read_bytes() == b"#!/bin/sh\necho plain\n"
    # and the scripts run with the venv's interpreter
    for venv in venvs.values():
        out = subprocess.run(
            [venv / "bin/diff-sh"], capture_output=True, text=True, check=True
        ).stdout
        assert out.split() == ["script", str(venv / "bin/python")]
        out = subprocess.run(
            [venv / "bin/diff-tool-app"], capture_output=True, text=True, check=True
        ).stdout
        assert out == "app\n"


def test_headers_and_data_land_where_pip_puts_them(venvs: dict[str, Path]) -> None:
    for venv in venvs.values():
        (header,) = venv.glob("include/site/python3.*/diff-tool/diff_tool.h")
        assert header.read_text() == "#define DIFF 1\n"
        assert (venv / "share/diff-tool/config.json").read_text() == '{"a": 1}\n'
        code = "import plat_root, plat_root_pure, diff_tool_extra, diff_tool_plat, nsdemo.a, nsdemo.d; print(plat_root.X)"
        out = subprocess.run(
            [venv / "bin/python", "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out == "42\n"


@pytest.mark.parametrize("reference", ["pip", "uv"])
def test_record_lists_the_same_paths(reference: str, venvs: dict[str, Path]) -> None:
    """Every dist's RECORD names the same files (installer-written files and caches aside)."""
    import csv

    def records(venv: Path) -> dict[str, set[str]]:
        out = {}
        for rec in venv.glob("lib/python3.*/site-packages/*.dist-info/RECORD"):
            rows = csv.reader(rec.read_text().splitlines())
            out[rec.parent.name] = {
                r[0]
                for r in rows
                if "__pycache__" not in r[0]
                and r[0].rsplit("/", 1)[-1] not in INSTALLER_FILES | {"uv_cache.json"}
            }
        return out

    ref, em = records(venvs[reference]), records(venvs["envmat"])
    assert ref.keys() == em.keys()
    for dist in ref:
        assert ref[dist] == em[dist], (dist, ref[dist] ^ em[dist])
