"""Part b of the shared envmat_demo_ns namespace (from envmat-demo-ns-b)."""

from __future__ import annotations

MESSAGE = "b (from envmat-demo-ns-b)"
