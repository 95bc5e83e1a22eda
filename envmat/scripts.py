"""Launchers for ``console_scripts``/``gui_scripts`` entry points and ``#!python`` shebang rewriting.

Entry points: https://packaging.python.org/en/latest/specifications/entry-points/ ; the launcher
text is what uv writes (pip's differs only in how it strips ``-script.pyw``).
"""

from __future__ import annotations

import re

from .errors import EnvmatError

# "module:object.attr [extras]" (entry points spec, "Data model")
_ENTRY = re.compile(r"^\s*(?P<module>[\w.]+)\s*(:\s*(?P<attrs>[\w.]+)\s*)?(\[.*\])?\s*$")

# Linux limits a shebang line to 127 bytes before 5.1 (BINPRM_BUF_SIZE); with spaces it cannot work.
_MAX_SHEBANG = 127


def shebang(python: str) -> bytes:
    """The interpreter line for scripts in a venv; the ``/bin/sh`` trick where ``#!`` cannot work."""
    if " " not in python and len(python) + 3 <= _MAX_SHEBANG:
        return f"#!{python}\n".encode()
    # A shell re-executes the file with the interpreter; Python then sees a harmless string.
    return f"#!/bin/sh\n'''exec' '{python}' \"$0\" \"$@\"\n' '''\n".encode()


def safe_script_name(name: str) -> bool:
    """A launcher's name is one file name in the scripts directory: no separator, ``.`` or ``..``."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


def launcher(python: str, name: str, spec: str, dist: str) -> bytes:
    if not safe_script_name(name):
        # the name becomes a file in the scripts directory; it must not point anywhere else
        raise EnvmatError(
            f"unsafe entry point name {name!r} in {dist}",
            hint="a script name must be a plain file name; ask the publisher to fix the wheel",
        )
    m = _ENTRY.match(spec)
    if not m or not m.group("attrs"):
        raise EnvmatError(
            f"invalid entry point {name} = {spec!r} in {dist}",
            hint="an entry point must look like 'module:function'; ask the publisher to fix the wheel",
        )
    module, attrs = m.group("module"), m.group("attrs")
    import_name = attrs.split(".", 1)[0]
    body = (
        "# -*- coding: utf-8 -*-\n"
        "import sys\n"
        f"from {module} import {import_name}\n"
        'if __name__ == "__main__":\n'
        '    if sys.argv[0].endswith("-script.pyw"):\n'
        "        sys.argv[0] = sys.argv[0][:-11]\n"
        '    elif sys.argv[0].endswith(".exe"):\n'
        "        sys.argv[0] = sys.argv[0][:-4]\n"
        f"    sys.exit({attrs}())\n"
    )
    return shebang(python) + body.encode()


def rewrite_shebang(python: str, content: bytes) -> bytes:
    """Replace a ``#!python`` / ``#!pythonw`` first line (binary distribution format, "Installing")."""
    _, _, rest = content.partition(b"\n")
    return shebang(python) + rest
