"""envmat's loggers: the standard ``logging`` module, imported on first use.

``import logging`` (with traceback, linecache, tokenize and friends) costs a good part of a warm
install of a small lock, and a sync with nothing to report never logs. So modules hold a
``Logger`` that imports ``logging`` when it first logs; the CLI's configuration is applied then.
"""

from __future__ import annotations

import sys
from typing import Any

_config: dict[str, Any] = {}


def configure(level: int) -> None:
    """What ``logging.basicConfig`` gets once logging is in use (the CLI's ``-v``/``-q``)."""
    _config["level"] = level
    if "logging" in sys.modules:
        setup()


def setup() -> None:
    """Apply the configuration now (the first log record, or the CLI's -v once logging is in)."""
    if "level" in _config and not _config.get("done"):
        import logging

        _config["done"] = True
        logging.basicConfig(level=_config["level"], format="%(message)s", stream=sys.stderr)


class Logger:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _get(self) -> Any:
        import logging

        setup()
        return logging.getLogger(self.name)

    def debug(self, msg: str, *args: object) -> None:
        self._get().debug(msg, *args)

    def info(self, msg: str, *args: object) -> None:
        self._get().info(msg, *args)

    def warning(self, msg: str, *args: object) -> None:
        self._get().warning(msg, *args)
