"""RECORD parsing and writing (PEP 376/627)."""

from __future__ import annotations

import hashlib

import pytest

from envmat.record import (
    RecordEntry,
    format_record,
    hex_to_record_hash,
    parse_record,
    record_hash_of,
    record_hash_to_hex,
)


def test_hash_forms_round_trip() -> None:
    data = b"print('hi')\n"
    rh = record_hash_of(data)
    assert rh.startswith("sha256=") and not rh.endswith("=")
    assert record_hash_to_hex(rh) == ("sha256", hashlib.sha256(data).hexdigest())
    assert hex_to_record_hash(hashlib.sha256(data).hexdigest()) == rh


def test_parse_and_format_round_trip_with_commas_quotes_and_newlines_in_paths() -> None:
    entries = [
        RecordEntry("pkg/a,b.py", record_hash_of(b"x"), 1),
        RecordEntry('pkg/say "hi".txt', record_hash_of(b"y"), 1),
        RecordEntry("pkg/plain.py", record_hash_of(b""), 0),
        RecordEntry("pkg-1.0.dist-info/RECORD", "", None),
    ]
    text = format_record((e.path, e.hash, e.size) for e in entries).decode()
    assert '"pkg/a,b.py"' in text and '"pkg/say ""hi"".txt"' in text
    assert f"pkg/plain.py,{record_hash_of(b'')},0\n" in text
    assert text.endswith("pkg-1.0.dist-info/RECORD,,\n")
    assert parse_record(text) == entries


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a.py,sha256=x\n", "2 fields"),
        ("a.py,sha256=abc,notanumber\n", "non-integer size"),
        (",sha256=abc,1\n", "empty path"),
        ("a.py,nohash,1\n", "malformed hash"),
    ],
)
def test_malformed_rows_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_record(text)


def _csv_rows(text: str) -> list[list[str]]:
    import csv
    import io

    return [row for row in csv.reader(io.StringIO(text)) if row]


@pytest.mark.parametrize(
    "text",
    [
        "a.py,sha256=AAAA,4\n\nb/c d.py,,\nlast.py,,7",  # an empty line, a space, no final newline
        "a.py,sha256=AAAA,4\r\nb.py,,\r\n",  # CRLF: the csv module reads it
        'q.py,sha256=AAAA,4\n"x,y.py",,\n',  # quoted: the csv module reads it
    ],
)
def test_rows_read_as_the_csv_module_reads_them(text: str) -> None:
    got = parse_record(text)
    want = _csv_rows(text)
    assert [[e.path, e.hash, "" if e.size is None else str(e.size)] for e in got] == [
        [r[0], r[1], r[2].strip() and str(int(r[2]))] for r in want
    ]


def test_a_sha256_row_carries_its_hex_digest() -> None:
    (e, blank, other) = parse_record(
        f"a.py,{record_hash_of(b'x')},1\nRECORD,,\nb.py,sha512=AAAA,1\n"
    )
    assert e.sha256 == hashlib.sha256(b"x").hexdigest()
    assert blank.sha256 is None and other.sha256 is None
    assert e == RecordEntry("a.py", record_hash_of(b"x"), 1)  # (derived: not compared)


@pytest.mark.parametrize(
    "hash_",
    [
        record_hash_of(b"x"),
        record_hash_of(b""),
        "sha256=" + "_-" * 21 + "A",  # urlsafe characters: 43 of them, the usual length
        "SHA256=" + record_hash_of(b"x")[7:],  # the algorithm's name in capitals
        "sha256=" + record_hash_of(b"x")[7:] + "=",  # padded after all
        "sha512=" + hashlib.sha512(b"x").hexdigest()[:86],
    ],
)
def test_the_usual_rows_fast_decoding_agrees_with_the_general_one(hash_: str) -> None:
    """``record_rows`` decodes a 43-character sha256 row inline (the venv scan's hot loop): it
    must read every row exactly as ``record_hash_to_hex`` does."""
    from envmat.record import record_rows

    ((path, got_hash, size, sha),) = record_rows(f"p/a.py,{hash_},3\n")
    algo, hexd = record_hash_to_hex(hash_)
    assert (path, got_hash, size) == ("p/a.py", hash_, 3)
    assert sha == (hexd if algo == "sha256" else None)
    assert parse_record(f"p/a.py,{hash_},3\n")[0].sha256 == sha
