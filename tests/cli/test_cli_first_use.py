"""The CLI as a new user meets it: hints they can run, errors said once, help that reads
right, and tables that keep every character at 80 columns."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from kdemo.cli import app
from kdemo.cli.flow import rejection_warnings
from kdemo.cli.session import DEV_ENV, invocation
from kdemo.flow.webhook import Rejected
from kdemo.runtime.base import Runtime
from kdemo.testing.recorded import RecordedRuntime
from services.common.intent_tokens import (
    IntentClaims,
    TokenError,
    generate_ed25519_keypair,
    issue_intent_token,
    verify_intent_token,
)
from tests.cli.support import BOUNTY_TYPED, LocalServer, Request

runner = CliRunner()
REPO_ROOT = Path(__file__).resolve().parents[2]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> RecordedRuntime:
    """Every command finds this recorded stack instead of one in a state directory."""
    rt = RecordedRuntime.demo()

    def get_runtime(state_dir: Path | None = None) -> Runtime:
        return rt

    monkeypatch.setattr("kdemo.runtime.get_runtime", get_runtime)
    monkeypatch.delenv(DEV_ENV, raising=False)
    return rt


# ---- hints name commands the way the user runs kdemo ----


@pytest.mark.parametrize(
    ("env", "command"),
    [
        ({}, "kdemo"),
        ({DEV_ENV: "./dev"}, "./dev kdemo"),
        ({DEV_ENV: "../kdemo/dev"}, "../kdemo/dev kdemo"),
    ],
)
def test_up_says_what_to_run_next_the_way_kdemo_was_run(
    recorded: RecordedRuntime, env: dict[str, str], command: str
) -> None:
    """Through ./dev, `kdemo` is not on PATH: the next step is spelled `./dev kdemo …`."""
    result = runner.invoke(app, ["up"], env=env)
    assert result.exit_code == 0, result.output
    [next_line] = [line for line in _lines(result.stderr) if line.startswith("next:")]
    assert (
        next_line == f"next: {command} simulate-comment '$USDC:50$' --repo you/project --number 1"
    )


@pytest.mark.parametrize(("env", "command"), [({}, "kdemo"), ({DEV_ENV: "./dev"}, "./dev kdemo")])
def test_error_hints_name_commands_the_way_kdemo_was_run(
    tmp_path: Path, env: dict[str, str], command: str
) -> None:
    """Hints raised deep in the runtime (`run \\`kdemo up\\` first`) are spelled as invoked."""
    result = runner.invoke(app, ["--state-dir", str(tmp_path), "dlq", "list"], env=env)
    assert result.exit_code == 1
    assert _lines(result.stderr) == [f"error: the stack is not up (hint: run `{command} up` first)"]


def test_a_script_called_by_its_path_is_named_by_that_path(tmp_path: Path) -> None:
    """`.venv/bin/kdemo` with the venv not activated: hints say `.venv/bin/kdemo`; once the
    same script is on PATH they say `kdemo`."""
    script = tmp_path / "bin" / "kdemo"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert invocation({"PATH": "/nonexistent"}, str(script)) == str(script)
    assert invocation({"PATH": str(script.parent)}, str(script)) == "kdemo"
    assert invocation({"PATH": "/nonexistent"}, "/usr/bin/pytest") == "kdemo"
    assert invocation({DEV_ENV: "1"}, str(script)) == "./dev kdemo"


def test_dev_tells_the_cli_it_runs_through_dev(tmp_path: Path) -> None:
    """`./dev kdemo …` runs kdemo with KDEMO_VIA_DEV set to how ./dev was called (uv is a
    stub here that prints what it was given)."""
    shutil.copy(REPO_ROOT / "dev", tmp_path / "dev")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    uv = bin_dir / "uv"
    uv.write_text('#!/bin/sh\n[ "$1" = run ] && echo "$KDEMO_VIA_DEV|$*"\nexit 0\n')
    uv.chmod(uv.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop(DEV_ENV, None)
    done = subprocess.run(
        ["./dev", "kdemo", "status"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "./dev|run kdemo status"


# ---- service errors said once, in words ----

_PRIVATE, _PUBLIC = generate_ed25519_keypair()
_OTHER_PRIVATE, _ = generate_ed25519_keypair()
_CLAIMS = IntentClaims(
    intent_id="0x" + "ab" * 32,
    repository="octo/hello",
    number=7,
    kind="issue",
    source="issue_comment",
    source_id=123456789012,
    html_url="https://github.com/octo/hello/issues/7",
    denomination="USDC",
    amount=50,
    author_id=1,
    author_login="octo",
    expires_at=1_800_000_000,
)


def _refusal(private_key: str, now: int) -> str:
    """The message frontend's token check gives for this token (the service's own code)."""
    token = issue_intent_token(_CLAIMS, private_key, now=_CLAIMS.expires_at - 3600)
    with pytest.raises(TokenError) as caught:
        verify_intent_token(token, _PUBLIC, now=now)
    return caught.value.message


@pytest.mark.parametrize(
    ("status", "message", "hint", "expected"),
    [
        (
            401,
            _refusal(_OTHER_PRIVATE, _CLAIMS.expires_at - 60),
            "open the signing URL exactly as it was posted",
            "error: frontend GET /api/intents/<token> failed with 401: token: not a genuine "
            "intent token (its signature does not match this deployment's key) "
            "(hint: open the signing URL exactly as it was posted)",
        ),
        (
            410,
            _refusal(_PRIVATE, _CLAIMS.expires_at + 3 * 3600 + 5),
            "comment the bounty again to get a fresh signing URL",
            "error: frontend GET /api/intents/<token> failed with 410: token: the intent "
            "expired at 2027-01-15T08:00:00Z (3 h ago) "
            "(hint: comment the bounty again to get a fresh signing URL)",
        ),
        (  # a service that repeats its field and its hint in the message
            401,
            "token: not a genuine intent token; open the signing URL exactly as it was posted",
            "open the signing URL exactly as it was posted",
            "error: frontend GET /api/intents/<token> failed with 401: token: not a genuine "
            "intent token; open the signing URL exactly as it was posted",
        ),
    ],
    ids=["forged", "expired", "hint-in-message"],
)
def test_token_errors_are_one_line_said_once(
    local_server: LocalServer, status: int, message: str, hint: str, expected: str
) -> None:
    """frontend's refusal of a token is one line: the field named once, the hint once, the
    reason in words (no library wording) and the expiry as a time people read."""

    @local_server.route("GET /api/intents/*")
    def refuse(request: Request) -> tuple[int, object]:
        code = "token_expired" if status == 410 else "token_invalid"
        return status, {"error": {"code": code, "message": message, "field": "token", "hint": hint}}

    result = runner.invoke(app, ["sign", f"{local_server.url}/sign?t=tok-123"])
    assert result.exit_code == 1
    assert _lines(result.stderr)[-1] == expected
    assert "Signature verification failed" not in result.stderr
    assert "unix" not in result.stderr


# ---- sign says what frontend made of the signature ----


@pytest.mark.parametrize(
    ("status", "said"),
    [
        ("signed", "signed by {address}"),
        ("already_signed", "already signed by {address}: nothing new recorded"),
        (
            "offer",
            "signed by {address}, recorded as an offer: another wallet signed this intent first",
        ),
    ],
)
def test_sign_says_signed_already_signed_or_offer(
    local_server: LocalServer, status: str, said: str
) -> None:
    """A second `sign` by the same wallet says it was already signed; another wallet's
    signature is said to be an offer; `-o json` carries frontend's status."""

    @local_server.route("GET /api/intents/*")
    def intents(request: Request) -> tuple[int, object]:
        return 200, BOUNTY_TYPED

    @local_server.route("POST /api/signatures")
    def signatures(request: Request) -> tuple[int, object]:
        body = request.json()
        return 200, {
            "status": status,
            "intent_id": "0x" + "ab" * 32,
            "address": body["address"],
            "redirect": "https://github.com/octo/hello/issues/7",
        }

    url = f"{local_server.url}/sign?t=tok-123"
    result = runner.invoke(app, ["sign", url])
    assert result.exit_code == 0, result.output
    address = local_server.requests[-1].json()["address"]
    assert _lines(result.stderr)[-1] == said.format(address=address)
    assert result.stdout.strip() == "https://github.com/octo/hello/issues/7"
    as_json = runner.invoke(app, ["sign", url, "-o", "json"])
    assert '"status": "' + status + '"' in as_json.stdout


# ---- help, --debug, usage errors ----


@pytest.mark.parametrize("args", [["--help"], ["down", "--help"], ["status", "--help"]])
def test_plain_flags_show_no_metavar(args: list[str]) -> None:
    """`--help`, `--debug`, `--purge` take no value, so help shows none (no `<bool>`)."""
    result = runner.invoke(app, args, env={"COLUMNS": "100"})
    assert result.exit_code == 0
    assert "--debug" in result.stdout
    assert "<bool>" not in result.stdout
    assert "<text|json>" in runner.invoke(app, ["status", "--help"]).stdout  # values still shown


def test_every_command_takes_debug_after_its_name() -> None:
    """--debug is an option of every command, not only of `kdemo` itself."""

    def commands(group: Any, path: str) -> list[tuple[str, Any]]:
        found = []
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                found += commands(command, f"{path} {name}")
            else:
                found.append((f"{path} {name}", command))
        return found

    every = commands(typer.main.get_command(app), "kdemo")
    assert len(every) >= 15
    missing = [name for name, c in every if "debug" not in {p.name for p in c.params}]
    assert missing == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_after_the_command_shows_the_traceback(where: str) -> None:
    """`kdemo sign URL --debug` works like `kdemo --debug sign URL`."""
    url = f"http://127.0.0.1:{_closed_port()}/sign?t=x"
    args = ["--debug", "sign", url] if where == "before" else ["sign", url, "--debug"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert _lines(result.stderr)[-1].startswith("error: cannot reach http://127.0.0.1:")


def test_status_debug_is_not_a_usage_error(tmp_path: Path) -> None:
    """`kdemo status --debug` used to be "No such option" (exit 2)."""
    result = runner.invoke(app, ["--state-dir", str(tmp_path), "status", "--debug"])
    assert "No such option" not in result.stderr
    assert result.exit_code == 1  # no stack there: a failure, not a usage error
    assert "Traceback" in result.stderr


def test_replaying_an_unknown_dead_letter_names_it_and_what_exists(
    recorded: RecordedRuntime,
) -> None:
    """`dlq replay 999` does not report success: it names the unknown sequence numbers and
    lists the dead letters there are."""
    there = [d.seq for d in recorded.dlq_list()]
    assert there == [6]
    result = runner.invoke(app, ["dlq", "replay", "999", "6", "7"])
    assert result.exit_code == 1
    assert _lines(result.stderr) == [
        "error: no dead letter with sequence 7, 999; nothing was replayed "
        "(hint: dead letters now: 6)"
    ]
    assert result.stdout == ""
    assert runner.invoke(app, ["dlq", "replay", "6"]).exit_code == 0


# ---- simulate-comment: one warning per reason ----


def test_identical_rejections_are_one_warning_with_a_count() -> None:
    """20 times the same rejected pattern is one line; several patterns rejected for one
    reason are named together."""
    same = [Rejected("$USDC:007$", "no leading zeros")] * 20
    many = [Rejected(f"$USDC:{n}$", "at most 5 bounties count") for n in range(6, 26)]
    assert rejection_warnings([*same, *many, Rejected("$X:1$", "unknown denomination")]) == [
        "github-app rejected '$USDC:007$': no leading zeros (\N{MULTIPLICATION SIGN}20)",
        "github-app rejected 20 patterns ('$USDC:6$', '$USDC:7$', '$USDC:8$' and 17 more): "
        "at most 5 bounties count",
        "github-app rejected '$X:1$': unknown denomination",
    ]


def test_simulate_comment_groups_identical_warnings(
    recorded: RecordedRuntime, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A comment of 5,000 patterns that github-app rejects 20 times alike prints one warning."""
    monkeypatch.setattr(recorded, "_urls", {"github-app": local_server.url})

    @local_server.route("POST /webhook")
    def webhook(request: Request) -> tuple[int, object]:
        return 200, {
            "delivery": "d",
            "intents": [{"signing_url": "http://127.0.0.1:1/sign?t=x"}],
            "links": [],
            "rejected": [{"text": "$USDC:1$", "reason": "at most 5 bounties count"}] * 20,
            "duplicate": False,
        }

    body = "$USDC:1$ " * 5000
    result = runner.invoke(app, ["simulate-comment", body, "--repo", "o/r", "--number", "1"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in _lines(result.stderr) if line.startswith("warning:")]
    assert warnings == [
        "warning: github-app rejected '$USDC:1$': at most 5 bounties count "
        "(\N{MULTIPLICATION SIGN}20)"
    ]


# ---- tables at 80 columns: wrapped, never cut ----


def _bare(text: str) -> str:
    return "".join(text.split())


def _cells(table: str, column: int, key: int = 0) -> list[str]:
    """The text of one column without its spaces, each body row's wrapped or folded pieces
    joined again (compare with `_bare` of the expected text)."""
    rows: list[str] = []
    in_body = False
    for line in table.splitlines():
        if line.startswith("┡"):
            in_body = True
            continue
        if not in_body or not line.startswith("│"):
            continue
        cells = line.split("│")[1:-1]
        piece = _bare(cells[column])
        if cells[key].strip():  # the key column (never folded) starts a new row
            rows.append(piece)
        elif piece:
            rows[-1] += piece
    return rows


def test_status_keeps_every_url_whole_at_80_columns(recorded: RecordedRuntime) -> None:
    """Long URLs fold inside their cell; no line is wider than the terminal."""
    long_url = "postgresql://127.0.0.1:41006/a-database-name-longer-than-any-terminal-column"
    recorded._rows["postgres"].url = long_url
    result = runner.invoke(app, ["status"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert "…" not in result.stdout
    assert _cells(result.stdout, 3) == [r.url for r in recorded.status()]


def test_dead_letters_keep_their_event_ids_whole_at_80_columns(recorded: RecordedRuntime) -> None:
    result = runner.invoke(app, ["dlq", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert _cells(result.stdout, 1) == [d.event_id for d in recorded.dlq_list()]
    assert _cells(result.stdout, 3) == [_bare(d.reason) for d in recorded.dlq_list()]


def test_bounties_keep_repository_and_login_whole_at_80_columns(
    recorded: RecordedRuntime, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorded, "_urls", {"gateway": local_server.url})
    repo = "an-organisation-with-a-long-name/a-repository-with-an-even-longer-name"
    login = "a-funder-whose-login-is-long"

    @local_server.route("GET /api/bounties")
    def listing(request: Request) -> tuple[int, object]:
        bounty: dict[str, Any] = {
            "repository": repo,
            "number": 4242,
            "denomination": "USDC",
            "amount": "1000000",
            "state": "signed",
            "funder": {"address": "0x" + "12" * 20, "login": login, "verified": True},
        }
        return 200, {"bounties": [bounty], "totals": [], "warnings": []}

    result = runner.invoke(app, ["bounties"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert "…" not in result.stdout
    assert _cells(result.stdout, 0, key=1) == [repo]
    assert _cells(result.stdout, 2, key=1) == ["1000000USDC"]
    assert _cells(result.stdout, 4, key=1) == [login]
