"""Checks on a raw pylock.toml that ``packaging.pylock`` leaves out: name, version, keys, hashes, URLs, sizes, markers."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import PurePath
from typing import Any, Literal

from attrs import frozen
from packaging.markers import InvalidMarker, Marker
from packaging.version import InvalidVersion, Version

from ..errors import EnvmatError
from .model import url_problem

__all__ = [
    "VERIFIABLE_ALGORITHMS",
    "LintIssue",
    "lint_pylock",
    "raise_if_errors",
    "toml_to_json_compatible",
]

SPEC_URL = "https://packaging.python.org/en/latest/specifications/pylock-toml/"

# The keys of lock-version 1.0, in the spec's order (spec sections `lock-version` .. `[tool]`).
TOP_LEVEL_KEYS = (
    "lock-version",
    "environments",
    "requires-python",
    "extras",
    "dependency-groups",
    "default-groups",
    "created-by",
    "packages",
    "tool",
)
PACKAGE_KEYS = (
    "name",
    "version",
    "marker",
    "requires-python",
    "dependencies",
    "vcs",
    "directory",
    "archive",
    "index",
    "sdist",
    "wheels",
    "attestation-identities",
    "tool",
)
VCS_KEYS = ("type", "url", "path", "requested-revision", "commit-id", "subdirectory")
DIRECTORY_KEYS = ("path", "editable", "subdirectory")
ARCHIVE_KEYS = ("url", "path", "size", "upload-time", "hashes", "subdirectory")
# [packages.sdist] and [[packages.wheels]] share their keys.
FILE_KEYS = ("name", "upload-time", "url", "path", "size", "hashes")

# What envmat's fetcher can check: every guaranteed algorithm with a fixed digest size (the
# shake_* digests need a length, which a lock does not record).
VERIFIABLE_ALGORITHMS = frozenset(
    algo for algo in hashlib.algorithms_guaranteed if not algo.startswith("shake_")
)
WEAK_ALGORITHMS = frozenset({"md5", "sha1"})

# Spec §File Name: pylock.toml, or pylock.<name>.toml with no dot in <name>.
_FILE_NAME_RE = re.compile(r"^pylock\.([^.]+)\.toml$")
_BARE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
# Marker variables that only the set-valued form `'name' in <variable>` may use in a lock.
_SET_VARIABLES = ("extras", "dependency_groups")

_REGENERATE_HINT = "fix the lock by hand, or run the lock command that wrote it again"


@frozen(kw_only=True)
class LintIssue:
    """One problem found in a lock file, located by its key path (``""`` for the file itself)."""

    severity: Literal["warning", "error"]
    key_path: str
    message: str
    hint: str | None = None


def lint_pylock(data: Mapping[str, Any], filename: str) -> list[LintIssue]:
    """Every issue in the raw TOML ``data`` of a pylock file named ``filename``, errors and warnings.

    Structure and types are ``packaging.pylock.Pylock.from_dict``'s job: whatever it rejects is
    skipped here, so the two never report the same problem twice.
    """
    issues = _check_file_name(filename)
    version_issue, newer_minor = _check_lock_version(data.get("lock-version"))
    if version_issue is not None and version_issue.severity == "error":
        # An unsupported major version may mean anything; the other checks would only be noise.
        return [*issues, version_issue]
    unknown = list(_unknown_keys(data))
    if newer_minor:
        # Spec §lock-version: a supported major with an unknown minor SHOULD warn about unknown
        # keys; they are expected there, so they are listed once rather than guessed at as typos.
        issues.append(
            _newer_minor_issue(str(data["lock-version"]), [path for path, _, _ in unknown])
        )
    else:
        issues += [_unknown_key_issue(path, key, known) for path, key, known in unknown]
    packages = data.get("packages")
    if isinstance(packages, list):
        for index, package in enumerate(packages):
            if isinstance(package, Mapping):
                issues += _check_package(f"packages[{index}]", package)
    return issues


def raise_if_errors(issues: Sequence[LintIssue], lock_path: str, strict: bool) -> list[LintIssue]:
    """Raise one ``EnvmatError`` listing every error (and every warning when ``strict``).

    Returns the warnings when nothing fails, for the caller to show.
    """
    warnings = [issue for issue in issues if issue.severity == "warning"]
    failing = [issue for issue in issues if issue.severity == "error"]
    if strict:
        failing += warnings
    if not failing:
        return warnings
    name = PurePath(lock_path).name or lock_path
    if len(failing) == 1:
        issue = failing[0]
        where = f"in {lock_path}: {issue.key_path}" if issue.key_path else f"in {lock_path}"
        raise EnvmatError(
            f"{name} is not a valid lock: {issue.message}",
            context=[where],
            hint=_combined_hint(failing, strict),
        )
    raise EnvmatError(
        f"{name} is not a valid lock ({len(failing)} problems)",
        context=[f"in {lock_path}"],
        details=[_detail_line(issue) for issue in failing],
        hint=_combined_hint(failing, strict),
    )


def toml_to_json_compatible(obj: Any) -> Any:
    """``obj`` with TOML dates and times as RFC 3339 strings, ready for JSON or JSON Schema."""
    if isinstance(obj, Mapping):
        return {str(key): toml_to_json_compatible(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [toml_to_json_compatible(value) for value in obj]
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    return obj


# -- file name and lock-version -----------------------------------------------------------------


def _check_file_name(filename: str) -> list[LintIssue]:
    name = PurePath(filename).name
    if name == "pylock.toml" or _FILE_NAME_RE.match(name):
        return []
    return [
        LintIssue(
            severity="warning",
            key_path="",
            message=f"{name!r} is not a valid lock file name: PEP 751 locks are named "
            "'pylock.toml' or 'pylock.<name>.toml' (lowercase, no dot inside <name>)",
            hint=f"rename it to {_suggest_file_name(name)!r}",
        )
    ]


def _suggest_file_name(name: str) -> str:
    stem = name[: -len(".toml")] if name.lower().endswith(".toml") else name
    parts = [part for part in re.split(r"[.]+", stem) if part and part.lower() != "pylock"]
    middle = "-".join(parts)
    return f"pylock.{middle}.toml" if middle else "pylock.toml"


def _check_lock_version(value: object) -> tuple[LintIssue | None, bool]:
    """The issue with ``lock-version`` (if any) and whether it is a newer 1.x than 1.0."""
    if not isinstance(value, str):
        return None, False  # missing or not a string: packaging.pylock says so
    try:
        version = Version(value)
    except InvalidVersion:
        return None, False  # packaging.pylock says so
    major = version.release[0]
    if major != 1:
        # Spec §lock-version: a tool that does not support a major version MUST raise an error.
        hint = (
            "upgrade envmat, or write the lock in the 1.0 format"
            if major > 1
            else "run the lock command that wrote it again with a current version of the tool"
        )
        return (
            LintIssue(
                severity="error",
                key_path="lock-version",
                message=f"lock-version {value} is not supported: envmat reads 1.x",
                hint=hint,
            ),
            False,
        )
    return None, version > Version("1.0")


def _newer_minor_issue(value: str, unknown_paths: Sequence[str]) -> LintIssue:
    if unknown_paths:
        shown = ", ".join(unknown_paths[:10])
        if len(unknown_paths) > 10:
            shown += f" and {len(unknown_paths) - 10} more"
        keys = f"keys envmat does not know (ignored): {shown}"
    else:
        keys = "it has no key envmat does not know"
    return LintIssue(
        severity="warning",
        key_path="lock-version",
        message=f"lock-version {value} is newer than 1.0, the version envmat reads; {keys}",
        hint="upgrade envmat if the lock does not install as expected",
    )


# -- unknown keys --------------------------------------------------------------------------------


def _unknown_keys(data: Mapping[str, Any]) -> Iterator[tuple[str, str, Sequence[str]]]:
    """``(key path, key, the keys allowed there)`` for every key lock-version 1.0 does not define.

    ``tool`` tables and attestation identities (publisher-specific keys) are free-form.
    """
    yield from _unknown_in("", data, TOP_LEVEL_KEYS)
    packages = data.get("packages")
    if not isinstance(packages, list):
        return
    for index, package in enumerate(packages):
        if not isinstance(package, Mapping):
            continue
        base = f"packages[{index}]"
        yield from _unknown_in(base, package, PACKAGE_KEYS)
        for key, known in (
            ("vcs", VCS_KEYS),
            ("directory", DIRECTORY_KEYS),
            ("archive", ARCHIVE_KEYS),
            ("sdist", FILE_KEYS),
        ):
            table = package.get(key)
            if isinstance(table, Mapping):
                yield from _unknown_in(f"{base}.{key}", table, known)
        wheels = package.get("wheels")
        if isinstance(wheels, list):
            for windex, wheel in enumerate(wheels):
                if isinstance(wheel, Mapping):
                    yield from _unknown_in(f"{base}.wheels[{windex}]", wheel, FILE_KEYS)


def _unknown_in(
    base: str, table: Mapping[str, Any], known: Sequence[str]
) -> Iterator[tuple[str, str, Sequence[str]]]:
    for key in table:
        if key not in known:
            yield _join(base, str(key)), str(key), known


def _unknown_key_issue(path: str, key: str, known: Sequence[str]) -> LintIssue:
    suggestion = _close_key(key, known)
    if suggestion is not None:
        return LintIssue(
            severity="warning",
            key_path=path,
            message=f"unknown key {key!r} (did you mean {suggestion!r}?)",
            hint=f"rename it to {suggestion!r}; envmat ignores keys it does not know",
        )
    return LintIssue(
        severity="warning",
        key_path=path,
        message=f"unknown key {key!r}; envmat ignores it",
        hint="tool-specific data belongs in a [tool] table",
    )


def _close_key(key: str, known: Sequence[str]) -> str | None:
    # `requires_python` and `Marker` are the common slips: try the spelling rules first.
    normalized = key.lower().replace("_", "-").replace(" ", "-")
    if normalized in known:
        return normalized
    import difflib  # (only for a key that is not known: every sync reads this module)

    matches = difflib.get_close_matches(normalized, known, n=1, cutoff=0.75)
    return matches[0] if matches else None


def _join(base: str, key: str) -> str:
    """``base.key`` in TOML's dotted-key form, quoting keys that are not bare."""
    part = key if _BARE_KEY_RE.match(key) else json.dumps(key)
    return f"{base}.{part}" if base else part


# -- per package ---------------------------------------------------------------------------------


def _check_package(base: str, package: Mapping[str, Any]) -> list[LintIssue]:
    issues: list[LintIssue] = []
    marker = package.get("marker")
    if isinstance(marker, str):
        issues += _check_marker(_join(base, "marker"), marker)
    # Spec §packages.version: MUST NOT be given for a source tree (pdm writes it anyway).
    source_tree = next((key for key in ("vcs", "directory") if key in package), None)
    if "version" in package and source_tree is not None:
        issues.append(
            LintIssue(
                severity="warning",
                key_path=_join(base, "version"),
                message=f"a {source_tree} package must not have a version (PEP 751: it cannot be "
                "guaranteed to match the source tree); envmat ignores it",
                hint="remove the version key, or ignore this warning if the lock was written by pdm",
            )
        )
    files = [(f"{base}.{key}", package.get(key)) for key in ("archive", "sdist")]
    wheels = package.get("wheels")
    if isinstance(wheels, list):
        files += [(f"{base}.wheels[{index}]", wheel) for index, wheel in enumerate(wheels)]
    for path, table in files:
        if isinstance(table, Mapping):
            issues += _check_hashes(f"{path}.hashes", table.get("hashes"))
            issues += _check_location(path, table)
    return issues


def _check_location(path: str, table: Mapping[str, Any]) -> list[LintIssue]:
    """A file's url must be one a download can start from, and its size a byte count: checked
    here, where the message can name the key, instead of failing mid-sync."""
    issues: list[LintIssue] = []
    url = table.get("url")
    problem = url_problem(url) if isinstance(url, str) else None
    if problem:
        issues.append(
            LintIssue(
                severity="error",
                key_path=_join(path, "url"),
                message=f"{url!r} is not a valid URL ({problem})",
                hint="lock again, or fix the URL",
            )
        )
    size = table.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size < 0:
        issues.append(
            LintIssue(
                severity="error",
                key_path=_join(path, "size"),
                message=f"size {size} is not a number of bytes (0 or more)",
                hint="lock again, or remove the size key",
            )
        )
    return issues


def _check_hashes(path: str, hashes: object) -> list[LintIssue]:
    """Spec §hashes: at least one entry, keys lowercase, a ``hashlib.algorithms_guaranteed`` one."""
    if not isinstance(hashes, Mapping):
        return []  # missing or not a table: packaging.pylock says so
    if not hashes:
        return [
            LintIssue(
                severity="error",
                key_path=path,
                message="the hashes table is empty (PEP 751: it must contain at least one entry)",
                hint="lock again with sha256 hashes",
            )
        ]
    issues: list[LintIssue] = []
    for algo in hashes:
        if algo != algo.lower():
            issues.append(
                LintIssue(
                    severity="warning",
                    key_path=_join(path, algo),
                    message=f"hash algorithm {algo!r} should be lowercase ({algo.lower()!r})",
                )
            )
    usable = [algo for algo in hashes if algo.lower() in VERIFIABLE_ALGORITHMS]
    if not usable:
        return [
            *issues,
            LintIssue(
                severity="error",
                key_path=path,
                message="no hash algorithm envmat can verify "
                f"(the lock has: {', '.join(map(str, hashes))}; envmat needs one of "
                "hashlib.algorithms_guaranteed, such as sha256)",
                hint="lock again with sha256 hashes",
            ),
        ]
    for algo in usable:
        expected = hashlib.new(algo.lower()).digest_size * 2
        digest = hashes[algo]
        if not (isinstance(digest, str) and _HEX_RE.match(digest) and len(digest) == expected):
            issues.append(
                LintIssue(
                    severity="error",
                    key_path=_join(path, algo),
                    message=f"{digest!r} is not a {algo.lower()} digest "
                    f"({expected} hexadecimal digits)",
                    hint="lock again, or copy the digest from the index",
                )
            )
    if all(algo.lower() in WEAK_ALGORITHMS for algo in usable):
        issues.append(
            LintIssue(
                severity="warning",
                key_path=path,
                message=f"only weak hash algorithms ({', '.join(usable)}); "
                "PEP 751 recommends sha256",
                hint="lock again with sha256 hashes",
            )
        )
    return issues


# -- markers -------------------------------------------------------------------------------------

# One side of a marker comparison: ("variable", name) or ("value", text).
_Operand = tuple[Literal["variable", "value"], str]
_Comparison = tuple[_Operand, str, _Operand]


class _UnexpectedMarkerShape(Exception):
    """packaging's private marker tree is not what this module knows; use the tokenizer."""


def _check_marker(path: str, marker: str) -> list[LintIssue]:
    """Dependency specifiers (2026-01 amendment): lock markers test ``extras`` and
    ``dependency_groups`` as sets, ``'x' in extras``; the legacy ``extra == 'x'`` is not permitted.
    """
    return [
        LintIssue(
            severity="error",
            key_path=path,
            message=message,
            hint="in pylock.toml, extras and dependency_groups are sets tested with 'in' / "
            "'not in'; fix the marker or lock again with a current tool",
        )
        for message in _legacy_marker_messages(marker)
    ]


def _legacy_marker_messages(marker: str) -> list[str]:
    try:
        parsed = Marker(marker)
    except InvalidMarker:
        return []  # packaging.pylock says so
    try:
        comparisons = list(_walk_marker_tree(getattr(parsed, "_markers", None)))
    except _UnexpectedMarkerShape:
        comparisons = _tokenize_comparisons(marker)
    messages: list[str] = []
    for comparison in comparisons:
        message = _judge(comparison)
        if message is not None and message not in messages:
            messages.append(message)
    return messages


def _walk_marker_tree(node: object) -> Iterator[_Comparison]:
    """The comparisons in ``Marker._markers``: nested lists of ``(lhs, op, rhs)`` and ``'and'``/``'or'``."""
    if isinstance(node, str) and node in ("and", "or"):
        return
    if isinstance(node, list):
        for child in node:
            yield from _walk_marker_tree(child)
        return
    if isinstance(node, tuple) and len(node) == 3:
        lhs, op, rhs = node
        yield _operand(lhs), _op_text(op), _operand(rhs)
        return
    raise _UnexpectedMarkerShape(repr(node))


def _operand(node: object) -> _Operand:
    kind = type(node).__name__
    value = getattr(node, "value", None)
    if not isinstance(value, str):
        raise _UnexpectedMarkerShape(repr(node))
    if kind == "Variable":
        return ("variable", value)
    if kind == "Value":
        return ("value", value)
    raise _UnexpectedMarkerShape(repr(node))


def _op_text(node: object) -> str:
    value = getattr(node, "value", None)
    if not isinstance(value, str):
        raise _UnexpectedMarkerShape(repr(node))
    return " ".join(value.split())


_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<value>'[^']*'|"[^"]*")
      | (?P<op>===|==|!=|~=|<=|>=|<|>|not\s+in\b|in\b)
      | (?P<variable>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<other>.)
    )""",
    re.VERBOSE,
)


def _tokenize_comparisons(marker: str) -> list[_Comparison]:
    """The comparisons in a marker string, for when packaging's private tree cannot be read."""
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN_RE.finditer(marker):
        kind = match.lastgroup
        if kind is None:
            continue
        text = match.group(kind)
        tokens.append((kind, text[1:-1] if kind == "value" else " ".join(text.split())))
    comparisons: list[_Comparison] = []
    for index in range(1, len(tokens) - 1):
        (lkind, ltext), (okind, otext), (rkind, rtext) = tokens[index - 1 : index + 2]
        if okind == "op" and lkind in ("value", "variable") and rkind in ("value", "variable"):
            comparisons.append(((_kind(lkind), ltext), otext, (_kind(rkind), rtext)))
    return comparisons


def _kind(token_kind: str) -> Literal["variable", "value"]:
    return "variable" if token_kind == "variable" else "value"


def _judge(comparison: _Comparison) -> str | None:
    """Why a comparison is not allowed in a lock's marker, or None."""
    lhs, op, rhs = comparison
    written = f"{_show(lhs)} {op} {_show(rhs)}"
    if ("variable", "extra") in (lhs, rhs):
        fix = _set_form(lhs, op, rhs, "extra", "extras")
        return f"the legacy marker `{written}` is not permitted in a lock; write {fix} instead"
    for variable in _SET_VARIABLES:
        if ("variable", variable) not in (lhs, rhs):
            continue
        if rhs == ("variable", variable) and lhs[0] == "value" and op in ("in", "not in"):
            continue  # the set form: 'x' in extras
        fix = _set_form(lhs, op, rhs, variable, variable)
        return f"the marker `{written}` is not permitted: {variable} is a set; write {fix} instead"
    return None


def _set_form(lhs: _Operand, op: str, rhs: _Operand, variable: str, set_name: str) -> str:
    value = rhs[1] if lhs == ("variable", variable) else lhs[1]
    other = rhs if lhs == ("variable", variable) else lhs
    if other[0] == "value" and op in ("==", "===", "!=", "in", "not in"):
        set_op = "not in" if op in ("!=", "not in") else "in"
        return f"`{_quote(value)} {set_op} {set_name}`"
    return f"`'<name>' in {set_name}`"


def _show(operand: _Operand) -> str:
    return operand[1] if operand[0] == "variable" else _quote(operand[1])


def _quote(value: str) -> str:
    return f'"{value}"' if "'" in value else f"'{value}'"


# -- raise_if_errors helpers ---------------------------------------------------------------------


def _detail_line(issue: LintIssue) -> str:
    where = f"{issue.key_path}: " if issue.key_path else ""
    label = "" if issue.severity == "error" else " (warning, an error with --strict)"
    return f"{where}{issue.message}{label}"


def _combined_hint(failing: Sequence[LintIssue], strict: bool) -> str:
    hints = list(dict.fromkeys(issue.hint for issue in failing if issue.hint))
    hint = hints[0] if len(hints) == 1 else f"{_REGENERATE_HINT} (spec: {SPEC_URL})"
    if strict and any(issue.severity == "warning" for issue in failing):
        hint += " (--strict makes warnings errors)"
    return hint
