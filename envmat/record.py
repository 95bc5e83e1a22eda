"""RECORD files (PEP 376, PEP 627; binary distribution format): parse, hash, write."""

from __future__ import annotations

import binascii
import csv
import hashlib
import io
import re
from collections.abc import Iterable

from attrs import field, frozen


@frozen
class RecordEntry:
    path: str
    #: ``sha256=<urlsafe-b64, no padding>`` or "" for RECORD itself and generated .pyc
    hash: str
    size: int | None
    #: the hash's hex digest when it is a sha256 (decoded once, by ``parse_record``); derived
    #: from ``hash``, so not compared
    sha256: str | None = field(default=None, eq=False)


_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
#: a RECORD path that the csv module would quote (PEP 376: RECORD is a CSV file)
_NEEDS_QUOTING = re.compile(r'[,"\r\n]')


def b64_digest(digest: bytes) -> str:
    # PEP 376/427: urlsafe base64 without padding; binascii directly, it runs once per file
    return binascii.b2a_base64(digest, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def record_hash_of(data: bytes) -> str:
    return "sha256=" + b64_digest(hashlib.sha256(data).digest())


def hex_to_record_hash(hex_digest: str) -> str:
    return "sha256=" + b64_digest(bytes.fromhex(hex_digest))


def record_hash_to_hex(value: str) -> tuple[str, str]:
    """``sha256=abc…`` -> (``sha256``, hex digest); raises ValueError when malformed."""
    algo, sep, b64 = value.partition("=")
    if not sep or not algo or not b64:
        raise ValueError(f"malformed hash {value!r}")
    # base64.urlsafe_b64decode (same errors, all ValueErrors) without its wrappers, and a
    # bytes translation (str.translate is several times slower): this runs once per file
    padded = (b64 + "=" * (-len(b64) % 4)).encode("ascii")
    raw = binascii.a2b_base64(padded.translate(_FROM_URLSAFE))
    return algo.lower(), raw.hex()


def parse_record(text: str) -> list[RecordEntry]:
    """Parse RECORD rows; ValueError names the first malformed row."""
    return [RecordEntry(path, hash_, size, sha) for path, hash_, size, sha in record_rows(text)]


def record_rows(text: str) -> list[tuple[str, str, int | None, str | None]]:
    """RECORD rows as (path, hash, size, sha256 hex digest or None), without an object per row
    (the venv scan reads every installed file's row); ValueError names the first malformed row.

    RECORD is CSV (PEP 376). Rows without a quote or a carriage return (all but a few) read the
    same split on commas as through ``csv``, which costs several times more per row.
    """
    if '"' in text or "\r" in text:
        rows: Iterable[list[str]] = csv.reader(io.StringIO(text))
    else:
        rows = (line.split(",") if line else [] for line in text.split("\n"))
    out: list[tuple[str, str, int | None, str | None]] = []
    for lineno, row in enumerate(rows, start=1):
        if not row:
            continue
        if len(row) != 3:
            raise ValueError(f"RECORD line {lineno} has {len(row)} fields, expected 3")
        path, hash_, size = row
        if not path:
            raise ValueError(f"RECORD line {lineno} has an empty path")
        if size:
            try:
                size_int: int | None = int(size)
            except ValueError:
                raise ValueError(f"RECORD line {lineno} has a non-integer size {size!r}") from None
        else:
            size_int = None
        sha = None
        if len(hash_) == 50 and hash_.startswith("sha256="):
            # the usual row: 43 characters of urlsafe base64, one "=" short of a whole group
            sha = binascii.a2b_base64(
                (hash_[7:] + "=").encode("ascii").translate(_FROM_URLSAFE)
            ).hex()
        elif hash_:
            algo, hexd = record_hash_to_hex(hash_)  # validates the form
            if algo == "sha256":
                sha = hexd
        out.append((path, hash_, size_int, sha))
    return out


def format_record(rows: Iterable[tuple[str, str, int | None]]) -> bytes:
    """RECORD text from (path, hash, size) rows; plain joins for the usual paths, the csv
    module for those it must quote."""
    lines: list[str] = []
    for path, hash_, size in rows:
        if _NEEDS_QUOTING.search(path):
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow(
                (path, hash_, "" if size is None else size)
            )
            lines.append(buf.getvalue())
        else:
            lines.append(f"{path},{hash_},{'' if size is None else size}\n")
    return "".join(lines).encode("utf-8")
