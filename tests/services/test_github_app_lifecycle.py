"""github-app's start-up and crashes: bad settings are refused, a crash loses no event."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from kdemo.flow.payloads import comment_payload
from tests.conftest import ROOT, RunningService, Stack
from tests.services.test_github_app import bus_count, deliver, query, relayed_count, unique_repo

pytestmark = pytest.mark.stack


def test_crash_between_commit_and_publish_loses_nothing(
    stack: Stack, start_service: Callable[..., RunningService]
) -> None:
    """An intent committed but not yet published is published once after a restart."""
    quiet = start_service("github-app", {"KDEMO_RELAY_ENABLED": "false"})
    payload = comment_payload("$USDC:77$", repo=unique_repo(), number=9, login="lena")
    response = deliver(quiet.url, stack.secrets.webhook_secret, payload)
    [intent] = response.json()["intents"]
    event_id = f"bounty.requested:{intent['intent_id']}"
    subject = f"kdemo.bounty.requested.{intent['intent_id']}"

    assert len(query(stack, "SELECT 1 FROM outbox WHERE id = %s", (event_id,))) == 1
    # Said once the bus answered, where a relay would start: from then on this process has
    # none, so nothing can publish the row.
    deadline = time.monotonic() + 15
    while "outbox relay disabled" not in quiet.log():
        assert time.monotonic() < deadline, quiet.log()[-2000:]
        time.sleep(0.05)
    assert bus_count(stack, subject) == 0

    quiet.kill()  # SIGKILL: no chance to publish on the way out
    start_service("github-app")

    assert relayed_count(stack, event_id) == 1


def _run_with(stack: Stack, overrides: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDEMO_")}
    env |= stack.env_for("github-app")
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "-m", "services.github_app"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (
            {"KDEMO_GITHUB_WEBHOOK_SECRET": "too-short"},
            "KDEMO_GITHUB_WEBHOOK_SECRET: too short: 9 bytes, at least 16",
        ),
        ({"KDEMO_GITHUB_WEBHOOK_SECRET": None}, "KDEMO_GITHUB_WEBHOOK_SECRET: missing"),
        ({"KDEMO_INTENT_SIGNING_KEY": "not a key"}, "KDEMO_INTENT_SIGNING_KEY: not a PEM"),
        ({"KDEMO_INTENT_TTL": "ten"}, "KDEMO_INTENT_TTL:"),
        ({"KDEMO_DATABASE_URL": None}, "KDEMO_DATABASE_URL: missing"),
        ({"KDEMO_GITHUB_API_URL": "api.github.com"}, "KDEMO_GITHUB_API_URL: expected an http"),
    ],
)
def test_bad_settings_stop_the_start_with_the_reason(
    stack: Stack, overrides: dict[str, str | None], words: str
) -> None:
    """A bad or missing setting exits with status 2 and one line naming the variable."""
    result = _run_with(stack, overrides)

    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_webhook_is_taken_while_the_bus_is_away(
    stack: Stack, start_service: Callable[..., RunningService]
) -> None:
    """With nats unreachable the comment still gets its signing URL; the event follows later."""
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    away = start_service("github-app", {"KDEMO_NATS_URL": f"nats://127.0.0.1:{dead_port}"})
    payload = comment_payload("$USDC:31$", repo=unique_repo(), number=4, login="lena")
    response = deliver(away.url, stack.secrets.webhook_secret, payload)
    assert response.status_code == 200
    [intent] = response.json()["intents"]
    assert "/sign?t=" in intent["signing_url"]
    subject = f"kdemo.bounty.requested.{intent['intent_id']}"
    event_id = f"bounty.requested:{intent['intent_id']}"
    assert bus_count(stack, subject) == 0
    assert len(query(stack, "SELECT 1 FROM outbox WHERE id = %s", (event_id,))) == 1

    away.stop()
    start_service("github-app")  # the bus is back: the outbox drains
    assert relayed_count(stack, event_id) == 1
