"""schemas/*.json: the pylock.toml 1.0 schema against handwritten and tool-written locks, and the plan schema."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import pytest
from jsonschema import Draft202012Validator
from packaging.pylock import Pylock, PylockValidationError

from envmat.lock.lint import lint_pylock, toml_to_json_compatible

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
SHA = "c75a69e28a550a7e93789579c22aa26b0f5b83b75dc4e08fe092980051e1090a"


def load_schema(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.fixture(scope="module")
def pylock_schema() -> Draft202012Validator:
    return load_schema("pylock.schema.json")


@pytest.fixture(scope="module")
def plan_schema() -> Draft202012Validator:
    return load_schema("plan.schema.json")


def schema_errors(validator: Draft202012Validator, doc: Mapping[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(toml_to_json_compatible(doc))
    ]


def test_schemas_are_valid_draft_2020_12() -> None:
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path.name
        Draft202012Validator.check_schema(schema)


# -- valid locks, in the shapes each writer produces ----------------------------------------------

# The spec's example (pylock-toml.rst, "Example"), with its URLs moved to files.example.
SPEC_EXAMPLE = """
lock-version = '1.0'
environments = ["sys_platform == 'win32'", "sys_platform == 'linux'"]
requires-python = '== 3.12.*'
created-by = 'mousebender'

[[packages]]
name = 'attrs'
version = '25.1.0'
requires-python = '>= 3.8'

    [[packages.wheels]]
    name = 'attrs-25.1.0-py3-none-any.whl'
    upload-time = 2025-01-25T11:30:10.164985+00:00
    url = 'https://files.example/packages/fc/30/attrs-25.1.0-py3-none-any.whl'
    size = 63152
    hashes = {sha256 = 'c75a69e28a550a7e93789579c22aa26b0f5b83b75dc4e08fe092980051e1090a'}

    [[packages.attestation-identities]]
    environment = 'release-pypi'
    kind = 'GitHub'
    repository = 'python-attrs/attrs'
    workflow = 'pypi-package.yml'

[[packages]]
name = 'cattrs'
version = '24.1.2'
requires-python = '>= 3.8'
dependencies = [
    {name = 'attrs'},
]

    [[packages.wheels]]
    name = 'cattrs-24.1.2-py3-none-any.whl'
    upload-time = 2024-09-22T14:58:34.812643+00:00
    url = 'https://files.example/packages/c8/d5/cattrs-24.1.2-py3-none-any.whl'
    size = 66446
    hashes = {sha256 = '67c7495b760168d931a10233f979b28dc04daf853b30752246f4f8471c6d68d0'}

[[packages]]
name = 'numpy'
version = '2.2.3'
requires-python = '>= 3.10'

    [[packages.wheels]]
    name = 'numpy-2.2.3-cp312-cp312-win_amd64.whl'
    upload-time = 2025-02-13T16:51:21.821880+00:00
    url = 'https://files.example/packages/42/6e/numpy-2.2.3-cp312-cp312-win_amd64.whl'
    size = 12626357
    hashes = {sha256 = '83807d445817326b4bcdaaaf8e8e9f1753da04341eceec705c001ff342002e5d'}

    [[packages.wheels]]
    name = 'numpy-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl'
    upload-time = 2025-02-13T16:50:00.079662+00:00
    url = 'https://files.example/packages/39/04/numpy-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl'
    size = 16116679
    hashes = {sha256 = '3b787adbf04b0db1967798dba8da1af07e387908ed1553a0d6e74c084d1ceafe'}

[tool.mousebender]
command = ['.', 'lock', '--platform', 'cpython3.12-windows-x64', '--platform', 'cpython3.12-manylinux2014-x64', 'cattrs', 'numpy']
run-on = 2025-03-06T12:28:57.760769
"""

# pip lock: two top-level keys, sub-tables, one wheel per package, no size or upload-time.
PIP_SHAPE = f"""
lock-version = "1.0"
created-by = "pip"

[[packages]]
name = "idna"
version = "3.10"

[[packages.wheels]]
name = "idna-3.10-py3-none-any.whl"
url = "https://files.example/packages/76/c6/idna-3.10-py3-none-any.whl"

[packages.wheels.hashes]
sha256 = "{SHA}"

[[packages]]
name = "tiny"

[packages.directory]
path = "."
editable = true
"""

# uv pip compile --universal / uv export: inline tables, no wheel name, several entries per name
# with disjoint markers, `index` (export only), a directory entry without version.
UV_SHAPE = f"""
lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.9"

[[packages]]
name = "iniconfig"
version = "2.1.0"
marker = "python_full_version < '3.10'"
index = "https://index.example/simple"
sdist = {{ url = "https://files.example/packages/f2/97/iniconfig-2.1.0.tar.gz", upload-time = 2025-03-19T20:09:59Z, size = 4793, hashes = {{ sha256 = "{SHA}" }} }}
wheels = [{{ url = "https://files.example/packages/2c/e1/iniconfig-2.1.0-py3-none-any.whl", upload-time = 2025-03-19T20:10:01Z, size = 6050, hashes = {{ sha256 = "{SHA}" }} }}]

[[packages]]
name = "iniconfig"
version = "2.3.1"
marker = "python_full_version >= '3.10'"
index = "https://index.example/simple"
sdist = {{ url = "https://files.example/packages/01/e1/iniconfig-2.3.1.tar.gz", upload-time = 2026-10-06T22:48:38Z, size = 21209, hashes = {{ sha256 = "{SHA}" }} }}
wheels = [
    {{ url = "https://files.example/packages/56/43/iniconfig-2.3.1-py3-none-any.whl", upload-time = 2026-10-06T22:48:36Z, size = 7552, hashes = {{ sha256 = "{SHA}" }} }},
    {{ url = "https://files.example/packages/56/44/iniconfig-2.3.1-cp312-cp312-win_amd64.whl", upload-time = 2026-10-06T22:48:37Z, size = 7553, hashes = {{ sha256 = "{SHA}" }} }},
]

[[packages]]
name = "tiny"
directory = {{ path = "../../proj", editable = true }}
"""

# pdm export / pdm's native pylock: multi-use markers, group lists, [tool.pdm], a version on a
# directory entry (spec: MUST NOT; accepted by the schema, warned about by lint).
PDM_SHAPE = f"""
lock-version = "1.0"
requires-python = ">=3.9"
environments = ["python_version >= \\"3.9\\""]
extras = ["cli"]
dependency-groups = ["default", "dev"]
default-groups = ["default"]
created-by = "pdm"

[[packages]]
name = "colorama"
version = "0.4.6"
requires-python = ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*, !=3.5.*, !=3.6.*"
marker = "\\"cli\\" in extras and sys_platform == \\"win32\\""

[[packages.wheels]]
name = "colorama-0.4.6-py2.py3-none-any.whl"
url = "https://files.example/packages/d1/d6/colorama-0.4.6-py2.py3-none-any.whl"
hashes = {{sha256 = "{SHA}"}}

[packages.sdist]
name = "colorama-0.4.6.tar.gz"
url = "https://files.example/packages/d8/53/colorama-0.4.6.tar.gz"
hashes = {{sha256 = "{SHA}"}}

[packages.tool.pdm]
dependencies = []

[[packages]]
name = "helper"
version = "0.1.0"
marker = "\\"default\\" in dependency_groups or \\"dev\\" in dependency_groups"

[packages.directory]
path = "libs/helper"
editable = true

[packages.tool.pdm]
dependencies = ["colorama"]

[tool.pdm]
hashes = {{sha256 = "{SHA}"}}

[[tool.pdm.targets]]
requires_python = ">=3.9"
"""

# The source kinds no writer above produced: vcs, archive, sdist-only by path, several hashes.
OTHER_SOURCES = f"""
lock-version = "1.0"
created-by = "handwritten"
extras = []
dependency-groups = []

[[packages]]
name = "gitdep"
vcs = {{ type = "git", url = "https://vcs.example/gitdep.git", requested-revision = "v1", commit-id = "{"0" * 40}", subdirectory = "src" }}

[[packages]]
name = "hgdep"
vcs = {{ type = "hg", path = "../hgdep", commit-id = "abc123" }}

[[packages]]
name = "archdep"
archive = {{ path = "archives/archdep-1.0.zip", url = "https://files.example/archdep-1.0.zip", size = 10, upload-time = 2025-01-01T00:00:00Z, hashes = {{ sha256 = "{SHA}", md5 = "{"d" * 32}" }}, subdirectory = "pkg" }}

[[packages]]
name = "onlysdist"
version = "1.0"
sdist = {{ name = "onlysdist-1.0.tar.gz", path = "dist/onlysdist-1.0.tar.gz", hashes = {{ sha256 = "{SHA}" }} }}

[[packages]]
name = "empty-wheels-list"
version = "1.0"
sdist = {{ path = "empty_wheels_list-1.0.tar.gz", hashes = {{ sha256 = "{SHA}" }} }}
wheels = []
"""

# An empty lock (nothing to install) is valid.
EMPTY = """
lock-version = "1.0"
created-by = "handwritten"
packages = []
"""

VALID = {
    "spec-example": (SPEC_EXAMPLE, []),
    "pip": (PIP_SHAPE, []),
    "uv": (UV_SHAPE, []),
    "pdm": (PDM_SHAPE, ["packages[1].version"]),
    "other-sources": (OTHER_SOURCES, []),
    "empty": (EMPTY, []),
}


@pytest.mark.parametrize("name", list(VALID))
def test_valid_locks_are_accepted(pylock_schema: Draft202012Validator, name: str) -> None:
    text, lint_warnings = VALID[name]
    doc = tomllib.loads(text)
    assert schema_errors(pylock_schema, doc) == []
    Pylock.from_dict(doc)  # packaging agrees that the sample is valid
    issues = lint_pylock(doc, "pylock.toml")
    assert [i.severity for i in issues] == ["warning"] * len(lint_warnings)
    assert [i.key_path for i in issues] == lint_warnings


def test_spec_example_keeps_publisher_keys_and_tool_datetimes(
    pylock_schema: Draft202012Validator,
) -> None:
    doc = tomllib.loads(SPEC_EXAMPLE)
    assert isinstance(doc["tool"]["mousebender"]["run-on"], dt.datetime)  # a local datetime
    assert doc["packages"][0]["attestation-identities"][0]["workflow"] == "pypi-package.yml"
    assert schema_errors(pylock_schema, doc) == []


# -- invalid locks: each a small change to a valid one ------------------------------------------

BASE = tomllib.loads(
    f"""
lock-version = "1.0"
created-by = "handwritten"

[[packages]]
name = "requests"
version = "2.32.3"
sdist = {{ url = "https://files.example/requests-2.32.3.tar.gz", size = 1, hashes = {{ sha256 = "{SHA}" }} }}
wheels = [{{ url = "https://files.example/requests-2.32.3-py3-none-any.whl", upload-time = 2024-05-29T15:37:47Z, size = 2, hashes = {{ sha256 = "{SHA}" }} }}]

[[packages]]
name = "gitdep"
vcs = {{ type = "git", url = "https://vcs.example/gitdep.git", commit-id = "{"0" * 40}" }}

[[packages]]
name = "localdep"
directory = {{ path = "../localdep" }}

[[packages]]
name = "archdep"
archive = {{ url = "https://files.example/archdep-1.0.tar.gz", hashes = {{ sha256 = "{SHA}" }} }}
"""
)
REQUESTS, GITDEP, LOCALDEP, ARCHDEP = 0, 1, 2, 3
VCS = dict(BASE["packages"][GITDEP]["vcs"])
DIRECTORY = dict(BASE["packages"][LOCALDEP]["directory"])
ARCHIVE = dict(BASE["packages"][ARCHDEP]["archive"])
SDIST = {"url": "https://files.example/x-1.0.tar.gz", "hashes": {"sha256": SHA}}
WHEELS = [{"url": "https://files.example/x-1.0-py3-none-any.whl", "hashes": {"sha256": SHA}}]

Change = Callable[[dict[str, Any]], None]


def set_at(*path: str | int, value: Any) -> Change:
    def change(doc: dict[str, Any]) -> None:
        table: Any = doc
        for step in path[:-1]:
            table = table[step]
        table[path[-1]] = copy.deepcopy(value)

    return change


def del_at(*path: str | int) -> Change:
    def change(doc: dict[str, Any]) -> None:
        table: Any = doc
        for step in path[:-1]:
            table = table[step]
        del table[path[-1]]

    return change


def pkg(index: int, *path: str | int, value: Any = ...) -> Change:
    full = ("packages", index, *path)
    return del_at(*full) if value is ... else set_at(*full, value=value)


# (change, whether packaging.pylock rejects it too). Where packaging accepts, the schema is the
# stricter of the two on purpose (closed tables, url-or-path, hex digests, UTC upload times).
INVALID: dict[str, tuple[Change, bool]] = {
    "missing lock-version": (del_at("lock-version"), True),
    "missing created-by": (del_at("created-by"), True),
    "missing packages": (del_at("packages"), True),
    "lock-version 2.0": (set_at("lock-version", value="2.0"), True),
    "lock-version 1.1": (set_at("lock-version", value="1.1"), False),
    "lock-version number": (set_at("lock-version", value=1.0), True),
    "unknown top-level key": (set_at("markr", value="x"), False),
    "packages not an array": (set_at("packages", value={"name": "x"}), True),
    "environments not an array": (set_at("environments", value="os_name == 'nt'"), True),
    "extra not normalized": (set_at("extras", value=["Cli_Tools"]), True),
    "vcs+directory": (pkg(GITDEP, "directory", value=DIRECTORY), True),
    "vcs+archive": (pkg(GITDEP, "archive", value=ARCHIVE), True),
    "directory+archive": (pkg(LOCALDEP, "archive", value=ARCHIVE), True),
    "vcs+sdist": (pkg(GITDEP, "sdist", value=SDIST), True),
    "vcs+wheels": (pkg(GITDEP, "wheels", value=WHEELS), True),
    "directory+sdist": (pkg(LOCALDEP, "sdist", value=SDIST), True),
    "directory+wheels": (pkg(LOCALDEP, "wheels", value=WHEELS), True),
    "archive+sdist": (pkg(ARCHDEP, "sdist", value=SDIST), True),
    "archive+wheels": (pkg(ARCHDEP, "wheels", value=WHEELS), True),
    "no source": (pkg(LOCALDEP, "directory"), True),
    "only an empty wheels list": (
        set_at("packages", 2, value={"name": "localdep", "wheels": []}),
        True,
    ),
    "missing name": (pkg(REQUESTS, "name"), True),
    "name not normalized": (pkg(REQUESTS, "name", value="Requests"), True),
    "version not a string": (pkg(REQUESTS, "version", value=2), True),
    "marker not a string": (pkg(REQUESTS, "marker", value=True), True),
    "unknown package key": (pkg(REQUESTS, "markr", value="os_name == 'nt'"), False),
    "dependencies item with an unknown key": (
        pkg(REQUESTS, "dependencies", value=[{"name": "idna", "versions": "1"}]),
        False,
    ),
    "wheel without url and path": (pkg(REQUESTS, "wheels", 0, "url"), True),
    "sdist without url and path": (pkg(REQUESTS, "sdist", "url"), True),
    "archive without url and path": (pkg(ARCHDEP, "archive", "url"), True),
    "vcs without url and path": (pkg(GITDEP, "vcs", "url"), True),
    "wheel without hashes": (pkg(REQUESTS, "wheels", 0, "hashes"), True),
    "sdist without hashes": (pkg(REQUESTS, "sdist", "hashes"), True),
    "archive without hashes": (pkg(ARCHDEP, "archive", "hashes"), True),
    "empty wheel hashes": (pkg(REQUESTS, "wheels", 0, "hashes", value={}), True),
    "empty sdist hashes": (pkg(REQUESTS, "sdist", "hashes", value={}), True),
    "empty archive hashes": (pkg(ARCHDEP, "archive", "hashes", value={}), True),
    "hash not a string": (pkg(REQUESTS, "wheels", 0, "hashes", value={"sha256": 1}), True),
    "hash not hex": (pkg(REQUESTS, "wheels", 0, "hashes", value={"sha256": "xyz"}), False),
    "size negative": (pkg(REQUESTS, "wheels", 0, "size", value=-1), False),
    "size a string": (pkg(REQUESTS, "wheels", 0, "size", value="2"), True),
    "size a bool": (pkg(REQUESTS, "sdist", "size", value=True), True),
    "upload-time a date": (
        pkg(REQUESTS, "wheels", 0, "upload-time", value=dt.date(2024, 5, 29)),
        True,
    ),
    "upload-time not UTC": (
        pkg(
            REQUESTS,
            "wheels",
            0,
            "upload-time",
            value=dt.datetime(2024, 5, 29, 15, 37, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ),
        False,
    ),
    "upload-time local": (
        pkg(REQUESTS, "wheels", 0, "upload-time", value=dt.datetime(2024, 5, 29, 15, 37)),
        False,
    ),
    "unknown wheel key": (pkg(REQUESTS, "wheels", 0, "yanked", value=False), False),
    "unknown sdist key": (pkg(REQUESTS, "sdist", "filename", value="x.tar.gz"), False),
    "vcs without commit-id": (pkg(GITDEP, "vcs", "commit-id"), True),
    "vcs without type": (pkg(GITDEP, "vcs", "type"), True),
    "vcs of an unregistered type": (pkg(GITDEP, "vcs", "type", value="cvs"), False),
    "unknown vcs key": (pkg(GITDEP, "vcs", "branch", value="main"), False),
    "directory without path": (pkg(LOCALDEP, "directory", "path"), True),
    "editable not a bool": (pkg(LOCALDEP, "directory", "editable", value="yes"), True),
    "unknown directory key": (pkg(LOCALDEP, "directory", "editible", value=True), False),
    "unknown archive key": (pkg(ARCHDEP, "archive", "sha256", value=SHA), False),
    "attestation without kind": (
        pkg(REQUESTS, "attestation-identities", value=[{"repository": "psf/requests"}]),
        True,
    ),
    "tool not a table": (set_at("tool", value="pdm"), True),
}


def test_base_of_the_invalid_cases_is_valid(pylock_schema: Draft202012Validator) -> None:
    assert schema_errors(pylock_schema, BASE) == []
    Pylock.from_dict(BASE)


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_locks_are_rejected(pylock_schema: Draft202012Validator, case: str) -> None:
    change, packaging_rejects = INVALID[case]
    doc = copy.deepcopy(BASE)
    change(doc)
    assert schema_errors(pylock_schema, doc), f"schema accepted: {case}"
    if packaging_rejects:
        with pytest.raises(PylockValidationError):
            Pylock.from_dict(doc)
    else:
        Pylock.from_dict(doc)  # documents where the schema is stricter than packaging


def test_attestation_identities_are_open_beyond_kind(pylock_schema: Draft202012Validator) -> None:
    doc = copy.deepcopy(BASE)
    doc["packages"][0]["attestation-identities"] = [
        {"kind": "GitLab", "repository": "g/r", "environment": "prod", "anything-else": 1}
    ]
    assert schema_errors(pylock_schema, doc) == []


def test_tool_tables_are_free_form(pylock_schema: Draft202012Validator) -> None:
    doc = copy.deepcopy(BASE)
    doc["tool"] = {"x": {"markr": 1, "nested": {"when": dt.datetime(2025, 1, 1)}}}
    doc["packages"][0]["tool"] = {"y": [1, "two"]}
    assert schema_errors(pylock_schema, doc) == []


# -- locks written by the tools, generated at run time ---------------------------------------------

_NETWORK_ERROR = re.compile(
    r"connect|network|dns|resolve host|name resolution|timed? ?out|unreachable|"
    r"failed to fetch|could not fetch|max retries|offline|no such host|ssl",
    re.IGNORECASE,
)


def _tool(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it is a test dependency: pip install -e .[test])")
    return found


def _run(cmd: list[str], cwd: Path) -> None:
    """Run a lock command; skip when it fails for want of the registry, fail otherwise."""
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", PIP_DISABLE_PIP_VERSION_CHECK="1")
    try:
        out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip(f"{' '.join(cmd[:3])} timed out: the package registry is slow or unreachable")
    if out.returncode != 0:
        tail = "\n".join(out.stderr.strip().splitlines()[-5:])
        if _NETWORK_ERROR.search(out.stderr):
            pytest.skip(f"package registry not reachable for {' '.join(cmd[:3])}: {tail}")
        pytest.fail(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")


def _check_generated(validator: Draft202012Validator, lock: Path) -> dict[str, Any]:
    doc: dict[str, Any] = tomllib.loads(lock.read_text(encoding="utf-8"))
    assert schema_errors(validator, doc) == []
    assert lint_pylock(doc, lock.name) == []
    Pylock.from_dict(doc)
    assert doc["packages"], "the tool wrote an empty lock"
    return doc


REQUIREMENTS = "requests\ncolorama ; sys_platform == 'win32'\n"


@pytest.mark.network
def test_uv_pip_compile_for_this_platform(
    pylock_schema: Draft202012Validator, tmp_path: Path
) -> None:
    (tmp_path / "requirements.in").write_text(REQUIREMENTS)
    _run(
        [_tool("uv"), "pip", "compile", "requirements.in", "--format", "pylock.toml",
         "-o", "pylock.toml", "--python", sys.executable, "--quiet"],
        tmp_path,
    )  # fmt: skip
    doc = _check_generated(pylock_schema, tmp_path / "pylock.toml")
    assert doc["created-by"] == "uv"


@pytest.mark.network
def test_uv_pip_compile_universal(pylock_schema: Draft202012Validator, tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_text(REQUIREMENTS)
    _run(
        [_tool("uv"), "pip", "compile", "requirements.in", "--universal", "--format",
         "pylock.toml", "-o", "pylock.universal.toml", "--python", sys.executable, "--quiet"],
        tmp_path,
    )  # fmt: skip
    doc = _check_generated(pylock_schema, tmp_path / "pylock.universal.toml")
    assert any("marker" in package for package in doc["packages"])


TINY_PROJECT = """
[project]
name = "tiny"
version = "0.1.0"
requires-python = ">=3.9"
dependencies = ["idna"]

[project.optional-dependencies]
cli = ["colorama"]

[dependency-groups]
dev = ["iniconfig"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""


@pytest.mark.network
def test_uv_export(pylock_schema: Draft202012Validator, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(TINY_PROJECT)
    uv = _tool("uv")
    _run([uv, "lock", "--python", sys.executable, "--quiet"], tmp_path)
    _run(
        [uv, "export", "--format", "pylock.toml", "-o", "pylock.toml", "--all-extras",
         "--all-groups", "--python", sys.executable, "--quiet"],
        tmp_path,
    )  # fmt: skip
    doc = _check_generated(pylock_schema, tmp_path / "pylock.toml")
    tiny = [p for p in doc["packages"] if p["name"] == "tiny"]
    assert tiny and "directory" in tiny[0] and "version" not in tiny[0]


@pytest.mark.network
def test_pip_lock(pylock_schema: Draft202012Validator, tmp_path: Path) -> None:
    _run(
        [sys.executable, "-m", "pip", "lock", "requests", "-o", "pylock.toml", "--quiet"],
        tmp_path,
    )
    doc = _check_generated(pylock_schema, tmp_path / "pylock.toml")
    assert doc["created-by"] == "pip"


# -- plan.schema.json ----------------------------------------------------------------------------


def valid_plan() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "lock": "pylock.toml",
        "venv": ".venv",
        "target": {
            "python": "3.12.1",
            "implementation": "cpython",
            "platform": "manylinux_2_36_x86_64",
            "executable": ".venv/bin/python",
        },
        "changes": [
            {
                "action": "add",
                "name": "idna",
                "version": "3.10",
                "old_version": None,
                "wheel": "idna-3.10-py3-none-any.whl",
                "download_size": 70442,
                "reason": "not installed",
            },
            {
                "action": "replace",
                "name": "requests",
                "version": "2.32.3",
                "old_version": "2.31.0",
                "wheel": "requests-2.32.3-py3-none-any.whl",
                "download_size": None,
                "reason": "version differs (cached)",
            },
            {
                "action": "remove",
                "name": "six",
                "version": None,
                "old_version": "1.16.0",
                "wheel": None,
                "download_size": None,
                "reason": "not in the lock",
            },
            {
                "action": "keep",
                "name": "certifi",
                "version": "2024.8.30",
                "old_version": "2024.8.30",
                "wheel": None,
                "download_size": None,
                "reason": "up to date",
            },
        ],
        "summary": {"add": 1, "replace": 1, "remove": 1, "keep": 1, "download_bytes": 70442},
    }


def test_plan_schema_accepts_a_plan(plan_schema: Draft202012Validator) -> None:
    assert schema_errors(plan_schema, valid_plan()) == []
    empty = valid_plan()
    empty["changes"] = []
    empty["summary"] = dict.fromkeys(empty["summary"], 0)
    assert schema_errors(plan_schema, empty) == []


PLAN_INVALID: dict[str, Change] = {
    "missing schema_version": del_at("schema_version"),
    "schema_version 2": set_at("schema_version", value=2),
    "missing lock": del_at("lock"),
    "missing venv": del_at("venv"),
    "missing target": del_at("target"),
    "missing changes": del_at("changes"),
    "missing summary": del_at("summary"),
    "unknown top-level key": set_at("extra", value=1),
    "target without executable": del_at("target", "executable"),
    "target with an unknown key": set_at("target", "abi", value="cp312"),
    "unknown action": set_at("changes", 0, "action", value="upgrade"),
    "change without reason": del_at("changes", 0, "reason"),
    "change without old_version": del_at("changes", 0, "old_version"),
    "change with an unknown key": set_at("changes", 0, "hash", value="x"),
    "name not normalized": set_at("changes", 0, "name", value="Requests"),
    "version a number": set_at("changes", 0, "version", value=3.1),
    "download_size a string": set_at("changes", 0, "download_size", value="70442"),
    "download_size negative": set_at("changes", 0, "download_size", value=-1),
    "summary without keep": del_at("summary", "keep"),
    "summary count a string": set_at("summary", "add", value="1"),
    "summary with an unknown key": set_at("summary", "skipped", value=0),
}


@pytest.mark.parametrize("case", list(PLAN_INVALID))
def test_plan_schema_rejects(plan_schema: Draft202012Validator, case: str) -> None:
    doc = valid_plan()
    PLAN_INVALID[case](doc)
    assert schema_errors(plan_schema, doc), f"schema accepted: {case}"
