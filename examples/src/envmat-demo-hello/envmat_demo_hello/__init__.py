"""envmat-demo-hello: a tiny distribution for envmat's offline demo."""

from __future__ import annotations

import os
import sys

__version__ = "1.0.0"


def greeting_path() -> str:
    """The file installed from the wheel's .data/data/ directory, under the venv's prefix."""
    return os.path.join(sys.prefix, "share", "envmat-demo", "greeting.txt")


def greeting() -> str:
    """Return the greeting stored in the data file."""
    with open(greeting_path(), encoding="utf-8") as f:
        return f.read().strip()
