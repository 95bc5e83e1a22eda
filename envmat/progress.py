"""The progress seam: the engine reports downloads and installs; the CLI decides how to show them."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def download_started(self, name: str, size: int | None) -> None: ...
    def download_advanced(self, name: str, nbytes: int) -> None: ...
    def download_finished(self, name: str) -> None: ...
    def install_started(self, files: int) -> None: ...
    def install_advanced(self, files: int) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    """The library default: nothing is shown."""

    def download_started(self, name: str, size: int | None) -> None:
        pass

    def download_advanced(self, name: str, nbytes: int) -> None:
        pass

    def download_finished(self, name: str) -> None:
        pass

    def install_started(self, files: int) -> None:
        pass

    def install_advanced(self, files: int) -> None:
        pass

    def close(self) -> None:
        pass
