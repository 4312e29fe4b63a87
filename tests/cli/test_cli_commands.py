"""The `kdemo` command line as a user meets it: exit codes, one-line errors, `sign`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kdemo.cli import app
from kdemo.flow.smoke import STEPS
from kdemo.flow.wallet import TEST_ACCOUNT_ADDRESS, Wallet, recover_typed_data
from tests.cli.support import BOUNTY_TYPED, LocalServer, Request

runner = CliRunner()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["status", "--output", "yaml"],
        ["logs"],
        ["simulate-comment", "$USDC:1$", "--number", "1"],
        ["simulate-comment", "$USDC:1$", "--repo", "o/r", "--number", "zero"],
        ["simulate-comment", "$USDC:1$", "--repo", "o/r", "--number", "0"],
        ["bounties", "--state", "paid"],
        ["dlq", "replay", "seven"],
        ["up", "--runtime", "docker-compose"],
        ["up", "--context", "prod"],
        ["sign"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    """Unknown commands, missing or malformed options are usage errors: exit code 2."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("help_flag", ["-h", "--help"])
def test_help_is_available_as_h_and_help(help_flag: str) -> None:
    """Both -h and --help print the command list."""
    result = runner.invoke(app, [help_flag])
    assert result.exit_code == 0
    assert "simulate-comment" in result.stdout


@pytest.mark.parametrize("url", ["not-a-url", "http://127.0.0.1:1/sign", "file:///etc/passwd"])
def test_sign_with_a_bad_url_exits_1_with_one_line(url: str) -> None:
    """`kdemo sign` of something that is not a signing URL prints one red line, no traceback."""
    result = runner.invoke(app, ["sign", url])
    assert result.exit_code == 1
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "not a signing URL" in lines[0]
    assert "(hint: " in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["logs", "kill"])
def test_an_unknown_node_is_a_usage_error_naming_the_known_ones(command: str) -> None:
    """`kdemo logs` and `kdemo kill` refuse a node not in the topology (exit 2), listing the
    real ones, before looking for a stack."""
    result = runner.invoke(app, [command, "databse"])
    assert result.exit_code == 2
    line = _error_lines(result.stderr)[0]
    assert "unknown node 'databse'" in line
    for known in ("github-app", "frontend", "gateway", "calc", "identity", "nats", "postgres"):
        assert known in line


@pytest.mark.parametrize("args", [["dashboard"], ["up", "--dashboard"]])
def test_the_dashboard_needs_a_terminal(args: list[str]) -> None:
    """Without an interactive terminal the dashboard refuses at once, before starting anything."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "the dashboard needs an interactive terminal" in result.stderr


def _frontend(server: LocalServer, *, signature_status: int = 200) -> None:
    @server.route("GET /api/intents/*")
    def intents(request: Request) -> tuple[int, object]:
        assert request.path == "/api/intents/tok-123"
        return 200, BOUNTY_TYPED

    @server.route("POST /api/signatures")
    def signatures(request: Request) -> tuple[int, object]:
        body = request.json()
        if recover_typed_data(BOUNTY_TYPED, body["signature"]) != body["address"]:
            return 400, {
                "error": {
                    "code": "bad_signature",
                    "message": "signature does not match",
                    "field": "signature",
                    "hint": "",
                }
            }
        if signature_status == 409:
            return 409, {
                "error": {
                    "code": "conflict",
                    "field": None,
                    "message": "this wallet already signed with another signature",
                    "hint": "each wallet signs an intent once",
                }
            }
        return 200, {"redirect": "https://github.com/octo/hello/issues/7"}


def test_sign_posts_a_recoverable_signature_and_prints_the_issue(local_server: LocalServer) -> None:
    """`kdemo sign URL` signs frontend's typed data and prints the issue it leads to."""
    _frontend(local_server)
    result = runner.invoke(app, ["sign", f"{local_server.url}/sign?t=tok-123"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "https://github.com/octo/hello/issues/7"
    assert TEST_ACCOUNT_ADDRESS in result.stderr  # says it used the public test account
    posted = local_server.requests[-1]
    assert posted.headers["Accept"] == "application/json"
    assert posted.json()["token"] == "tok-123"
    assert posted.json()["address"] == TEST_ACCOUNT_ADDRESS


def test_sign_uses_the_key_from_the_environment(local_server: LocalServer) -> None:
    """KDEMO_SIGNER_KEY selects the wallet, and the test-account note is not shown."""
    _frontend(local_server)
    wallet = Wallet.fresh()
    result = runner.invoke(
        app,
        ["sign", f"{local_server.url}/sign?t=tok-123", "-o", "json"],
        env={"KDEMO_SIGNER_KEY": wallet.key},
    )
    assert result.exit_code == 0, result.output
    assert local_server.requests[-1].json()["address"] == wallet.address
    assert '"redirect": "https://github.com/octo/hello/issues/7"' in result.stdout
    assert "test account" not in result.stderr


def test_sign_reports_frontend_refusal_in_one_line(local_server: LocalServer) -> None:
    """A 409 from frontend becomes exit 1 with frontend's own message and hint."""
    _frontend(local_server, signature_status=409)
    result = runner.invoke(app, ["sign", f"{local_server.url}/sign?t=tok-123"])
    assert result.exit_code == 1
    lines = _error_lines(result.stderr)
    assert "already signed" in lines[-1]
    assert "each wallet signs an intent once" in lines[-1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("debug", "traceback"), [([], False), (["--debug"], True)])
def test_unreachable_stack_is_one_line_unless_debug(debug: list[str], traceback: bool) -> None:
    """A refused connection says the stack may be down; --debug adds the traceback."""
    url = f"http://127.0.0.1:{_closed_port()}/sign?t=x"
    result = runner.invoke(app, [*debug, "sign", url])
    assert result.exit_code == 1
    assert "stack not up? run `kdemo up`" in result.stderr
    assert ("Traceback" in result.stderr) is traceback


def test_python_m_kdemo_runs_the_cli() -> None:
    """`python -m kdemo` is the same command as `kdemo`."""
    done = subprocess.run(
        [sys.executable, "-m", "kdemo", "logs", "nope"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown node 'nope'")


def test_smoke_against_a_stack_never_brought_up_fails_at_step_one(tmp_path: Path) -> None:
    """`smoke --junit` names the first step, writes the report anyway, and exits 1."""
    report = tmp_path / "out" / "junit.xml"
    result = runner.invoke(
        app, ["--state-dir", str(tmp_path / "state"), "smoke", "--junit", str(report)]
    )
    assert result.exit_code == 1
    last = _error_lines(result.stderr)[-1]
    assert last.startswith("error: smoke failed at step 'stack ready'")
    assert "(hint: run `kdemo up` first)" in last
    xml = report.read_text()
    assert xml.count("<testcase ") == len(STEPS)
    assert xml.count("<failure ") == 1


def test_status_of_a_state_directory_without_a_stack_is_one_line(tmp_path: Path) -> None:
    """`status` where no stack was ever brought up exits 1 pointing at `kdemo up`."""
    result = runner.invoke(app, ["status", "-o", "json"], env={"KDEMO_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 1
    lines = _error_lines(result.stderr)
    assert len(lines) == 1
    assert "kdemo up" in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["dlq", "list"],
        ["dlq", "replay"],
        ["bounties"],
        ["link-identity", "--github", "alice"],
        ["simulate-comment", "$USDC:1$", "--repo", "o/r", "--number", "1"],
    ],
)
def test_commands_that_need_the_stack_say_it_is_not_up(tmp_path: Path, args: list[str]) -> None:
    """Without a running stack these commands exit 1 telling the user to run `kdemo up`."""
    result = runner.invoke(app, ["--state-dir", str(tmp_path), *args])
    assert result.exit_code == 1
    assert _error_lines(result.stderr)[-1] == (
        "error: the stack is not up (hint: run `kdemo up` first)"
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["bounties", "--state", "paid"], "--state"),
        (["nosuch"], "No such command"),
        (["logs"], "Missing argument"),
        (["simulate-comment", "$USDC:5$", "--number", "x"], "--number"),
    ],
)
def test_usage_errors_are_one_line_with_a_hint_and_exit_2(
    tmp_path: Path, args: list[str], words: str
) -> None:
    """A usage error prints exactly one line on stderr, naming the problem, and exits 2."""
    result = subprocess.run(
        [sys.executable, "-m", "kdemo", *args],
        env={**os.environ, "KDEMO_STATE_DIR": str(tmp_path), "COLUMNS": "40"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert words in lines[0]
    assert "hint:" in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("image", [None, "kdemo-kind/node:v1.34.4-0123456789ab"])
def test_doctor_names_the_kind_node_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image: str | None
) -> None:
    """`doctor -o json` says which node image a new kind cluster starts from, and how to
    build one where kind's own cannot be pulled."""
    monkeypatch.setenv("KDEMO_STATE_DIR", str(tmp_path))
    if image:
        monkeypatch.setenv("KDEMO_KIND_NODE_IMAGE", image)
    else:
        monkeypatch.delenv("KDEMO_KIND_NODE_IMAGE", raising=False)
    result = runner.invoke(app, ["doctor", "-o", "json"])
    report = json.loads(result.stdout)
    [check] = [c for c in report["checks"] if c["name"] == "kind node image"]
    if image:
        assert (check["level"], check["detail"]) == ("ok", f"{image} (KDEMO_KIND_NODE_IMAGE)")
    else:
        assert check["level"] == "info"
        assert "kind-offline" in check["fix"]
