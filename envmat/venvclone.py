"""Venvs cloned from a template that the interpreter's own venv module made once.

Standard library only (the replay makes its venvs with it). A template's directory name is a
token that appears nowhere else, so cloning it is replacing the token's path and name in its few
text files (activate scripts, pyvenv.cfg): each Python version's venv layout and scripts stay
exactly its own. ``venv.py`` makes the templates.
"""

from __future__ import annotations

import os

from .lite import sha256

TEMPLATES = "venv-templates"


def template_home(python: str, cache_dir: str) -> tuple[str, str]:
    """(the entry for ``python``'s template in the cache, the template's name in it)."""
    real = os.path.realpath(python)
    st = os.stat(real)
    raw = f"venv-template-1|{python}|{real}|{st.st_size}|{st.st_mtime_ns}"
    key = sha256(raw.encode()).hexdigest()[:16]
    return os.path.join(cache_dir, TEMPLATES, key), f"envmat-venv-{key}"


def find_template(python: str, cache_dir: str) -> tuple[str, str] | None:
    """(the template venv, the path its files name) once it is complete, else None."""
    home, name = template_home(python, cache_dir)
    try:
        with open(os.path.join(home, "complete"), encoding="utf-8") as f:
            built_at = f.read()
    except OSError:
        return None
    return os.path.join(home, name), built_at


def clone(template: str, built_at: str, venv: str) -> None:
    """Make ``venv`` a copy of ``template`` that names ``venv`` where it named ``built_at``."""
    old_path, old_name = built_at.encode(), os.path.basename(template).encode()
    new_path, new_name = venv.encode(), os.path.basename(venv).encode()
    os.makedirs(venv, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(template):
        rel = os.path.relpath(dirpath, template)
        dest = venv if rel == "." else os.path.join(venv, rel)
        for name in dirnames + filenames:
            src = os.path.join(dirpath, name)
            dst = os.path.join(dest, name)
            if os.path.islink(src):
                os.symlink(os.readlink(src).replace(built_at, venv), dst)
                if name in dirnames:
                    dirnames.remove(name)  # lib64 -> lib: made as a link, not descended into
            elif name in dirnames:
                os.mkdir(dst)
            else:
                with open(src, "rb") as f:
                    data = f.read().replace(old_path, new_path).replace(old_name, new_name)
                fd = os.open(
                    dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, os.stat(src).st_mode & 0o777
                )
                with open(fd, "wb") as out:
                    out.write(data)
