"""The no-op fast path reads argv itself; it must mean exactly what argparse means."""

from __future__ import annotations

import pytest

from envmat.cli import _options, build_parser
from envmat.fastpath import noop_options, parse_sync_argv

SAME = [
    ["sync", "pylock.toml"],
    ["sync", "pylock.toml", "--venv", "env", "-q"],
    ["sync", "--venv=env", "pylock.toml", "--offline", "--link-mode", "copy", "--jobs", "3"],
    ["sync", "uv.lock", "--extra", "b", "--extra=a", "--group", "dev", "--only-group", "lint"],
    ["sync", "l.toml", "--all-extras", "--all-groups", "--no-default-groups", "--no-dev"],
    ["sync", "l.toml", "--no-install-project", "--inexact", "--strict", "--compile-bytecode", "-v"],
    ["sync", "l.toml", "--cache-dir", "c", "--timeout", "5", "--lock-timeout=2", "--quiet"],
]


@pytest.mark.parametrize("argv", SAME)
def test_fast_parse_agrees_with_argparse(argv: list[str]) -> None:
    parsed = parse_sync_argv(argv)
    assert parsed is not None
    lock, venv, options, quiet, _ = parsed
    args = build_parser().parse_args(argv)
    assert (lock, venv, quiet) == (args.lock, args.venv, args.quiet)
    assert options == noop_options(compile_bytecode=args.compile_bytecode, **_options(args))


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "l.toml"],
        ["sync"],
        ["sync", "l.toml", "--json"],
        ["sync", "l.toml", "--dry-run"],
        ["sync", "l.toml", "--reinstall-modified"],
        ["sync", "l.toml", "-h"],
        ["sync", "l.toml", "-vq"],
        ["sync", "a.toml", "b.toml"],
        ["sync", "l.toml", "--venv"],
        ["sync", "l.toml", "--offline=yes"],
    ],
)
def test_anything_else_takes_the_full_path(argv: list[str]) -> None:
    assert parse_sync_argv(argv) is None
