"""envmat.lock.lint: every check on a raw pylock.toml, with a lock that passes it and one that fails."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from packaging.markers import Marker
from packaging.pylock import Pylock, PylockValidationError

from envmat.errors import EnvmatError
from envmat.lock import lint as lint_module
from envmat.lock.lint import LintIssue, lint_pylock, raise_if_errors, toml_to_json_compatible

SHA256 = "a" * 64
MD5 = "b" * 32
UTC = dt.timezone.utc


def base_lock() -> dict[str, Any]:
    """A lock using every source kind, free of issues (checked by test_base_lock_is_clean)."""
    return {
        "lock-version": "1.0",
        "environments": ["sys_platform == 'linux'"],
        "requires-python": ">=3.9",
        "extras": ["cli"],
        "dependency-groups": ["dev"],
        "default-groups": ["default"],
        "created-by": "handwritten",
        "packages": [
            {
                "name": "attrs",
                "version": "25.1.0",
                "marker": "'cli' in extras and sys_platform == 'linux'",
                "requires-python": ">=3.8",
                "index": "https://index.example/simple/",
                "sdist": {
                    "url": "https://files.example/attrs-25.1.0.tar.gz",
                    "upload-time": dt.datetime(2025, 1, 25, 11, 30, 10, tzinfo=UTC),
                    "size": 810562,
                    "hashes": {"sha256": SHA256},
                },
                "wheels": [
                    {
                        "name": "attrs-25.1.0-py3-none-any.whl",
                        "url": "https://files.example/attrs-25.1.0-py3-none-any.whl",
                        "size": 63152,
                        "hashes": {"sha256": SHA256, "blake2b": "c" * 128},
                    }
                ],
                "attestation-identities": [
                    {"kind": "GitHub", "repository": "python-attrs/attrs", "workflow": "ci.yml"}
                ],
                "tool": {"someone": {"anything": ["goes", 1]}},
            },
            {
                "name": "gitdep",
                "marker": "'dev' in dependency_groups",
                "vcs": {
                    "type": "git",
                    "url": "https://vcs.example/gitdep.git",
                    "requested-revision": "main",
                    "commit-id": "0" * 40,
                    "subdirectory": "src",
                },
            },
            {"name": "localdep", "directory": {"path": "../localdep", "editable": True}},
            {
                "name": "archdep",
                "archive": {
                    "path": "archives/archdep-1.0.tar.gz",
                    "size": 100,
                    "hashes": {"sha256": SHA256},
                },
            },
        ],
        "tool": {"handwritten": {"run-on": dt.datetime(2025, 3, 6, 12, 28, 57)}},
    }


def lint(data: Mapping[str, Any], filename: str = "pylock.toml") -> list[LintIssue]:
    return lint_pylock(data, filename)


def only(issues: list[LintIssue]) -> LintIssue:
    assert len(issues) == 1, issues
    return issues[0]


def test_base_lock_is_clean() -> None:
    data = base_lock()
    assert lint(data) == []
    Pylock.from_dict(data)  # the fixture is a valid lock for packaging too


def test_lint_issue_is_frozen_and_keyword_only() -> None:
    issue = LintIssue(severity="warning", key_path="", message="m")
    assert issue.hint is None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        issue.message = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        LintIssue("warning", "", "m")  # type: ignore[call-arg]


# -- file name (spec §File Name) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    [
        "pylock.toml",
        "pylock.dev.toml",
        "pylock.black-universal.toml",
        "pylock.py3_12.toml",
        "some/dir/pylock.toml",
    ],
)
def test_valid_file_names(filename: str) -> None:
    assert lint(base_lock(), filename) == []


@pytest.mark.parametrize(
    ("filename", "suggestion"),
    [
        ("requests.pylock.toml", "pylock.requests.toml"),
        ("pylock.a.b.toml", "pylock.a-b.toml"),
        ("Pylock.toml", "pylock.toml"),
        ("PYLOCK.DEV.TOML", "pylock.DEV.toml"),
        ("pylock..toml", "pylock.toml"),
        ("lock.toml", "pylock.lock.toml"),
        ("dir/pylock.toml.bak", "pylock.toml-bak.toml"),
    ],
)
def test_invalid_file_names_warn(filename: str, suggestion: str) -> None:
    issue = only(lint(base_lock(), filename))
    assert issue.severity == "warning"
    assert issue.key_path == ""
    assert "is not a valid lock file name" in issue.message
    assert filename.rsplit("/", 1)[-1] in issue.message
    assert issue.hint == f"rename it to {suggestion!r}"


# -- lock-version (spec §lock-version) ----------------------------------------------------------


@pytest.mark.parametrize("version", ["2.0", "3.1", "2"])
def test_newer_major_version_is_an_error(version: str) -> None:
    data = base_lock()
    data["lock-version"] = version
    data["no-such-key"] = 1  # not reported: nothing else is checked under an unknown major
    issue = only(lint(data))
    assert issue.severity == "error"
    assert issue.key_path == "lock-version"
    assert issue.message == f"lock-version {version} is not supported: envmat reads 1.x"
    assert issue.hint is not None and "upgrade envmat" in issue.hint


def test_older_major_version_is_an_error() -> None:
    data = base_lock()
    data["lock-version"] = "0.9"
    issue = only(lint(data))
    assert issue.severity == "error"
    assert issue.message == "lock-version 0.9 is not supported: envmat reads 1.x"


def test_newer_minor_version_lists_unknown_keys_once() -> None:
    data = base_lock()
    data["lock-version"] = "1.1"
    data["signature"] = "..."
    data["packages"][0]["wheels"][0]["yanked"] = False
    data["packages"][1]["markr"] = "x"  # not reported as a typo under 1.1: it may be a new key
    issue = only(lint(data))
    assert issue.severity == "warning"
    assert issue.key_path == "lock-version"
    assert "lock-version 1.1 is newer than 1.0" in issue.message
    assert "signature, packages[0].wheels[0].yanked, packages[1].markr" in issue.message


def test_newer_minor_version_without_unknown_keys_still_warns() -> None:
    data = base_lock()
    data["lock-version"] = "1.2"
    issue = only(lint(data))
    assert issue.severity == "warning"
    assert "no key envmat does not know" in issue.message


def test_newer_minor_version_truncates_a_long_key_list() -> None:
    data = base_lock()
    data["lock-version"] = "1.1"
    for i in range(12):
        data[f"new-key-{i}"] = i
    assert "and 2 more" in only(lint(data)).message


@pytest.mark.parametrize("version", [None, 1.0, "one", ""])
def test_missing_or_malformed_version_is_left_to_packaging(version: object) -> None:
    data = base_lock()
    if version is None:
        del data["lock-version"]
    else:
        data["lock-version"] = version
    assert lint(data) == []
    with pytest.raises(PylockValidationError):
        Pylock.from_dict(data)


def test_version_1_0_spelled_differently_is_fine() -> None:
    data = base_lock()
    data["lock-version"] = "1"
    assert lint(data) == []


# -- unknown keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("place", "key", "suggestion"),
    [
        ((), "created_by", "created-by"),
        ((), "Packages", "packages"),
        ((), "enviroments", "environments"),
        (("packages", 0), "markr", "marker"),
        (("packages", 0), "requires_python", "requires-python"),
        (("packages", 0), "wheel", "wheels"),
        (("packages", 0), "attestation_identities", "attestation-identities"),
        (("packages", 0, "wheels", 0), "hash", "hashes"),
        (("packages", 0, "wheels", 0), "upload_time", "upload-time"),
        (("packages", 0, "sdist"), "urll", "url"),
        (("packages", 1, "vcs"), "commit_id", "commit-id"),
        (("packages", 1, "vcs"), "requested-revison", "requested-revision"),
        (("packages", 2, "directory"), "editible", "editable"),
        (("packages", 3, "archive"), "subdirectroy", "subdirectory"),
    ],
)
def test_likely_typo_warns_with_suggestion(
    place: tuple[str | int, ...], key: str, suggestion: str
) -> None:
    data = base_lock()
    table: Any = data
    for step in place:
        table = table[step]
    table[key] = "x"
    issue = only(lint(data))
    assert issue.severity == "warning"
    assert issue.message == f"unknown key {key!r} (did you mean {suggestion!r}?)"
    expected_path = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in place).lstrip(".")
    assert issue.key_path == (f"{expected_path}.{key}" if expected_path else key)


@pytest.mark.parametrize(
    ("place", "key_path"),
    [
        ((), "frobnicate"),
        (("packages", 0), "packages[0].frobnicate"),
        (("packages", 0, "wheels", 0), "packages[0].wheels[0].frobnicate"),
        (("packages", 0, "sdist"), "packages[0].sdist.frobnicate"),
        (("packages", 1, "vcs"), "packages[1].vcs.frobnicate"),
        (("packages", 2, "directory"), "packages[2].directory.frobnicate"),
        (("packages", 3, "archive"), "packages[3].archive.frobnicate"),
    ],
)
def test_unknown_key_warns_everywhere(place: tuple[str | int, ...], key_path: str) -> None:
    data = base_lock()
    table: Any = data
    for step in place:
        table = table[step]
    table["frobnicate"] = 1
    issue = only(lint(data))
    assert issue.severity == "warning"
    assert issue.key_path == key_path
    assert issue.message == "unknown key 'frobnicate'; envmat ignores it"


def test_unknown_key_with_odd_characters_is_quoted_in_the_path() -> None:
    data = base_lock()
    data["packages"][0]["x.y z"] = 1
    assert only(lint(data)).key_path == 'packages[0]."x.y z"'


def test_free_form_tables_are_not_checked() -> None:
    data = base_lock()
    data["tool"]["whatever"] = {"markr": 1, "hashes": {}}
    data["packages"][0]["tool"]["x"] = {"requires_python": "no"}
    data["packages"][0]["attestation-identities"][0]["custom-publisher-key"] = "yes"
    data["packages"][0]["dependencies"] = [{"name": "gitdep", "vcs": {"url": "u"}}]
    assert lint(data) == []


def test_malformed_structure_is_left_to_packaging() -> None:
    data: dict[str, Any] = {
        "lock-version": "1.0",
        "created-by": "x",
        "packages": [
            "not a table",
            {"name": "a", "wheels": "not a list", "sdist": "not a table"},
            {"name": "b", "wheels": ["not a table"], "marker": 3},
            {"name": "c", "archive": {"url": "u", "hashes": "not a table"}},
        ],
    }
    assert lint(data) == []
    assert lint({"packages": {"not": "a list"}}) == []


# -- hashes (spec §hashes) ----------------------------------------------------------------------


def test_hashes_without_a_verifiable_algorithm_are_an_error() -> None:
    data = base_lock()
    data["packages"][0]["wheels"][0]["hashes"] = {"blake3": "d" * 64, "xxh128": "e" * 32}
    issue = only(lint(data))
    assert issue.severity == "error"
    assert issue.key_path == "packages[0].wheels[0].hashes"
    assert "no hash algorithm envmat can verify" in issue.message
    assert "the lock has: blake3, xxh128" in issue.message
    assert issue.hint == "lock again with sha256 hashes"


@pytest.mark.parametrize(
    ("source", "key_path"),
    [("sdist", "packages[0].sdist.hashes"), ("archive", "packages[3].archive.hashes")],
)
def test_hash_checks_cover_sdist_and_archive(source: str, key_path: str) -> None:
    data = base_lock()
    package = data["packages"][0 if source == "sdist" else 3]
    package[source]["hashes"] = {"crc32": "abcd"}
    issue = only(lint(data))
    assert (issue.severity, issue.key_path) == ("error", key_path)


def test_shake_alone_is_not_verifiable() -> None:
    # envmat's fetcher cannot compute a shake digest without a length the lock does not give.
    assert "shake_128" not in lint_module.VERIFIABLE_ALGORITHMS
    data = base_lock()
    data["packages"][0]["wheels"][0]["hashes"] = {"shake_128": "f" * 32}
    assert only(lint(data)).severity == "error"


def test_empty_hashes_are_an_error() -> None:
    data = base_lock()
    data["packages"][0]["sdist"]["hashes"] = {}
    issue = only(lint(data))
    assert (issue.severity, issue.key_path) == ("error", "packages[0].sdist.hashes")
    assert "empty" in issue.message


def test_uppercase_algorithm_warns_but_verifies() -> None:
    data = base_lock()
    data["packages"][0]["wheels"][0]["hashes"] = {"SHA256": SHA256}
    issue = only(lint(data))
    assert issue.severity == "warning"
    assert issue.key_path == "packages[0].wheels[0].hashes.SHA256"
    assert "should be lowercase ('sha256')" in issue.message


@pytest.mark.parametrize("digest", ["abc", "z" * 64, "a" * 63, "a" * 65])
def test_malformed_digest_is_an_error(digest: str) -> None:
    data = base_lock()
    data["packages"][0]["wheels"][0]["hashes"] = {"sha256": digest}
    issue = only(lint(data))
    assert (issue.severity, issue.key_path) == ("error", "packages[0].wheels[0].hashes.sha256")
    assert "64 hexadecimal digits" in issue.message


def test_uppercase_hex_digest_is_fine() -> None:
    data = base_lock()
    data["packages"][0]["wheels"][0]["hashes"] = {"sha256": "ABCDEF" + "0" * 58}
    assert lint(data) == []


def test_only_weak_algorithms_warn() -> None:
    data = base_lock()
    data["packages"][0]["wheels"][0]["hashes"] = {"md5": MD5}
    issue = only(lint(data))
    assert (issue.severity, issue.key_path) == ("warning", "packages[0].wheels[0].hashes")
    assert "weak" in issue.message


def test_weak_algorithm_next_to_a_strong_one_is_fine() -> None:
    data = base_lock()
    data["packages"][0]["wheels"][0]["hashes"] = {"md5": MD5, "sha256": SHA256}
    assert lint(data) == []


# -- markers (dependency specifiers, 2026-01 amendment) ----------------------------------------


@pytest.mark.parametrize(
    ("marker", "fix"),
    [
        ('extra == "cli"', "`'cli' in extras`"),
        ("extra == 'cli' and sys_platform == 'linux'", "`'cli' in extras`"),
        ("python_version >= '3.9' and (extra == \"cli\" or os_name == 'nt')", "`'cli' in extras`"),
        ('"cli" == extra', "`'cli' in extras`"),
        ("extra != 'cli'", "`'cli' not in extras`"),
        ("'cli' in extra", "`'cli' in extras`"),
        ('dependency_groups == "dev"', "`'dev' in dependency_groups`"),
        ('dependency_groups != "dev"', "`'dev' not in dependency_groups`"),
        ('extras == "cli"', "`'cli' in extras`"),
        ('extras > "cli"', "`'<name>' in extras`"),
    ],
)
def test_legacy_marker_forms_are_errors(marker: str, fix: str) -> None:
    data = base_lock()
    data["packages"][0]["marker"] = marker
    issue = only(lint(data))
    assert issue.severity == "error"
    assert issue.key_path == "packages[0].marker"
    assert f"write {fix} instead" in issue.message
    assert issue.hint is not None and "'in'" in issue.hint


def test_each_legacy_comparison_is_reported() -> None:
    data = base_lock()
    data["packages"][0]["marker"] = "extra == 'a' or extra == 'b' or dependency_groups == 'c'"
    messages = [issue.message for issue in lint(data)]
    assert len(messages) == 3
    assert "`'a' in extras`" in messages[0] and "`'b' in extras`" in messages[1]


@pytest.mark.parametrize(
    "marker",
    [
        "'cli' in extras",
        '"cli" not in extras',
        "'dev' in dependency_groups and sys_platform == 'win32'",
        "'default' in dependency_groups or 'dev' in dependency_groups",
        "python_full_version >= '3.9.1' and platform_machine == 'x86_64'",
        "'extra' in extras",  # a value spelled like the variable
    ],
)
def test_set_marker_forms_are_fine(marker: str) -> None:
    data = base_lock()
    data["packages"][0]["marker"] = marker
    assert lint(data) == []


def test_unparsable_marker_is_left_to_packaging() -> None:
    data = base_lock()
    data["packages"][0]["marker"] = "extra === === 'x'"
    assert lint(data) == []


class _OpaqueMarker:
    """A Marker whose private tree is not there, as a future packaging might have it."""

    def __init__(self, text: str) -> None:
        self.text = text


def test_tokenizer_fallback_when_the_marker_tree_is_unreadable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lint_module, "Marker", _OpaqueMarker)
    data = base_lock()
    data["packages"][0]["marker"] = "sys_platform == 'linux' and extra == \"cli\""
    issue = only(lint_pylock(data, "pylock.toml"))
    assert "write `'cli' in extras` instead" in issue.message
    data["packages"][0]["marker"] = "'cli' in extras and 'extra' not in dependency_groups"
    assert lint_pylock(data, "pylock.toml") == []


@pytest.mark.parametrize(
    "marker",
    [
        'extra == "cli"',
        "'a' in extra or extras == 'b'",
        "(dependency_groups == 'dev' and 'x' in extras) or extra != 'y'",
        "'cli' in extras",
        "python_version < '3.10' and (\"x\" not in extras or os_name == 'nt')",
        "'a'=='a' and extra=='b'",
    ],
)
def test_tokenizer_agrees_with_the_marker_tree(marker: str) -> None:
    tree = [lint_module._judge(c) for c in lint_module._walk_marker_tree(Marker(marker)._markers)]
    tokens = [lint_module._judge(c) for c in lint_module._tokenize_comparisons(marker)]
    assert tree == tokens


# -- version on a source tree (spec §packages.version) -----------------------------------------


@pytest.mark.parametrize(("index", "kind"), [(1, "vcs"), (2, "directory")])
def test_version_on_a_source_tree_warns(index: int, kind: str) -> None:
    data = base_lock()
    data["packages"][index]["version"] = "1.0"
    issue = only(lint(data))
    assert issue.severity == "warning"
    assert issue.key_path == f"packages[{index}].version"
    assert f"a {kind} package must not have a version" in issue.message


def test_version_on_an_archive_is_fine() -> None:
    data = base_lock()
    data["packages"][3]["version"] = "1.0"
    assert lint(data) == []


# -- raise_if_errors ----------------------------------------------------------------------------

WARNING = LintIssue(
    severity="warning", key_path="packages[0].markr", message="unknown key", hint="h1"
)
ERROR = LintIssue(
    severity="error", key_path="packages[1].wheels[0].hashes", message="bad", hint="h2"
)
FILE_WARNING = LintIssue(severity="warning", key_path="", message="bad name")


def test_no_issues_no_warnings() -> None:
    assert raise_if_errors([], "dir/pylock.toml", strict=False) == []
    assert raise_if_errors([], "dir/pylock.toml", strict=True) == []


def test_warnings_are_returned_when_not_strict() -> None:
    assert raise_if_errors([WARNING, FILE_WARNING], "pylock.toml", strict=False) == [
        WARNING,
        FILE_WARNING,
    ]


def test_one_error_names_its_key_path() -> None:
    with pytest.raises(EnvmatError) as info:
        raise_if_errors([WARNING, ERROR], "dir/pylock.toml", strict=False)
    error = info.value
    assert error.message == "pylock.toml is not a valid lock: bad"
    assert error.context == ("in dir/pylock.toml: packages[1].wheels[0].hashes",)
    assert error.hint == "h2"
    assert error.details == ()


def test_strict_turns_warnings_into_errors_and_collects_all() -> None:
    with pytest.raises(EnvmatError) as info:
        raise_if_errors([WARNING, ERROR, FILE_WARNING], "dir/pylock.dev.toml", strict=True)
    error = info.value
    assert error.message == "pylock.dev.toml is not a valid lock (3 problems)"
    assert error.context == ("in dir/pylock.dev.toml",)
    assert error.details == (
        "packages[1].wheels[0].hashes: bad",
        "packages[0].markr: unknown key (warning, an error with --strict)",
        "bad name (warning, an error with --strict)",
    )
    assert error.hint is not None and "--strict" in error.hint
    rendered = error.render()
    assert rendered.startswith("error: pylock.dev.toml is not a valid lock (3 problems)\n")
    assert "  - packages[1].wheels[0].hashes: bad" in rendered


def test_strict_single_file_level_warning() -> None:
    with pytest.raises(EnvmatError) as info:
        raise_if_errors([FILE_WARNING], "lock.toml", strict=True)
    assert info.value.context == ("in lock.toml",)
    assert info.value.message == "lock.toml is not a valid lock: bad name"


def test_end_to_end_errors_from_a_real_lint() -> None:
    data = base_lock()
    data["packages"][0]["marker"] = "extra == 'cli'"
    data["packages"][0]["wheels"][0]["hashes"] = {"blake3": "0" * 64}
    data["packages"][0]["markr"] = "x"
    issues = lint(data)
    assert [i.severity for i in issues] == ["warning", "error", "error"]
    with pytest.raises(EnvmatError) as info:
        raise_if_errors(issues, "pylock.toml", strict=False)
    assert len(info.value.details) == 2


# -- toml_to_json_compatible --------------------------------------------------------------------


def test_toml_to_json_compatible_converts_dates_and_times_recursively() -> None:
    data = {
        "a": dt.datetime(2025, 1, 25, 11, 30, 10, 164985, tzinfo=UTC),
        "b": [dt.date(2025, 1, 2), {"c": dt.time(1, 2, 3)}],
        "d": (1, "x", True, 1.5),
    }
    assert toml_to_json_compatible(data) == {
        "a": "2025-01-25T11:30:10.164985+00:00",
        "b": ["2025-01-02", {"c": "01:02:03"}],
        "d": [1, "x", True, 1.5],
    }


def test_lint_does_not_mutate_its_input() -> None:
    data = base_lock()
    data["packages"][0]["marker"] = "extra == 'x'"
    before = copy.deepcopy(data)
    lint(data)
    assert data == before


@pytest.mark.parametrize(
    ("url", "why"),
    [("http://[::1/a-1.0-py3-none-any.whl", "Invalid IPv6 URL"), ("http://h:99999/a.whl", "Port out of range")],
)
def test_a_url_that_is_not_one_is_an_error_at_its_key(url: str, why: str) -> None:
    """urlsplit refuses it: said at the key, not as a traceback from the download."""
    data = base_lock()
    data["packages"][0]["wheels"][0]["url"] = url
    issue = only(lint(data))
    assert (issue.severity, issue.key_path) == ("error", "packages[0].wheels[0].url")
    assert url in issue.message and why in issue.message


def test_a_negative_size_is_an_error() -> None:
    data = base_lock()
    data["packages"][3]["archive"]["size"] = -5
    issue = only(lint(data))
    assert (issue.severity, issue.key_path) == ("error", "packages[3].archive.size")
