"""Rebuild the demo wheels in examples/wheels/ and examples/pylock.toml, byte for byte (stdlib only)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
WHEELS = HERE / "wheels"
LOCK = HERE / "pylock.toml"

# A fixed timestamp and fixed modes make the wheel bytes depend on the sources only.
ZIP_TIMESTAMP = (2020, 2, 2, 0, 0, 0)
REQUIRES_PYTHON = ">=3.8"

# One entry per distribution. Its source directory holds the wheel root (the import packages)
# and, optionally, data/<scheme>/... which becomes {dist}-{version}.data/<scheme>/... (PEP 427).
DISTRIBUTIONS: list[dict[str, Any]] = [
    {
        "name": "envmat-demo-hello",
        "version": "1.0.0",
        "summary": "envmat demo: a console script, a data file and a #!python script",
        "requires": ["envmat-demo-ns-a", "envmat-demo-ns-b"],
        "entry_points": {"console_scripts": {"envmat-demo": "envmat_demo_hello.cli:main"}},
    },
    {
        "name": "envmat-demo-ns-a",
        "version": "1.0.0",
        "summary": "envmat demo: half a of a namespace shared with envmat-demo-ns-b",
    },
    {
        "name": "envmat-demo-ns-b",
        "version": "1.0.0",
        "summary": "envmat demo: half b of a namespace shared with envmat-demo-ns-a",
    },
]


def normalize(name: str) -> str:
    """PEP 503 normalized name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def record_hash(data: bytes) -> str:
    """``sha256=`` + urlsafe base64 without padding, as RECORD wants it (PEP 376)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def source_files(root: Path) -> list[tuple[str, bytes]]:
    """Every file under ``root`` as (POSIX relative path, bytes), sorted; caches are skipped."""
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and "__pycache__" not in rel.split("/") and not rel.endswith(".pyc"):
            out.append((rel, path.read_bytes()))
    return out


def wheel_contents(spec: dict[str, Any]) -> tuple[str, list[tuple[str, bytes, int]]]:
    """Return the wheel file name and its (zip path, bytes, mode) entries, RECORD last."""
    name, version = spec["name"], spec["version"]
    dist = re.sub(r"[-_.]+", "_", name).lower()
    dist_info = f"{dist}-{version}.dist-info"
    data_dir = f"{dist}-{version}.data"
    entries: list[tuple[str, bytes, int]] = []
    for rel, content in source_files(SRC / name):
        if rel.startswith("data/"):
            scheme = rel.split("/")[1]
            mode = 0o755 if scheme == "scripts" else 0o644
            entries.append((f"{data_dir}/{rel[len('data/') :]}", content, mode))
        else:
            entries.append((rel, content, 0o644))

    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {spec['summary']}",
        f"Requires-Python: {REQUIRES_PYTHON}",
    ]
    metadata += [f"Requires-Dist: {req}" for req in spec.get("requires", [])]
    entries.append((f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode(), 0o644))
    wheel = (
        "Wheel-Version: 1.0\nGenerator: envmat-examples\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    entries.append((f"{dist_info}/WHEEL", wheel.encode(), 0o644))
    entry_points = spec.get("entry_points", {})
    if entry_points:
        lines = []
        for group, items in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{key} = {value}" for key, value in items.items()]
            lines.append("")
        entries.append((f"{dist_info}/entry_points.txt", "\n".join(lines).encode(), 0o644))

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for path, content, _ in entries:
        writer.writerow([path, record_hash(content), len(content)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    entries.append((f"{dist_info}/RECORD", buf.getvalue().encode(), 0o644))
    return f"{dist}-{version}-py3-none-any.whl", entries


def write_wheel(spec: dict[str, Any]) -> Path:
    """Write one wheel into WHEELS and return its path."""
    filename, entries = wheel_contents(spec)
    WHEELS.mkdir(exist_ok=True)
    target = WHEELS / filename
    with zipfile.ZipFile(target, "w") as zf:
        for path, content, mode in entries:
            info = zipfile.ZipInfo(path, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode bits below are honoured
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, content)
    return target


def toml_string(value: str) -> str:
    """A TOML basic string (JSON escapes are valid TOML escapes)."""
    return json.dumps(value, ensure_ascii=False)


def write_lock(built: list[tuple[dict[str, Any], Path]]) -> None:
    """Write pylock.toml (PEP 751) naming each wheel by a path relative to the lock."""
    lines = [
        'lock-version = "1.0"',
        f"requires-python = {toml_string(REQUIRES_PYTHON)}",
        'created-by = "envmat-examples"',
    ]
    for spec, whl in sorted(built, key=lambda item: normalize(item[0]["name"])):
        content = whl.read_bytes()
        lines += [
            "",
            "[[packages]]",
            f"name = {toml_string(normalize(spec['name']))}",
            f"version = {toml_string(spec['version'])}",
            f"requires-python = {toml_string(REQUIRES_PYTHON)}",
        ]
        deps = spec.get("requires", [])
        if deps:
            inner = ", ".join("{ name = " + toml_string(normalize(d)) + " }" for d in deps)
            lines.append(f"dependencies = [{inner}]")
        lines += [
            "",
            "[[packages.wheels]]",
            f"name = {toml_string(whl.name)}",
            f"path = {toml_string('wheels/' + whl.name)}",
            f"size = {len(content)}",
            f"hashes = {{ sha256 = {toml_string(hashlib.sha256(content).hexdigest())} }}",
        ]
    with open(LOCK, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def main() -> int:
    """Rebuild every wheel, drop stale ones, and rewrite the lock."""
    built = [(spec, write_wheel(spec)) for spec in DISTRIBUTIONS]
    fresh = {whl.name for _, whl in built}
    for old in WHEELS.glob("*.whl"):
        if old.name not in fresh:
            old.unlink()
    write_lock(built)
    for _, whl in built:
        print(f"built {whl.relative_to(HERE).as_posix()}")
    print(f"wrote {LOCK.relative_to(HERE).as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
