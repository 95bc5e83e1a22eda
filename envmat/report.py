"""What a sync did (or would do), and how the CLI shows it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from attrs import frozen

from .plan import DistChange


@frozen(kw_only=True)
class SyncReport:
    lock: str
    venv: str
    target: str
    target_info: dict[str, str]
    changes: tuple[DistChange, ...]
    elapsed: float
    dry_run: bool = False
    created_venv: bool = False
    downloaded_bytes: int = 0
    warnings: tuple[str, ...] = ()
    recovered: str | None = None
    link_mode: str | None = None
    files_written: int = 0
    files_removed: int = 0

    def _names(self, action: str) -> list[str]:
        return [c.name for c in self.changes if c.action == action]

    @property
    def added(self) -> list[str]:
        return self._names("add")

    @property
    def replaced(self) -> list[str]:
        return self._names("replace")

    @property
    def removed(self) -> list[str]:
        return self._names("remove")

    @property
    def kept(self) -> list[str]:
        return self._names("keep")

    @property
    def changed(self) -> bool:
        return any(c.action != "keep" for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        counts = {a: len(self._names(a)) for a in ("add", "replace", "remove", "keep")}
        return {
            "schema_version": 1,
            "lock": self.lock,
            "venv": self.venv,
            "target": dict(self.target_info),
            "changes": [c.to_json() for c in self.changes],
            "summary": {
                **counts,
                "download_bytes": sum(
                    c.download_size or 0 for c in self.changes if c.action in ("add", "replace")
                ),
            },
        }


def change_lines(changes: Sequence[DistChange], verbose: bool = False) -> list[str]:
    """uv-like lines: ``+ name==1.0``, ``- name==1.0``, ``~ name==1.0 -> 2.0``."""
    out = []
    for c in sorted(changes, key=lambda c: c.name):
        if c.action == "add":
            line = f"+ {c.name}=={c.version}"
        elif c.action == "remove":
            line = f"- {c.name}=={c.old_version}"
        elif c.action == "replace":
            line = (
                f"~ {c.name}=={c.old_version} -> {c.version}"
                if c.old_version != c.version
                else f"~ {c.name}=={c.version}"
            )
        elif verbose:
            line = f"  {c.name}=={c.version}"
        else:
            continue
        if verbose and c.reason:
            line += f"  ({c.reason})"
        out.append(line)
    return out


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def summary_line(report: SyncReport) -> str:
    n_add, n_rep, n_rem, n_keep = (
        len(x) for x in (report.added, report.replaced, report.removed, report.kept)
    )
    t = f"{report.elapsed:.2f}s"
    if report.dry_run:
        if not report.changed:
            return f"Would change nothing: {n_keep} package(s) already match the lock"
        dl = sum(c.download_size or 0 for c in report.changes if c.action in ("add", "replace"))
        return f"Would add {n_add}, replace {n_rep}, remove {n_rem}, keep {n_keep} package(s)" + (
            f", downloading {_size(dl)}" if dl else ""
        )
    if not report.changed:
        return f"Nothing to do: {n_keep} package(s) already match the lock ({t})"
    parts = [f"added {n_add}", f"replaced {n_rep}", f"removed {n_rem}", f"kept {n_keep}"]
    extra = f", downloaded {_size(report.downloaded_bytes)}" if report.downloaded_bytes else ""
    return f"Synced {report.venv}: " + ", ".join(parts) + f" package(s){extra} in {t}"


class LineProgress:
    """Plain lines for logs and CI: one when a download starts, one when installing starts."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def download_started(self, name: str, size: int | None) -> None:
        print(
            f"Downloading {name}" + (f" ({_size(size)})" if size else ""),
            file=self.stream,
            flush=True,
        )

    def download_advanced(self, name: str, nbytes: int) -> None:
        pass

    def download_finished(self, name: str) -> None:
        pass

    def install_started(self, files: int) -> None:
        print(f"Installing {files} file(s)", file=self.stream, flush=True)

    def install_advanced(self, files: int) -> None:
        pass

    def close(self) -> None:
        pass


class BarProgress:
    """Bars on a terminal (tqdm, imported only when a bar is shown): bytes downloaded, files placed."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._bars: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _bar(self, key: str, **kw: Any) -> Any:
        from tqdm import tqdm

        bar = tqdm(file=self.stream, leave=False, dynamic_ncols=True, **kw)
        self._bars[key] = bar
        return bar

    def download_started(self, name: str, size: int | None) -> None:
        with self._lock:
            self._bar(
                name, total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=name[:40]
            )

    def download_advanced(self, name: str, nbytes: int) -> None:
        bar = self._bars.get(name)
        if bar is not None:
            bar.update(nbytes)

    def download_finished(self, name: str) -> None:
        with self._lock:
            bar = self._bars.pop(name, None)
        if bar is not None:
            bar.close()

    def install_started(self, files: int) -> None:
        with self._lock:
            self._bar(" install", total=files, unit="file", desc="Installing")

    def install_advanced(self, files: int) -> None:
        bar = self._bars.get(" install")
        if bar is not None:
            bar.update(files)

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
