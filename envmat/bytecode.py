"""``--compile-bytecode``: compile installed modules with the target interpreter, in parallel.

The ``.pyc`` files are listed in their distribution's RECORD, as pip does, so they leave with
their module. Compiling runs after the file transaction has committed: a ``.pyc`` is a cache, and
a sync interrupted here leaves a correct venv that only lacks some of them.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import EnvmatError
from .record import RecordEntry, format_record, parse_record, record_hash_of

# compileall.compile_file's defaults, as pip uses them: optimization level 0, timestamp pycs
_WORKER = r"""
import json, py_compile, sys, importlib.util
out = []
for path in json.load(sys.stdin):
    try:
        cfile = importlib.util.cache_from_source(path)
        py_compile.compile(path, cfile=cfile, doraise=True)
        out.append([path, cfile])
    except (py_compile.PyCompileError, SyntaxError, UnicodeDecodeError, ValueError):
        pass  # as compileall: a module that does not compile is installed without bytecode
print(json.dumps(out))
"""


def compile_modules(python: Path, files: Sequence[str], jobs: int) -> list[tuple[str, str]]:
    """(source, pyc) pairs for the absolute ``files`` that compiled."""
    if not files:
        return []
    n = max(1, min(jobs, os.cpu_count() or 1, (len(files) + 49) // 50))
    chunks = [list(files[i::n]) for i in range(n)]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    }

    def run(chunk: list[str]) -> list[tuple[str, str]]:
        proc = subprocess.run(
            [str(python), "-I", "-c", _WORKER],
            input=json.dumps(chunk),
            capture_output=True,
            text=True,
            env=env,
        )
        if proc.returncode != 0:
            raise EnvmatError(
                "compiling bytecode failed",
                details=proc.stderr.strip().splitlines()[-3:],
                hint="the packages are installed; run again without --compile-bytecode to skip compiling",
            )
        return [(a, b) for a, b in json.loads(proc.stdout)]

    with ThreadPoolExecutor(max_workers=n) as pool:
        return [pair for part in pool.map(run, chunks) for pair in part]


def add_to_records(prefix: Path, records: Mapping[str, Sequence[str]]) -> None:
    """Append the ``.pyc`` files (venv-relative) to each ``dist-info/RECORD`` (venv-relative)."""
    for record_path, pycs in records.items():
        if not pycs:
            continue
        path = prefix / record_path
        site = path.parent.parent
        entries = parse_record(path.read_text(encoding="utf-8"))
        known = {e.path for e in entries}
        for pyc in pycs:
            rel = os.path.relpath(prefix / pyc, site).replace(os.sep, "/")
            if rel in known:
                continue
            data = (prefix / pyc).read_bytes()
            entries.insert(len(entries) - 1, RecordEntry(rel, record_hash_of(data), len(data)))
        tmp = path.with_name(f".RECORD.tmp-{os.getpid()}")
        tmp.write_bytes(format_record((e.path, e.hash, e.size) for e in entries))
        os.replace(tmp, path)
