"""The smoke test: the whole flow once, each step timed, against any running stack.

Every run uses a fresh wallet, a fresh login and a unique repository and issue
number, so it can run any number of times against the same stack.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from xml.etree import ElementTree as ET

import httpx

from kdemo.errors import KdemoError
from kdemo.flow.bounties import fetch_bounties, fetch_issue_bounties, total_for
from kdemo.flow.http import describe_transport_error, new_client
from kdemo.flow.link import LINK_TIMEOUT, link_identity
from kdemo.flow.wallet import Wallet, sign_intent
from kdemo.flow.webhook import simulate_comment
from kdemo.runtime.base import Runtime

__all__ = [
    "POLL_TIMEOUT",
    "STEPS",
    "SmokeReport",
    "StepResult",
    "junit_xml",
    "run_smoke",
]

POLL_TIMEOUT = 10.0
DENOMINATION = "USDC"

STEPS: tuple[str, ...] = (
    "stack ready",
    "simulate comment",
    "sign",
    "bounty signed in gateway",
    "link identity",
    "funder verified",
    "totals from calc",
)
"""The steps in order; a failure stops the run and the later steps count as skipped."""

StepOutcome = Literal["passed", "failed", "skipped"]


@dataclass
class StepResult:
    name: str
    outcome: StepOutcome
    seconds: float = 0.0
    detail: str = ""
    """What the step saw (passed) or why it failed."""
    hint: str = ""
    """How to fix a failure, when known."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
            "hint": self.hint or None,
        }


@dataclass
class SmokeReport:
    steps: list[StepResult] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    facts: dict[str, Any] = field(default_factory=dict)
    """What the run used: repository, number, login, wallet address, signing URL."""

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.outcome == "passed" for s in self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.outcome == "failed"), None)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        failed = self.failed_step
        return {
            "ok": self.ok,
            "failed_step": failed.name if failed else None,
            "seconds": round(self.seconds, 3),
            "steps": [s.to_json() for s in self.steps],
            **self.facts,
        }


class _StepFailed(Exception):
    """Raised inside a step with the sentence that explains it."""


def _poll(check: Callable[[], str | None], timeout: float, waiting_for: str) -> str:
    """Call `check` until it returns a detail string; fail naming what never showed up."""
    deadline = time.monotonic() + timeout
    while True:
        detail = check()
        if detail is not None:
            return detail
        if time.monotonic() >= deadline:
            raise _StepFailed(f"{waiting_for} not seen within {timeout:g} s")
        time.sleep(0.25)


def _reason(exc: BaseException) -> tuple[str, str]:
    """(what went wrong, how to fix it) for a failed step."""
    if isinstance(exc, httpx.TransportError):
        exc = describe_transport_error(exc)
    if isinstance(exc, KdemoError):
        return exc.message, exc.hint
    return str(exc), ""


class _Flow:
    """The smoke run's state, one method per step, in the order of STEPS."""

    def __init__(
        self, runtime: Runtime, client: httpx.Client, poll_timeout: float, link_timeout: float
    ) -> None:
        self.runtime = runtime
        self.client = client
        self.poll_timeout = poll_timeout
        self.link_timeout = link_timeout
        self.wallet = Wallet.fresh()
        tag = uuid.uuid4().hex[:8]
        self.repo = f"smoke/run-{tag}"
        self.number = 1 + secrets.randbelow(99_999)
        # The comment's author and the linked login are the same account: that is what
        # makes the funder `verified`.
        self.login = f"smoke-{tag}"
        self.amount = 1 + secrets.randbelow(1_000)
        self.urls: dict[str, str] = {}
        self.secret = ""
        self.signing_url = ""

    def facts(self) -> dict[str, Any]:
        return {
            "repository": self.repo,
            "number": self.number,
            "login": self.login,
            "address": self.wallet.address,
            "bounty": f"${DENOMINATION}:{self.amount}$",
            "signing_url": self.signing_url or None,
        }

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        return list(
            zip(
                STEPS,
                (
                    self.stack_ready,
                    self.simulate_comment,
                    self.sign,
                    self.bounty_signed,
                    self.link,
                    self.funder_verified,
                    self.totals,
                ),
                strict=True,
            )
        )

    def stack_ready(self) -> str:
        if not self.runtime.is_up():
            raise KdemoError("the stack is not up", "run `kdemo up` first")

        def check() -> str | None:
            rows = self.runtime.status()
            if rows and all(r.ready for r in rows):
                return f"{len(rows)} nodes ready"
            return None

        try:
            detail = _poll(check, self.poll_timeout, "every node ready")
        except _StepFailed as exc:
            waiting = ", ".join(f"{r.name} {r.state}" for r in self.runtime.status() if not r.ready)
            raise _StepFailed(f"{exc} (not ready: {waiting})") from exc
        self.urls = self.runtime.public_urls()
        self.secret = self.runtime.webhook_secret()
        return detail

    def simulate_comment(self) -> str:
        result = simulate_comment(
            self.client,
            self.urls["github-app"],
            self.secret,
            f"Funding this: ${DENOMINATION}:{self.amount}$",
            repo=self.repo,
            number=self.number,
            login=self.login,
        )
        if len(result.signing_urls) != 1:
            raise _StepFailed(
                f"expected one signing URL, got {len(result.signing_urls)}: "
                + result.nothing_matched_reason()
            )
        self.signing_url = result.signing_urls[0]
        return f"one signing URL for {self.repo}#{self.number} by {self.login}"

    def sign(self) -> str:
        signed = sign_intent(self.client, self.signing_url, self.wallet)
        if f"/{self.repo}/" not in signed.redirect:
            raise _StepFailed(f"frontend sent the browser to {signed.redirect}, not to {self.repo}")
        return f"signed by {signed.address}, redirect {signed.redirect}"

    def bounty_signed(self) -> str:
        return _poll(
            lambda: self._find("signed"),
            self.poll_timeout,
            f"a signed bounty on {self.repo}#{self.number} funded by {self.wallet.address}",
        )

    def link(self) -> str:
        outcome = link_identity(
            self.client,
            frontend_url=self.urls["frontend"],
            github_app_url=self.urls["github-app"],
            webhook_secret=self.secret,
            wallet=self.wallet,
            login=self.login,
            repo=self.repo,
            number=self.number,
            timeout=self.link_timeout,
        )
        if outcome.status.state != "linked":
            raise _StepFailed(f"link {outcome.status.describe()}")
        return outcome.status.describe()

    def funder_verified(self) -> str:
        return _poll(
            lambda: self._find("verified"),
            self.poll_timeout,
            f"funder github:{self.login} with verified true",
        )

    def totals(self) -> str:
        listing = fetch_issue_bounties(self.client, self.urls["gateway"], self.repo, self.number)
        entry = total_for(listing.totals, DENOMINATION)
        if entry is None:
            raise _StepFailed(f"gateway's totals have no {DENOMINATION} entry: {listing.totals}")
        return f"{DENOMINATION} totals {entry}"

    def _find(self, want: Literal["signed", "verified"]) -> str | None:
        listing = fetch_bounties(self.client, self.urls["gateway"], repo=self.repo)
        for bounty in listing.bounties:
            funder = bounty.get("funder") or {}
            if bounty.get("number") != self.number:
                continue
            if str(funder.get("address", "")).lower() != self.wallet.address.lower():
                continue
            if want == "signed" and bounty.get("state") == "signed":
                return f"{bounty.get('denomination')} {bounty.get('amount')} signed"
            if (
                want == "verified"
                and funder.get("login") == self.login
                and funder.get("verified") is True
            ):
                return f"funder github:{self.login} verified"
        return None


def run_smoke(
    runtime: Runtime,
    *,
    on_step: Callable[[StepResult], None] | None = None,
    poll_timeout: float = POLL_TIMEOUT,
    link_timeout: float = LINK_TIMEOUT,
) -> SmokeReport:
    """Run the flow once against `runtime`'s stack and report every step.

    A failing step stops the run; the steps after it are reported as skipped.
    """
    report = SmokeReport()
    with new_client() as client:
        flow = _Flow(runtime, client, poll_timeout, link_timeout)
        failed = False
        for name, run in flow.steps():
            if failed:
                result = StepResult(name, "skipped", detail="an earlier step failed")
            else:
                start = time.perf_counter()
                try:
                    detail = run()
                except (_StepFailed, KdemoError, httpx.TransportError) as exc:
                    failed = True
                    message, hint = _reason(exc)
                    result = StepResult(name, "failed", time.perf_counter() - start, message, hint)
                else:
                    result = StepResult(name, "passed", time.perf_counter() - start, detail)
            report.steps.append(result)
            if on_step is not None:
                on_step(result)
        report.facts = flow.facts()
    return report


def junit_xml(report: SmokeReport, *, suite: str = "kdemo smoke") -> str:
    """JUnit XML with one testcase per step (skipped ones included), for CI test reports."""
    failures = sum(s.outcome == "failed" for s in report.steps)
    skipped = sum(s.outcome == "skipped" for s in report.steps)
    root = ET.Element(
        "testsuites",
        name=suite,
        tests=str(len(report.steps)),
        failures=str(failures),
        errors="0",
        time=f"{report.seconds:.3f}",
    )
    suite_el = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(report.steps)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{report.seconds:.3f}",
        timestamp=report.started.replace(microsecond=0, tzinfo=None).isoformat(),
    )
    if report.facts:
        props = ET.SubElement(suite_el, "properties")
        for key, value in report.facts.items():
            ET.SubElement(props, "property", name=key, value=str(value))
    for step in report.steps:
        case = ET.SubElement(
            suite_el,
            "testcase",
            classname="kdemo.smoke",
            name=step.name,
            time=f"{step.seconds:.3f}",
        )
        if step.outcome == "failed":
            failure = ET.SubElement(case, "failure", message=step.detail, type="SmokeStepFailed")
            failure.text = step.detail + (f"\nhint: {step.hint}" if step.hint else "")
        elif step.outcome == "skipped":
            ET.SubElement(case, "skipped", message=step.detail)
        elif step.detail:
            ET.SubElement(case, "system-out").text = step.detail
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
