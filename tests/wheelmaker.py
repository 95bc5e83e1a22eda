"""Build real, reproducible wheel files and pylock.toml files for tests (stdlib only)."""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

Content = Union[bytes, str]

# A fixed timestamp makes the zip bytes depend on the inputs only (reproducible builds).
ZIP_TIMESTAMP = (2020, 2, 2, 0, 0, 0)
DATA_SCHEMES = ("purelib", "platlib", "headers", "scripts", "data")
_EMPTY: Mapping[str, Any] = {}


def escape_name(name: str) -> str:
    """Return the distribution part of a wheel file name (binary distribution format spec)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def escape_version(version: str) -> str:
    """Return the version part of a wheel file name (hyphens are not allowed there)."""
    return version.replace("-", "_")


def record_hash(data: bytes) -> str:
    """Return ``sha256=<urlsafe-b64, no padding>`` as RECORD stores it (PEP 376/627)."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sha256_file(path: Path | str) -> str:
    """Return the hex sha256 of a file, as pylock.toml ``hashes.sha256`` stores it."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _as_bytes(content: Content) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def _zip_info(arcname: str, mode: int) -> zipfile.ZipInfo:
    # ZipInfo keeps the name as given, so "../evil.py" and "/abs.py" survive for traversal tests.
    info = zipfile.ZipInfo(arcname, date_time=ZIP_TIMESTAMP)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix, so installers honour the mode bits
    info.external_attr = ((0o100000 | mode) & 0xFFFF) << 16
    return info


def _expand_tag(tag: str) -> list[str]:
    """Expand a compressed tag set such as ``py2.py3-none-any`` into single tags (PEP 425)."""
    interp, abi, plat = tag.split("-")
    return [
        f"{i}-{a}-{p}" for i in interp.split(".") for a in abi.split(".") for p in plat.split(".")
    ]


def _entry_points_text(entry_points: Mapping[str, Mapping[str, str]]) -> str:
    out = []
    for group, items in entry_points.items():
        out.append(f"[{group}]")
        out.extend(f"{key} = {value}" for key, value in items.items())
        out.append("")
    return "\n".join(out)


def wheel_filename(
    name: str, version: str, tag: str = "py3-none-any", build: str | None = None
) -> str:
    """Return ``{dist}-{ver}[-build]-{tag}.whl`` with the escaped name and version."""
    parts = [escape_name(name), escape_version(version)]
    if build:
        parts.append(build)
    parts.append(tag)
    return "-".join(parts) + ".whl"


def make_wheel(
    out_dir: Path,
    name: str,
    version: str,
    *,
    files: Mapping[str, Content] = _EMPTY,
    data: Mapping[str, Mapping[str, Content]] = _EMPTY,
    entry_points: Mapping[str, Mapping[str, str]] = _EMPTY,
    tag: str = "py3-none-any",
    root_is_purelib: bool = True,
    metadata_extra: str = "",
    executable: Iterable[str] = (),
    record: str | None = None,
    extra_entries: Mapping[str, Content] = _EMPTY,
    omit_from_record: Iterable[str] = (),
    build: str | None = None,
) -> Path:
    """Write a wheel into ``out_dir`` and return its path.

    ``files`` go to the wheel root, ``data`` to ``{dist}-{ver}.data/<scheme>/``. ``executable``
    names zip paths (or the short ``<scheme>/<path>`` form of a data file) stored with mode 0o755.
    ``record`` replaces RECORD entirely; ``extra_entries`` are added to the zip verbatim and never
    listed in RECORD; ``omit_from_record`` leaves the named zip paths out of RECORD.
    """
    dist = escape_name(name)
    ver = escape_version(version)
    dist_info = f"{dist}-{ver}.dist-info"
    data_dir = f"{dist}-{ver}.data"

    entries: dict[str, bytes] = {}
    for path, content in files.items():
        entries[path] = _as_bytes(content)
    short_to_zip: dict[str, str] = {}
    for scheme, scheme_files in data.items():
        for path, content in scheme_files.items():
            arcname = f"{data_dir}/{scheme}/{path}"
            entries[arcname] = _as_bytes(content)
            short_to_zip[f"{scheme}/{path}"] = arcname

    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if metadata_extra:
        metadata += metadata_extra.rstrip("\n") + "\n"
    entries[f"{dist_info}/METADATA"] = metadata.encode("utf-8")
    wheel_text = (
        "Wheel-Version: 1.0\n"
        "Generator: envmat-tests wheelmaker\n"
        f"Root-Is-Purelib: {'true' if root_is_purelib else 'false'}\n"
    )
    wheel_text += "".join(f"Tag: {t}\n" for t in _expand_tag(tag))
    if build:
        wheel_text += f"Build: {build}\n"
    entries[f"{dist_info}/WHEEL"] = wheel_text.encode("utf-8")
    if entry_points:
        entries[f"{dist_info}/entry_points.txt"] = _entry_points_text(entry_points).encode("utf-8")

    record_path = f"{dist_info}/RECORD"
    if record is None:
        omitted = set(omit_from_record)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for path, content in entries.items():
            if path not in omitted:
                writer.writerow([path, record_hash(content), str(len(content))])
        writer.writerow([record_path, "", ""])
        record = buf.getvalue()

    exec_paths = {short_to_zip.get(p, p) for p in executable}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    whl = out_dir / wheel_filename(name, version, tag, build)
    with zipfile.ZipFile(whl, "w") as zf:
        # Payload first, then raw extras, then .dist-info with RECORD last (the usual layout).
        ordered = [p for p in entries if not p.startswith(dist_info + "/")]
        for path in ordered:
            mode = 0o755 if path in exec_paths else 0o644
            zf.writestr(_zip_info(path, mode), entries[path])
        for path, content in extra_entries.items():
            mode = 0o755 if path in exec_paths else 0o644
            zf.writestr(_zip_info(path, mode), _as_bytes(content))
        for path in entries:
            if path.startswith(dist_info + "/"):
                zf.writestr(_zip_info(path, 0o644), entries[path])
        zf.writestr(_zip_info(record_path, 0o644), record.encode("utf-8"))
    return whl


# --- pylock.toml ---------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return json.dumps(Path(value).as_posix(), ensure_ascii=False)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML: {value!r}")


def _is_table_array(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, Mapping) for v in value)
    )


def _emit_table(lines: list[str], prefix: str, table: Mapping[str, Any], top: bool) -> None:
    """Emit key/values first, then sub-tables; TOML cannot reopen a table after a header."""
    deferred: list[tuple[str, Any]] = []
    for key, value in table.items():
        if value is None:
            continue
        if _is_table_array(value) or (top and isinstance(value, Mapping)):
            deferred.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in deferred:
        full = f"{prefix}.{_toml_key(key)}" if prefix else _toml_key(key)
        if isinstance(value, Mapping):
            lines.extend(["", f"[{full}]"])
            _emit_table(lines, full, value, top=False)
        else:
            for item in value:
                lines.extend(["", f"[[{full}]]"])
                _emit_table(lines, full, item, top=False)


def dumps_toml(document: Mapping[str, Any]) -> str:
    """Return TOML text for the shapes pylock.toml uses (arrays of tables, inline tables)."""
    lines: list[str] = []
    _emit_table(lines, "", document, top=True)
    return "\n".join(lines).lstrip("\n") + "\n"


def write_pylock(path: Path, packages: Sequence[Mapping[str, Any]], **top_level: Any) -> Path:
    """Write a PEP 751 lock with ``packages``; keyword arguments become top-level keys.

    Python identifiers cannot hold ``-``, so ``requires_python=">=3.9"`` is written as
    ``requires-python``. Keys whose value is ``None`` are left out.
    """
    doc: dict[str, Any] = {"lock-version": "1.0", "created-by": "envmat-tests"}
    doc.update({k.replace("_", "-"): v for k, v in top_level.items()})
    doc["packages"] = list(packages)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_toml(doc), encoding="utf-8")
    return path


def wheel_entry(
    whl: Path,
    *,
    base: Path | None = None,
    url: str | None = None,
    with_size: bool = True,
    name: bool = True,
) -> dict[str, Any]:
    """Return a ``packages[].wheels[]`` dict for ``whl``: ``path`` relative to ``base``, or ``url``."""
    whl = Path(whl)
    entry: dict[str, Any] = {}
    if name:
        entry["name"] = whl.name
    if url is not None:
        entry["url"] = url
    elif base is not None:
        entry["path"] = Path(os.path.relpath(whl, base)).as_posix()
    else:
        entry["path"] = whl.as_posix()
    if with_size:
        entry["size"] = whl.stat().st_size
    entry["hashes"] = {"sha256": sha256_file(whl)}
    return entry


def package_entry(
    name: str, version: str | None, wheels: Sequence[Mapping[str, Any]] = (), **extra: Any
) -> dict[str, Any]:
    """Return a ``packages[]`` dict; ``extra`` keys use ``_`` for ``-`` (``requires_python``)."""
    entry: dict[str, Any] = {"name": name}
    if version is not None:
        entry["version"] = version
    entry.update({k.replace("_", "-"): v for k, v in extra.items()})
    if wheels:
        entry["wheels"] = list(wheels)
    return entry
