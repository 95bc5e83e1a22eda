"""``json.loads`` and ``sha256`` for the stdlib-only fast paths, without their import costs.

``import json`` imports ``re`` (its pure-Python scanner's patterns: enum, functools and the
regex compiler come with it) and ``import hashlib`` loads OpenSSL's ``_hashlib``: about 15 ms
together on the machines we measure, half of what a no-op sync may cost in all. CPython's C
scanner (``_json.make_scanner``, what ``json.loads`` uses) needs neither, and its built-in
SHA-256 (``_sha2``, ``_sha256`` before 3.12) gives the same digests as OpenSSL's. Where these
private modules are missing or differ (another implementation, another version) the public
modules are used instead.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _Context:
    """The attributes ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _c_scanner() -> Any:
    try:
        from _json import make_scanner

        scan = make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed by _json
        probe = '{"a": [1, 2.5, true, null, "\\u00e9"]}'
        if scan(probe, 0) != ({"a": [1, 2.5, True, None, "\u00e9"]}, len(probe)):
            return None
        return scan
    except Exception:  # not CPython's _json, or a different one: use the json module
        return None


_scan = _c_scanner()


def loads(data: bytes | str) -> Any:
    """``json.loads(data)``; raises ValueError for what is not one JSON document."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if _scan is None:
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError("extra data after the JSON document")
    return value


def _builtin_sha256() -> Any:
    for name in ("_sha2", "_sha256"):  # CPython 3.12+, 3.8-3.11
        try:
            return __import__(name).sha256
        except (ImportError, AttributeError):
            pass
    from hashlib import sha256

    return sha256


_sha256 = _builtin_sha256()


def sha256(data: bytes = b"") -> Any:
    """A SHA-256 hash object (``update``, ``digest``, ``hexdigest``)."""
    return _sha256(data)
