"""A second process that fills cache entries beside this one's download threads.

Unpacking a wheel while it downloads (wheelstream.py) is Python work, and one process runs
Python on one core at a time (the GIL): a cold sync of many or big wheels kept one core busy
while the other mostly waited. A helper process has an interpreter lock of its own. The CLI
starts one for a new venv from a lock the cache has not seen (a cold sync is likely) before it
imports the engine, so that the helper's own imports and TLS set-up use the other core
meanwhile; ``Cache.prepare`` then hands it wheels from the costliest-first queue its own download
threads take from. Measured on two cores: a cold ``large`` sync 37% faster, ``medium`` 13%.

The helper runs ``Cache.prepare`` on each wheel it is given, in the same cache directory: what
it commits is verified and made atomic exactly as in this process (entries are built to be
filled by several processes at once). It answers each job with the bytes it downloaded, or the
error, which this process raises as the same ``EnvmatError``. A helper that cannot start, dies
or answers something else only costs time: its unfinished jobs are done in this process.

Protocol, JSON lines: the helper says ``{"id": -1, "ready": true}`` once its imports and TLS are
done (jobs go to it only then); to it ``{"id": n, "dist": dist_to_json(d)}``; back
``{"id": n, "downloaded": bytes}``, ``{"id": n, "error": {...EnvmatError fields}}`` or
``{"id": n, "crash": "..."}`` (anything else went wrong: redo the job here).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

    from .lock.model import LockedDist

#: "0" never starts a helper (the cache then works in this process only)
ENV = "ENVMAT_FILL_HELPER"
#: jobs a helper works on at once: some wait on the network while another unpacks (on two cores,
#: 3 here and 3 download threads in the parent: a cold ``large`` sync ~8% faster than 2 and 4,
#: over three interleaved batches; small and medium the same)
AT_ONCE = 3

_ahead: dict[str, Helper] = {}
_lock = threading.Lock()


class HelperGone(Exception):
    """The helper exited, or its pipe broke, before answering."""


class Helper:
    """The parent's handle on one helper process."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    @classmethod
    def spawn(cls, root: str, timeout: float) -> Helper | None:
        """A helper filling the cache at ``root``, or None when it cannot be started."""
        import subprocess

        import envmat

        package = os.path.realpath(envmat.__file__)
        # the helper must run this very envmat: not one in the working directory (which -c
        # puts first on the path), and its own directory goes on the path (last, so that it
        # shadows nothing); the helper checks it got this very file (``main``)
        boot = (
            "import sys\n"
            "if sys.path and sys.path[0] == '': del sys.path[0]\n"
            "sys.path.append(sys.argv[1])\n"
            "import envmat.fillhelper as h; h.main(sys.argv[2], sys.argv[3], float(sys.argv[4]))"
        )
        parent = os.path.dirname(os.path.dirname(package))
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", boot, parent, package, root, str(timeout)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # it reports through its answers, never a traceback
                text=True,
                bufsize=1,
            )
        except OSError:
            return None
        return cls(proc)

    def send(self, job_id: int, dist: LockedDist) -> None:
        from .lock.model import dist_to_json

        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"id": job_id, "dist": dist_to_json(dist)}) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            raise HelperGone from None

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            line = self.proc.stdout.readline()
            reply = json.loads(line) if line else None
        except (OSError, ValueError):
            reply = None
        if not isinstance(reply, dict) or not isinstance(reply.get("id"), int):
            raise HelperGone
        return reply

    def close(self) -> None:
        """No more jobs: the helper exits when its input ends (it is killed if it lingers)."""
        import subprocess

        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wanted() -> bool:
    """A helper is worth starting: two cores or more, and not switched off."""
    return (
        os.environ.get(ENV, "1") != "0"
        and (os.cpu_count() or 1) > 1
        and not getattr(sys, "frozen", False)  # sys.executable is not a Python there
    )


def start_ahead(root: str, timeout: float) -> None:
    """Start a helper for the cache at ``root`` now; ``take`` hands it to ``Cache.prepare``."""
    if not wanted():
        return
    with _lock:
        if root not in _ahead:
            helper = Helper.spawn(root, timeout)
            if helper is not None:
                _ahead[root] = helper
                if len(_ahead) == 1:
                    import atexit

                    atexit.register(_close_unused)


def take(root: str) -> Helper | None:
    """The helper started ahead for the cache at ``root`` (once), if any."""
    with _lock:
        return _ahead.pop(root, None)


def _close_unused() -> None:
    # nothing was missing from the cache after all: let the helper go
    with _lock:
        helpers = list(_ahead.values())
        _ahead.clear()
    for h in helpers:
        h.close()


# -- the helper process ---------------------------------------------------------------------


def main(package: str, root: str, timeout: float) -> None:
    """The helper: fill cache entries for the jobs read from stdin until it ends."""
    import gc

    gc.disable()  # as in the parent (cli.run): what it allocates is freed by refcounting
    try:
        _serve(package, root, timeout)
    except BaseException:  # Ctrl-C, a broken pipe, a bug: the parent does what is left
        os._exit(3)
    os._exit(0)


def _serve(package: str, root: str, timeout: float) -> None:
    import envmat

    if os.path.realpath(envmat.__file__) != package:
        return  # another envmat came first on this interpreter's path: the parent works alone
    from .fetch import start_tls_setup, tls_context

    # first: the CA bundle loads without the GIL while the imports below hold it
    start_tls_setup()
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from .cache import Cache
    from .errors import EnvmatError
    from .lock.model import dist_from_json

    cache = Cache(Path(root), jobs=AT_ONCE, downloads=1, timeout=timeout)
    out = threading.Lock()

    def answer(reply: dict[str, Any]) -> None:
        line = json.dumps(reply) + "\n"
        with out:
            sys.stdout.write(line)
            sys.stdout.flush()

    def one(job: dict[str, Any]) -> None:
        try:
            (done,) = cache.prepare([dist_from_json(job["dist"])])
            answer({"id": job["id"], "downloaded": done.downloaded})
        except EnvmatError as e:
            error = {"message": e.message, "context": list(e.context), "hint": e.hint}
            answer({"id": job["id"], "error": {**error, "details": list(e.details)}})
        except BaseException as e:  # reported: the parent redoes the job
            answer({"id": job["id"], "crash": repr(e)})

    with contextlib.suppress(EnvmatError):  # each download reports it
        tls_context()
    answer({"id": -1, "ready": True})
    exit_at = int(os.environ.get("ENVMAT_FAULT_HELPER_EXIT") or 0)  # tests: die at job k
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        for n, line in enumerate(sys.stdin, 1):
            if n == exit_at:
                os._exit(9)
            pool.submit(one, json.loads(line))


def error_from(reply: dict[str, Any]) -> Exception:
    """The ``EnvmatError`` a helper's answer reports."""
    from .errors import EnvmatError

    e = reply["error"]
    return EnvmatError(
        str(e["message"]),
        context=[str(x) for x in e.get("context") or ()],
        hint=e.get("hint"),
        details=[str(x) for x in e.get("details") or ()],
    )
