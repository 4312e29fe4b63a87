"""Identity linking against a real local HTTP server, and the smoke test's reports."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest

from kdemo.errors import KdemoError
from kdemo.flow.link import link_identity
from kdemo.flow.payloads import github_user_id
from kdemo.flow.smoke import STEPS, SmokeReport, StepResult, junit_xml, run_smoke
from kdemo.flow.wallet import Wallet, recover_personal
from kdemo.runtime.base import DeadLetter, NodeStatus, Runtime, TapEvent
from tests.cli.support import LocalServer, Request

SECRET = "link-test-webhook-secret-123456"


def _link_services(server: LocalServer, verdict: dict[str, Any]) -> dict[str, Any]:
    """frontend's link API and github-app's webhook, enough to pair one code."""
    seen: dict[str, Any] = {}

    @server.route("GET /api/link-message")
    def message(request: Request) -> tuple[int, object]:
        address, login = request.query["address"][0], request.query["login"][0]
        seen["message"] = f"Link this wallet to the GitHub account {login} on kdemo\n{address}"
        return 200, {"message": seen["message"]}

    @server.route("POST /api/links")
    def links(request: Request) -> tuple[int, object]:
        body = request.json()
        seen["signer"] = recover_personal(body["message"], body["signature"])
        return 200, {"code": "abcdefghijklmnopqrstuvwxyzab", "expires": "2030-01-01T00:00:00Z"}

    @server.route("POST /webhook")
    def webhook(request: Request) -> tuple[int, object]:
        mac = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-Hub-Signature-256"] == f"sha256={mac}"
        comment = request.json()["comment"]
        seen["author"] = comment["user"]
        codes = re.findall(r"\$link:([a-z]+)\$", comment["body"])
        return 200, {
            "delivery": "d",
            "intents": [],
            "links": [{"code": c} for c in codes],
            "rejected": [],
            "duplicate": False,
        }

    # A fresh code is unknown to identity for a moment (404), then pending, then decided.
    polls = iter(
        [
            (404, {"error": {"code": "unknown_code", "message": "unknown", "hint": ""}}),
            (200, {"state": "pending"}),
        ]
    )

    @server.route("GET /api/links/*")
    def status(request: Request) -> tuple[int, object]:
        code = request.path.rsplit("/", 1)[1]
        status, body = next(polls, (200, verdict))
        return status, ({"code": code, **body} if status == 200 else body)

    return seen


@pytest.mark.parametrize(
    ("verdict", "state", "described"),
    [
        ({"state": "linked", "login": "alice"}, "linked", "to github:alice"),
        ({"state": "refused", "reason": "code expired"}, "refused", "refused: code expired"),
    ],
)
def test_link_identity_performs_both_halves_and_reports_the_verdict(
    local_server: LocalServer, verdict: dict[str, Any], state: str, described: str
) -> None:
    """The wallet signs the SIWE message, the login comments the code, the verdict is returned."""
    seen = _link_services(local_server, verdict)
    wallet = Wallet.fresh()
    with httpx.Client(trust_env=False) as client:
        outcome = link_identity(
            client,
            frontend_url=local_server.url,
            github_app_url=local_server.url,
            webhook_secret=SECRET,
            wallet=wallet,
            login="alice",
            repo="kdemo/identity",
            number=1,
            timeout=5,
        )
    assert seen["signer"] == wallet.address
    assert seen["author"]["login"] == "alice"
    assert seen["author"]["id"] == github_user_id("alice")
    assert outcome.status.state == state
    assert described in outcome.status.describe()
    assert sum(r.path.startswith("/api/links/") for r in local_server.requests) == 3


def test_link_identity_fails_when_github_app_takes_no_code(local_server: LocalServer) -> None:
    """If the comment's code is not picked up, the error says so instead of waiting."""
    _link_services(local_server, {"state": "linked"})
    local_server.routes["POST /webhook"] = lambda _r: (202, {"ignored": "not a bounty event"})
    with httpx.Client(trust_env=False) as client, pytest.raises(KdemoError) as err:
        link_identity(
            client,
            frontend_url=local_server.url,
            github_app_url=local_server.url,
            webhook_secret=SECRET,
            wallet=Wallet.fresh(),
            login="alice",
            repo="o/r",
            number=1,
        )
    assert "not a bounty event" in err.value.message


def _report(outcomes: list[str]) -> SmokeReport:
    report = SmokeReport()
    for name, outcome in zip(STEPS, outcomes, strict=False):
        report.steps.append(StepResult(name, outcome, 0.5, f"detail of {name}"))  # type: ignore[arg-type]
    return report


@pytest.mark.parametrize(
    ("outcomes", "failures", "skipped"),
    [
        (["passed"] * len(STEPS), 0, 0),
        (["passed", "passed", "failed"] + ["skipped"] * (len(STEPS) - 3), 1, len(STEPS) - 3),
    ],
)
def test_junit_report_has_one_testcase_per_step(
    outcomes: list[str], failures: int, skipped: int
) -> None:
    """The JUnit XML lists every step with its time, failure or skip, and consistent counts."""
    xml = junit_xml(_report(outcomes))
    root = ET.fromstring(xml)  # noqa: S314 - parses the XML this test just generated
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == list(STEPS)
    assert all(c.get("time") == "0.500" for c in cases)
    assert (
        int(suite.get("failures", "-1"))
        == failures
        == sum(c.find("failure") is not None for c in cases)
    )
    assert (
        int(suite.get("skipped", "-1"))
        == skipped
        == sum(c.find("skipped") is not None for c in cases)
    )
    assert suite.get("tests") == str(len(STEPS))


class _StoppedRuntime(Runtime):
    """A runtime whose stack was never brought up (the smoke test must stop at step one)."""

    name = "local"

    def up(self, progress: Any) -> dict[str, str]:
        raise NotImplementedError

    def down(self, *, purge: bool = False, progress: Any = None) -> str:
        raise NotImplementedError

    def is_up(self) -> bool:
        return False

    def status(self) -> list[NodeStatus]:
        return []

    def logs(self, node: str, *, follow: bool = False, lines: int = 200) -> Iterator[str]:
        return iter(())

    def kill(self, node: str) -> str:
        raise NotImplementedError

    def public_urls(self) -> dict[str, str]:
        return {}

    def webhook_secret(self) -> str:
        return ""

    def bus_tap(self, *, deliver_all: bool = True) -> AsyncIterator[TapEvent]:
        raise NotImplementedError

    def scrape(self, service: str) -> str:
        return ""

    def dlq_list(self) -> list[DeadLetter]:
        return []

    def dlq_replay(self, seqs: list[int] | None = None) -> int:
        return 0


def test_smoke_stops_at_the_first_failing_step_and_skips_the_rest() -> None:
    """Against a stack that is not up, `stack ready` fails, names why, and nothing else runs."""
    seen: list[str] = []
    report = run_smoke(_StoppedRuntime(), on_step=lambda s: seen.append(s.outcome))
    assert not report.ok
    failed = report.failed_step
    assert failed is not None
    assert failed.name == "stack ready"
    assert "not up" in failed.detail
    assert failed.hint == "run `kdemo up` first"
    assert seen == ["failed"] + ["skipped"] * (len(STEPS) - 1)
    assert report.facts["repository"].startswith("smoke/run-")
