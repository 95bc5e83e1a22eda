"""RECORD files (PEP 376, PEP 627; binary distribution format): parse, hash, write."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from collections.abc import Iterable

from attrs import frozen


@frozen
class RecordEntry:
    path: str
    #: ``sha256=<urlsafe-b64, no padding>`` or "" for RECORD itself and generated .pyc
    hash: str
    size: int | None


def b64_digest(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def record_hash_of(data: bytes) -> str:
    return "sha256=" + b64_digest(hashlib.sha256(data).digest())


def hex_to_record_hash(hex_digest: str) -> str:
    return "sha256=" + b64_digest(bytes.fromhex(hex_digest))


def record_hash_to_hex(value: str) -> tuple[str, str]:
    """``sha256=abc…`` -> (``sha256``, hex digest); raises ValueError when malformed."""
    algo, sep, b64 = value.partition("=")
    if not sep or not algo or not b64:
        raise ValueError(f"malformed hash {value!r}")
    raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    return algo.lower(), raw.hex()


def parse_record(text: str) -> list[RecordEntry]:
    """Parse RECORD rows; ValueError names the first malformed row."""
    entries = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
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
        if hash_:
            record_hash_to_hex(hash_)  # validates the form
        entries.append(RecordEntry(path, hash_, size_int))
    return entries


def format_record(entries: Iterable[RecordEntry]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for e in entries:
        writer.writerow((e.path, e.hash, "" if e.size is None else str(e.size)))
    return buf.getvalue().encode("utf-8")
