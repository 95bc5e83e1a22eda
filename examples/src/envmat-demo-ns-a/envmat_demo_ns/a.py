"""Part a of the shared envmat_demo_ns namespace (from envmat-demo-ns-a)."""

from __future__ import annotations

MESSAGE = "a (from envmat-demo-ns-a)"
