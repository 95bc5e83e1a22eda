"""The typed lock model every reader produces: what to install, and where each file comes from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from attrs import field, frozen

SourceKind = Literal["wheel", "sdist", "archive", "vcs", "directory"]


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a URL a download can start from (``urlsplit`` refuses it, or its port
    is out of range), or None. The readers say it at the lock's key; the fetcher again."""
    from urllib.parse import urlsplit

    try:
        urlsplit(url).port  # noqa: B018  (the port is only checked when read)
    except ValueError as e:
        return str(e)
    return None


@frozen(kw_only=True)
class FileRef:
    """One locked file: its name, where to get it and what it must hash to."""

    filename: str
    url: str | None = None
    #: absolute path on this machine, already resolved against the lock file's directory
    path: str | None = None
    size: int | None = None
    #: algorithm -> lowercase hex digest, as in PEP 751 ``hashes``
    hashes: Mapping[str, str] = field(factory=dict)

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def location(self) -> str:
        return self.path or self.url or self.filename


@frozen(kw_only=True)
class LockedDist:
    """One distribution the selection chose for the target, with the file to install it from."""

    name: str  # normalized (PEP 503)
    version: str | None
    kind: SourceKind
    #: the chosen wheel; None for the source kinds envmat refuses (sdist, vcs, directory, archive of a tree)
    wheel: FileRef | None
    #: where it sits in the lock, for error messages: ``packages[3]``
    key_path: str
    #: PEP 610 ``direct_url.json`` content when the lock names a direct reference, else None
    direct_url: Mapping[str, Any] | None = None
    #: a description of the source for messages (``directory ../lib``)
    source_desc: str = ""


@frozen(kw_only=True)
class Selection:
    """What the user asked for on top of the lock: extras and dependency groups (uv's meanings)."""

    extras: tuple[str, ...] = ()
    all_extras: bool = False
    groups: tuple[str, ...] = ()
    all_groups: bool = False
    no_default_groups: bool = False
    only_groups: tuple[str, ...] = ()
    no_dev: bool = False
    no_install_project: bool = False
    strict: bool = False


def dist_to_json(d: LockedDist) -> dict[str, Any]:
    """``d`` as JSON-able data (the selection memo, the cache fill helper)."""
    w = d.wheel
    return {
        "name": d.name,
        "version": d.version,
        "kind": d.kind,
        "key_path": d.key_path,
        "direct_url": d.direct_url,
        "source_desc": d.source_desc,
        "wheel": None
        if w is None
        else {
            "filename": w.filename,
            "url": w.url,
            "path": w.path,
            "size": w.size,
            "hashes": dict(w.hashes),
        },
    }


def dist_from_json(d: dict[str, Any]) -> LockedDist:
    """The inverse of ``dist_to_json``."""
    w = d["wheel"]
    return LockedDist(
        name=d["name"],
        version=d["version"],
        kind=d["kind"],
        key_path=d["key_path"],
        direct_url=d["direct_url"],
        source_desc=d["source_desc"],
        wheel=None if w is None else FileRef(**w),
    )
