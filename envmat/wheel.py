"""Read a wheel (binary distribution format, PEP 427/491) and unpack it, checked against its RECORD.

Unpacking lays the files out by install scheme (``purelib/``, ``platlib/``, ``scripts/``,
``headers/``, ``data/``) and returns a ``WheelIndex``: every file with its scheme, size, mode and
sha256, plus what installation needs from the metadata (entry points, the dist-info name).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen
from packaging.utils import canonicalize_name, parse_wheel_filename

from .errors import EnvmatError
from .record import parse_record, record_hash_to_hex
from .scripts import safe_script_name

SCHEMES = ("purelib", "platlib", "scripts", "headers", "data")
# Files the installer writes itself (PEP 376/610/627); a wheel's own copies are not installed.
_GENERATED_DIST_INFO = frozenset(
    {"RECORD", "RECORD.jws", "RECORD.p7s", "INSTALLER", "REQUESTED", "direct_url.json"}
)


@frozen(kw_only=True)
class WheelFile:
    scheme: str
    #: POSIX path relative to the scheme directory
    path: str
    size: int
    sha256: str
    executable: bool
    #: a ``.data/scripts`` file starting with ``#!python`` whose shebang the installer rewrites
    rewrite_shebang: bool = False


@frozen(kw_only=True)
class WheelIndex:
    name: str  # as in METADATA
    version: str
    dist_info: str  # ``name-1.0.dist-info``
    root_is_purelib: bool
    files: tuple[WheelFile, ...]
    #: ``console_scripts`` / ``gui_scripts``: script name -> ``module:attr``
    console_scripts: Mapping[str, str]
    gui_scripts: Mapping[str, str]
    #: each unpacked file's mtime in the cache, to notice an edit through a hardlink cheaply
    stamps: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "dist_info": self.dist_info,
            "root_is_purelib": self.root_is_purelib,
            "console_scripts": dict(self.console_scripts),
            "gui_scripts": dict(self.gui_scripts),
            "files": [
                [f.scheme, f.path, f.size, f.sha256, int(f.executable), int(f.rewrite_shebang)]
                for f in self.files
            ],
            "stamps": list(self.stamps),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> WheelIndex:
        return cls(
            name=d["name"],
            version=d["version"],
            dist_info=d["dist_info"],
            root_is_purelib=d["root_is_purelib"],
            console_scripts=d["console_scripts"],
            gui_scripts=d["gui_scripts"],
            stamps=tuple(d.get("stamps", ())),
            files=tuple(
                WheelFile(
                    scheme=s, path=p, size=n, sha256=h, executable=bool(x), rewrite_shebang=bool(r)
                )
                for s, p, n, h, x, r in d["files"]
            ),
        )


def wheel_error(wheel: str, message: str, hint: str | None = None) -> EnvmatError:
    return EnvmatError(
        f"invalid wheel {Path(wheel).name}: {message}",
        context=[f"file: {wheel}"],
        hint=hint
        or "the wheel is broken or unsafe; ask its publisher for a fixed build, or lock another version",
    )


def safe_relpath(path: str) -> str | None:
    """The normalized POSIX form of a relative archive path, or None when it could escape.

    Absolute paths, drive letters, backslashes and ``..`` components are refused: a wheel's
    paths must stay inside the directory they are installed to (binary distribution format).
    """
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or re.match(r"^[A-Za-z]:", path)
        or "\0" in path
    ):
        return None
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def parse_entry_points(text: str) -> dict[str, dict[str, str]]:
    import configparser

    cp = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # names are case-sensitive
    cp.read_string(text)
    out: dict[str, dict[str, str]] = {}
    for section in ("console_scripts", "gui_scripts"):
        if cp.has_section(section):
            out[section] = {k.strip(): v.strip() for k, v in cp.items(section)}
    return out


def _find_dist_info(names: list[str], filename: str) -> str:
    name, version, _, _ = parse_wheel_filename(filename)
    candidates = {
        n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info") and "/" in n
    }
    for cand in candidates:
        stem = cand[: -len(".dist-info")]
        cname, _, _cver = stem.rpartition("-")
        if canonicalize_name(cname) == name:
            return cand
    raise wheel_error(filename, f"no {name}-{version}.dist-info directory")


def unpack_wheel(wheel_path: Path, dest: Path, filename: str | None = None) -> WheelIndex:
    """Extract ``wheel_path`` into ``dest`` (which must not exist yet), checking every file.

    Every archive member except the RECORD signatures must be listed in RECORD with the hash
    and size it has (binary distribution format, "The .dist-info directory"), and no path may
    leave its scheme directory.
    """
    # imported here: a sync whose wheels are all unpacked in the cache never needs them
    import configparser
    import zipfile
    from email.parser import HeaderParser

    filename = filename or wheel_path.name
    try:
        zf = zipfile.ZipFile(wheel_path)
    except (OSError, zipfile.BadZipFile) as e:
        raise wheel_error(str(wheel_path), f"not a zip archive ({e})") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        names = [i.filename for i in infos]
        dist_info = _find_dist_info(names, filename)
        data_dir = dist_info[: -len(".dist-info")] + ".data"
        try:
            meta = HeaderParser().parsestr(zf.read(f"{dist_info}/WHEEL").decode("utf-8"))
            record_text = zf.read(f"{dist_info}/RECORD").decode("utf-8")
            metadata = HeaderParser().parsestr(zf.read(f"{dist_info}/METADATA").decode("utf-8"))
        except KeyError as e:
            raise wheel_error(str(wheel_path), f"missing {e.args[0]}") from None
        except UnicodeDecodeError as e:
            raise wheel_error(str(wheel_path), f"metadata is not UTF-8 ({e})") from None
        wheel_version = (meta.get("Wheel-Version") or "1.0").strip()
        if not wheel_version.startswith("1."):
            raise wheel_error(
                str(wheel_path), f"Wheel-Version {wheel_version} is not supported (1.x)"
            )
        root_is_purelib = (meta.get("Root-Is-Purelib") or "true").strip().lower() == "true"
        try:
            record = {e.path: e for e in parse_record(record_text)}
        except ValueError as e:
            raise wheel_error(str(wheel_path), f"broken RECORD: {e}") from None
        for rpath in record:
            if safe_relpath(rpath) is None:
                raise wheel_error(str(wheel_path), f"RECORD lists an unsafe path {rpath!r}")

        entry_points: dict[str, dict[str, str]] = {}
        if f"{dist_info}/entry_points.txt" in names:
            try:
                entry_points = parse_entry_points(
                    zf.read(f"{dist_info}/entry_points.txt").decode("utf-8")
                )
            except (configparser.Error, UnicodeDecodeError) as e:
                raise wheel_error(str(wheel_path), f"broken entry_points.txt: {e}") from None
            for scripts in entry_points.values():
                for script in scripts:
                    if not safe_script_name(script):
                        raise wheel_error(
                            str(wheel_path), f"entry_points.txt names an unsafe script {script!r}"
                        )

        root_scheme = "purelib" if root_is_purelib else "platlib"
        files: list[WheelFile] = []
        problems: list[str] = []
        dest.mkdir(parents=True)
        made_dirs: set[Path] = {dest}
        for info in infos:
            name = info.filename
            rel = safe_relpath(name)
            if rel is None:
                raise wheel_error(
                    str(wheel_path), f"unsafe path {name!r} (absolute, '..' or backslash)"
                )
            top, _, rest = rel.partition("/")
            if top == dist_info and rest in _GENERATED_DIST_INFO:
                continue
            if top == data_dir:
                scheme, _, spath = rest.partition("/")
                if scheme not in SCHEMES or not spath:
                    raise wheel_error(
                        str(wheel_path), f"{name!r} is not in a known .data scheme {SCHEMES}"
                    )
            else:
                scheme, spath = root_scheme, rel
            entry = record.get(name)
            if entry is None or not entry.hash:
                problems.append(f"{name} is not in RECORD with a hash")
                continue
            algo, expected = record_hash_to_hex(entry.hash)
            target = dest / scheme / spath
            if target.parent not in made_dirs:
                target.parent.mkdir(parents=True, exist_ok=True)
                made_dirs.add(target.parent)
            h = hashlib.new(algo) if algo in hashlib.algorithms_guaranteed else None
            if h is None:
                problems.append(f"{name}: RECORD hash algorithm {algo!r} is not supported")
                continue
            sha = hashlib.sha256()
            size = 0
            first = b""
            with zf.open(info) as src, open(target, "wb") as out:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    if not first:
                        first = chunk[:8]
                    size += len(chunk)
                    h.update(chunk)
                    if algo != "sha256":
                        sha.update(chunk)
                    out.write(chunk)
            if h.hexdigest() != expected:
                problems.append(f"{name}: hash in RECORD {entry.hash} does not match the file")
            if entry.size is not None and entry.size != size:
                problems.append(
                    f"{name}: size in RECORD {entry.size} but the file has {size} bytes"
                )
            unix_mode = info.external_attr >> 16
            executable = bool(unix_mode & stat.S_IXUSR) or (scheme == "scripts")
            os.chmod(target, 0o755 if executable else 0o644)
            files.append(
                WheelFile(
                    scheme=scheme,
                    path=spath,
                    size=size,
                    sha256=h.hexdigest() if algo == "sha256" else sha.hexdigest(),
                    executable=executable,
                    # binary distribution format: "#!python" in .data/scripts is rewritten
                    rewrite_shebang=scheme == "scripts" and first.startswith(b"#!python"),
                )
            )
        if problems:
            raise EnvmatError(
                f"invalid wheel {filename}: its files do not match its RECORD",
                context=[f"file: {wheel_path}"],
                details=problems[:20]
                + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else []),
                hint="the wheel was modified after it was built; rebuild it or lock another version",
            )
    return WheelIndex(
        name=(metadata.get("Name") or "").strip() or parse_wheel_filename(filename)[0],
        version=(metadata.get("Version") or "").strip() or str(parse_wheel_filename(filename)[1]),
        dist_info=dist_info,
        root_is_purelib=root_is_purelib,
        files=tuple(files),
        console_scripts=entry_points.get("console_scripts", {}),
        gui_scripts=entry_points.get("gui_scripts", {}),
    )
