"""Namespace shared by envmat-demo-ns-a and -ns-b with identical bytes, like nvidia/__init__.py."""

from __future__ import annotations

__path__ = __import__("pkgutil").extend_path(__path__, __name__)
