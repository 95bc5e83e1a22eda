"""Helpers the differential tests share: entry-point launchers and the scripts venvs have."""

from __future__ import annotations

import ast
import configparser
from pathlib import Path


def launcher_call(path: Path) -> tuple[str, str, str]:
    """(shebang, ``from X import Y``, the called expression) of an entry-point launcher.

    Launchers of pip, uv and envmat differ in text; what they run is what must agree.
    """
    text = path.read_text()
    first, _, body = text.partition("\n")
    if first == "#!/bin/sh":  # the long-path form: the real interpreter is on the exec line
        first = "#!" + body.split("'")[3]
    mod = ast.parse(body)
    imports = [
        f"from {n.module} import {', '.join(a.name for a in n.names)}"
        for n in ast.walk(mod)
        if isinstance(n, ast.ImportFrom)
    ]
    calls = [
        ast.unparse(n.args[0])
        for n in ast.walk(mod)
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "sys.exit" and n.args
    ]
    assert len(imports) == 1 and len(calls) == 1, text
    return first, imports[0], calls[0]


def entry_point_scripts(venv: Path) -> set[str]:
    """``bin/<name>`` for every console and gui script the venv's distributions declare."""
    names: set[str] = set()
    for ep in venv.glob("lib/python3.*/site-packages/*.dist-info/entry_points.txt"):
        cp = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        cp.optionxform = str  # type: ignore[assignment,method-assign]
        cp.read_string(ep.read_text(encoding="utf-8"))
        for group in ("console_scripts", "gui_scripts"):
            if cp.has_section(group):
                names.update(f"bin/{k}" for k in cp[group])
    return names
