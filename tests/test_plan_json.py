"""``envmat plan --json`` (and ``sync --dry-run``) outputs validate against schemas/plan.schema.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema

from tests.conftest import tree_snapshot
from tests.test_sync import lock_for, make_demo, run_ok

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "plan.schema.json").read_text())


def plan(*args: str | Path) -> dict:  # type: ignore[type-arg]
    doc = json.loads(run_ok(*args, "--json").stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    return doc  # type: ignore[no-any-return]


def test_real_plans_validate_and_say_why(make_wheel: Callable[..., Path], tmp_path: Path, cache_dir: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    from tests.wheelmaker import package_entry, wheel_entry, write_pylock

    hello, ns_a, ns_b = make_demo(make_wheel)
    venv = tmp_path / "venv"
    first = lock_for(tmp_path / "1" / "pylock.toml", [hello, ns_a, ns_b])
    doc = plan("plan", first, "--venv", venv)
    assert doc["summary"] == {"add": 3, "replace": 0, "remove": 0, "keep": 0, "download_bytes": 0}
    assert {c["reason"] for c in doc["changes"]} == {"not installed"}
    run_ok("sync", first, "--venv", venv)

    # served wheels have a download size; the plan names the version change and the removal
    hello2 = make_wheel("hello-tool", "2.0", files={"hello_tool/__init__.py": ""})
    (tmp_path / "served" / hello2.name).write_bytes(hello2.read_bytes())
    second = write_pylock(
        tmp_path / "2" / "pylock.toml",
        [
            package_entry("hello-tool", "2.0", [wheel_entry(hello2, url=http_server.url_for(hello2.name))]),
            package_entry("ns-a", "1.0", [wheel_entry(ns_a, base=tmp_path / "2")]),
        ],
    )
    before = tree_snapshot(venv)
    doc = plan("plan", second, "--venv", venv)
    by_name = {c["name"]: c for c in doc["changes"]}
    assert by_name["hello-tool"]["action"] == "replace"
    assert by_name["hello-tool"]["old_version"] == "1.0" and by_name["hello-tool"]["version"] == "2.0"
    assert by_name["hello-tool"]["download_size"] == hello2.stat().st_size
    assert by_name["ns-b"]["action"] == "remove" and by_name["ns-b"]["reason"] == "not in the lock"
    assert by_name["ns-a"]["action"] == "keep"
    assert doc["summary"]["download_bytes"] == hello2.stat().st_size
    # sync --dry-run is the same plan; neither changed anything or downloaded
    assert plan("sync", second, "--venv", venv, "--dry-run")["changes"] == doc["changes"]
    assert tree_snapshot(venv) == before
    assert http_server.requests == []
