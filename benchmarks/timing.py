"""Whole-process timing with peak RSS, and small statistics helpers."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass
class ProcResult:
    """One finished child process."""

    argv: list[str]
    returncode: int
    seconds: float
    maxrss_kb: int
    #: user + system CPU seconds of the child and of every descendant it waited for (a cold
    #: envmat sync's helper process and interpreter query are in it): with ``seconds``, how
    #: much of the wall time the cores were busy
    cpu_seconds: float
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 12) -> str:
        """The last lines of stderr (or stdout when stderr is empty)."""
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-lines:])


def _maxrss_kb(ru_maxrss: int) -> int:
    # Linux reports kilobytes, macOS bytes.
    return ru_maxrss // 1024 if sys.platform == "darwin" else ru_maxrss


def run_proc(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = 1800.0,
) -> ProcResult:
    """Run ``argv`` to completion, timing it with ``perf_counter``.

    The child is reaped with ``os.wait4`` so that its own ``ru_maxrss`` (the
    maximum over the child and every descendant it waited for) is known.
    Output goes to unnamed temporary files, so a chatty child cannot block on
    a full pipe while we sit in ``wait4``.
    """
    args = [str(a) for a in argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        except OSError as exc:
            return ProcResult(args, 127, 0.0, 0, 0.0, "", f"cannot start {args[0]}: {exc}")
        timer: threading.Timer | None = None
        if timeout:
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer is not None:
                timer.cancel()
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    cpu = usage.ru_utime + usage.ru_stime
    return ProcResult(
        args, proc.returncode, seconds, _maxrss_kb(usage.ru_maxrss), cpu, stdout, stderr
    )


def summary(values: Sequence[float]) -> dict[str, float] | None:
    """min / median / max of ``values``, or None when there are none."""
    if not values:
        return None
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }
