"""Entry-point launchers and #!python rewriting."""

from __future__ import annotations

import pytest

from envmat.errors import EnvmatError
from envmat.scripts import launcher, rewrite_shebang, shebang


def test_launcher_calls_the_entry_point() -> None:
    text = launcher("/v/bin/python", "tool", "pkg.cli:app.main", "pkg").decode()
    assert text.startswith("#!/v/bin/python\n")
    assert "from pkg.cli import app\n" in text
    assert "sys.exit(app.main())" in text
    compile(text, "tool", "exec")


def test_launcher_ignores_extras_in_the_spec() -> None:
    text = launcher("/v/bin/python", "tool", "pkg:main [cli]", "pkg").decode()
    assert "from pkg import main" in text


def test_invalid_entry_point_is_a_user_error() -> None:
    with pytest.raises(EnvmatError, match="invalid entry point"):
        launcher("/v/bin/python", "tool", "not valid!", "pkg")


def test_shebang_uses_sh_trick_for_spaces_and_long_paths() -> None:
    assert shebang("/a b/python").startswith(b"#!/bin/sh\n'''exec' '/a b/python'")
    assert shebang("/" + "x" * 200).startswith(b"#!/bin/sh\n")


def test_rewrite_replaces_only_the_first_line() -> None:
    out = rewrite_shebang("/v/bin/python", b"#!python -u\nprint(1)\n")
    assert out == b"#!/v/bin/python\nprint(1)\n"
