"""The interpreter of a new venv, looked up while envmat imports its engine.

Making a venv starts with two questions to its interpreter: which executable ``--python`` means
(``venv.find_python``) and what that interpreter supports (``target.query_target``). On a cache
that has not met the interpreter yet each is a subprocess, about 0.1 s together, and nothing can
be selected before they answer. The CLI asks them in a thread before it imports the engine, so
that they overlap those imports; ``api._Engine.open`` takes the answer (or the error) from here.
An interpreter named by its path (or envmat's own) has its query started before that thread
even imports anything (targetquery.py).
"""

from __future__ import annotations

import _thread
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .target import Target

_lock = _thread.allocate_lock()
_pending: dict[tuple[str | None, str], tuple[Any, dict[str, Any]]] = {}


def start(python: str | None, cache_dir: str) -> None:
    """Find and query the interpreter ``python`` means for a venv to be made, in a thread."""
    import threading

    cache_dir = str(Path(cache_dir))  # as the engine spells it
    key = (python, cache_dir)
    with _lock:
        if key in _pending:
            return
        _start_query(python, cache_dir)
        out: dict[str, Any] = {}
        # not a daemon: an exit before the answer waits for it instead of killing an import
        thread = threading.Thread(target=_ask, args=(python, cache_dir, out), daemon=False)
        _pending[key] = (thread, out)
    thread.start()


def _start_query(python: str | None, cache_dir: str) -> None:
    """Start the interpreter's query now, when ``--python`` names it without a search (a path,
    or none: envmat's own), unless the cache knows the answer: the thread below would only
    start it after importing what turns the answer into a ``Target``."""
    import os
    import sys

    from . import targetquery

    if python is None:
        python = str(Path(sys.executable))
    elif os.sep not in python or not os.path.isfile(python):
        return  # a version or a name: found by probing first (venv.find_python)
    python = str(Path(python))  # as venv.find_python_and_target spells it
    try:
        key = targetquery.cache_key(python)
    except OSError:
        return  # the thread reports it
    if not os.path.exists(os.path.join(cache_dir, targetquery.ANSWERS, f"{key}.json")):
        targetquery.start(python)


def _ask(python: str | None, cache_dir: str, out: dict[str, Any]) -> None:
    try:
        from .venv import find_python_and_target

        out["answer"] = find_python_and_target(python, Path(cache_dir))
    except BaseException as e:  # given to the thread that takes the answer
        out["error"] = e


def take(python: str | None, cache_dir: Path) -> tuple[Path, Target] | None:
    """(interpreter, its target) when ``start`` asked for them, else None."""
    with _lock:
        found = _pending.pop((python, str(cache_dir)), None)
    if found is None:
        return None
    thread, out = found
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["answer"]  # type: ignore[no-any-return]
