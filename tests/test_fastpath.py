"""The no-op fast path reads argv itself; it must mean exactly what argparse means."""

from __future__ import annotations

import pytest

from envmat.cli import _options, build_parser, fast_args
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


MORE = [
    ["sync", "l.toml", "-v", "--verbose", "--python", "3.12", "--python=/usr/bin/python3"],
    ["sync", "l.toml", "--group", "a", "--group", "a", "--extra", "z", "--extra", "a"],
    ["sync", "l.toml", "--venv=-odd", "--link-mode=symlink", "--jobs=2", "--timeout", "1e3"],
    ["sync", "--python=", "l.toml", "--lock-timeout", "0", "-q", "-q"],
]


@pytest.mark.parametrize("argv", SAME + MORE)
def test_fast_args_are_what_argparse_gives(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain sync skips argparse (cli.fast_args): every attribute must be argparse's."""
    for link_mode in (None, "copy"):
        if link_mode:
            monkeypatch.setenv("ENVMAT_LINK_MODE", link_mode)
        assert vars(fast_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["sync", "l.toml", "--venv", "-x"],  # argparse: "expected one argument"
        ["sync", "l.toml", "--link-mode", "sideways"],
        ["sync", "l.toml", "--jobs", "0"],
        ["sync", "l.toml", "--json"],
        ["plan", "l.toml"],
    ],
)
def test_fast_args_leave_the_rest_to_argparse(argv: list[str]) -> None:
    assert fast_args(argv) is None


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


def test_python_matches_only_the_venvs_own_interpreter(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import sys

    from envmat.fastpath import python_matches

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    os.symlink(sys.executable, venv / "bin" / "python")
    (venv / "pyvenv.cfg").write_text("home = /x\nversion_info = 3.11.7.final.0\n")
    assert python_matches(str(venv), sys.executable)
    assert python_matches(str(venv), str(venv / "bin" / "python"))
    assert not python_matches(str(venv), str(tmp_path / "missing" / "python"))
    other = tmp_path / "other-python"
    other.write_text("")
    assert not python_matches(str(venv), str(other))
    assert python_matches(str(venv), "3.11") and python_matches(str(venv), "3")
    assert python_matches(str(venv), "3.11.7")
    assert not python_matches(str(venv), "3.1") and not python_matches(str(venv), "3.12")
    # names and anything unusual are the full path's to decide
    assert not python_matches(str(venv), "python3.11") and not python_matches(str(venv), "")
    (venv / "pyvenv.cfg").unlink()
    assert not python_matches(str(venv), "3.11")


@pytest.mark.parametrize(
    ("option", "value", "ok"),
    [
        ("--jobs", "1", True),
        ("--jobs", "0", False),
        ("--jobs", "-3", False),
        ("--jobs", "x", False),
        ("--timeout", "0.5", True),
        ("--timeout", "0", False),
        ("--timeout", "-1", False),
        ("--timeout", "nan", False),
        ("--timeout", "inf", False),
        ("--lock-timeout", "0", True),
        ("--lock-timeout", "-2", False),
        ("--lock-timeout", "abc", False),
    ],
)
def test_fast_parse_and_argparse_check_values_alike(
    option: str, value: str, ok: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value argparse refuses is never taken by the fast parse (which would skip the check:
    a replayed or no-op sync would have run with it), and argparse says what is wrong."""
    argv = ["sync", "l.toml", option, value]
    assert (parse_sync_argv(argv) is not None) == ok
    if ok:
        build_parser().parse_args(argv)
        return
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and value in err and "Traceback" not in err


def test_the_library_refuses_the_same_values(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import envmat

    lock = tmp_path / "pylock.toml"
    lock.write_text('lock-version = "1.0"\ncreated-by = "t"\n[[packages]]\nname = "x"\n')
    with pytest.raises(envmat.EnvmatError) as e:
        envmat.sync(lock, tmp_path / "venv", jobs=0, timeout=float("nan"), lock_timeout=-1)
    assert "jobs: 0 is not 1 or more" in e.value.message
    assert "timeout: nan is not a number of seconds" in e.value.message
    assert "lock_timeout: -1 is not a number of seconds, 0 or more" in e.value.message
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize("value", ["-1", "nan", "x"])
def test_cache_prune_refuses_a_meaningless_age(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["cache", "prune", "--older-than", value])
    assert exit_.value.code == 2
    assert "argument --older-than: " in capsys.readouterr().err
