"""`kdemo --help` and `kdemo status` start like a native tool: they load only what they use.

Each test runs the CLI in a fresh interpreter and lists the modules it loaded: a module-level
import of a bus client, a database driver or a schema validator anywhere on these paths
shows up here (each one costs a tenth of a second or more at every start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kdemo.runtime.ports import allocate_ports
from kdemo.runtime.stackfile import StackRecord, save_stack

HEAVY = (
    "aiohttp",
    "confluent_kafka",
    "cryptography",
    "eth_account",
    "httpx",
    "jsonschema",
    "kubernetes",
    "markdown_it",
    "nats",
    "psycopg",
    "rich.markdown",
    "rich.traceback",
    "services.common.events",
    "textual",
    "urllib.request",
)
"""Modules neither command needs (on a stack that is not running)."""

_RUN = """
import json, sys
listing = sys.argv.pop(1)
from kdemo.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
with open(listing, "w") as out:
    json.dump({"exit": code, "modules": sorted(sys.modules)}, out)
"""


def _run(args: list[str], tmp_path: Path, *, before: str = "") -> tuple[str, set[str]]:
    """stdout of `kdemo ARGS` in a fresh interpreter, and the modules it loaded."""
    listing = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDEMO_")}
    env |= {"KDEMO_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "100"}
    done = subprocess.run(
        [sys.executable, "-c", before + _RUN, str(listing), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ran = json.loads(listing.read_text())
    assert ran["exit"] == 0, done.stderr
    return done.stdout, set(ran["modules"])


def _heavy(loaded: set[str]) -> list[str]:
    return [module for module in HEAVY if module in loaded]


@pytest.mark.parametrize("args", [["--help"], ["status", "--help"], ["dlq", "--help"]])
def test_help_loads_no_heavy_module(args: list[str], tmp_path: Path) -> None:
    _, loaded = _run(args, tmp_path)
    assert _heavy(loaded) == []


def test_status_of_a_stopped_stack_loads_no_heavy_module(tmp_path: Path) -> None:
    save_stack(
        tmp_path / "state",
        StackRecord(runtime="local", ports=allocate_ports(env={}, bus="nats"), bus="nats"),
    )
    shown, loaded = _run(["status"], tmp_path)
    assert "postgres" in shown  # the table was drawn
    assert _heavy(loaded) == []


def test_help_is_the_same_as_with_every_rich_module_loaded(tmp_path: Path) -> None:
    """The stand-ins (kdemo.cli.richhelp) change nothing in what help shows."""
    for args in (["--help"], ["up", "--help"]):
        shown, _ = _run(args, tmp_path)
        ordinary, loaded = _run(args, tmp_path, before="import rich.markdown, rich.traceback\n")
        assert "rich.markdown" in loaded
        assert shown == ordinary
