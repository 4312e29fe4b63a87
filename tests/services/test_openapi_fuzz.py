"""Hostile input: schemathesis against the OpenAPI of github-app, frontend and gateway.

Each schema is built from the app object (github-app and frontend do not serve theirs) and
every operation gets generated requests, valid and invalid (schemathesis' examples,
coverage and fuzzing phases, positive and negative data), over real HTTP to the
running services, with PostgreSQL, NATS, calc and identity behind them. Every
answer must be below 500 and match its documentation: a documented status, the
documented content type, a body matching the documented schema. Where the documented
rules are all a handler checks, they must hold both ways: what they allow is not
refused 400, what they forbid is refused.

A refusal says little about the answers to good requests, so one case in three
gets real values in place of the generated ones (a bounty recorded through the
whole flow, its signing token, a link code): their 200 answers are checked too.
Webhook bodies are signed with the stack's secret, so they reach the parser (two in
five as one of the counted events); one in five is sent as generated. A request
without a valid signature must be refused 401, a signed one never; a refused
request must record nothing (rows in github-app's database, events on frontend's
subjects, counted before and after it: both services write before they answer).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import nats
import psycopg
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from kdemo.flow.bounties import fetch_issue_bounties
from kdemo.flow.link import get_link_status, request_link
from kdemo.flow.payloads import comment_payload
from kdemo.flow.wallet import Wallet, parse_signing_url, sign_intent
from kdemo.flow.webhook import build_delivery, deliver, signature_header
from services.frontend.app import create_app as frontend_app
from services.gateway.app import create_app as gateway_app
from services.github_app.app import create_app as github_app
from services.github_app.webhook import COUNTED
from tests.conftest import RunningService, Stack, launch

pytestmark = pytest.mark.stack

# A deeper run: KDEMO_FUZZ_EXAMPLES=500 KDEMO_FUZZ_SEED=7 pytest tests/services/test_openapi_fuzz.py
SEED = int(os.environ.get("KDEMO_FUZZ_SEED", "20240601"))
MAX_EXAMPLES = int(os.environ.get("KDEMO_FUZZ_EXAMPLES", "40"))
"""Fuzzing cases per operation (the coverage phase adds its own, bounded by the schema)."""
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "phases": {"stateful": {"enabled": False}},
    }
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    missing_required_header,
    unsupported_method,
]
DATA_CHECKS = [negative_data_rejection, positive_data_acceptance]
"""The documented rules hold both ways: a value they allow is not refused 400, one they forbid
is refused. Only for generated cases (real values change what a case is), and not where the
handler checks more than a schema can say:"""
RULES_NOT_ALL_SAID = {
    "GET /sign": "`t` is optional in the docs, so that its absence is answered with a page",
    "POST /api/signatures": "a well-formed signature may still not be this wallet's",
    "POST /api/links": "a well-formed message may still not be one frontend issued",
}
TIMEOUT_S = 10
# The services take no settings to describe themselves: create_app reads them at start-up.
GATEWAY = schemathesis.openapi.from_dict(gateway_app().openapi(), config=CONFIG)
FRONTEND = schemathesis.openapi.from_dict(frontend_app().openapi(), config=CONFIG)
GITHUB_APP = schemathesis.openapi.from_dict(github_app().openapi(), config=CONFIG)
CASES: Counter[tuple[str, str, int]] = Counter()
"""(service, operation, status) of every case sent: the figures in docs/reliability.md."""


@dataclass(frozen=True)
class Running:
    """The five services, and real values the flow recorded through them."""

    urls: dict[str, str]
    secret: str
    repo: str
    number: int
    intent_id: str
    token: str
    code: str
    bodies: dict[str, dict[str, str]]
    """Real bodies of the POST routes: the signature and the link request that were made."""


def _wait_for(what: str, check: Any, within_s: float = 30.0) -> Any:
    deadline = time.monotonic() + within_s
    while (value := check()) is None:
        assert time.monotonic() < deadline, f"{what} did not happen within {within_s} s"
        time.sleep(0.1)
    return value


def _record_real_values(stack: Stack, urls: dict[str, str]) -> Running:
    """A signed bounty (comment → intent → signature → ledger), a pending link code, and a
    signed link message not posted yet."""
    repo, number = f"fuzz-{uuid.uuid4().hex[:8]}/bounties", 7
    secret = stack.secrets.webhook_secret
    with httpx.Client(timeout=TIMEOUT_S) as client:
        payload = comment_payload("Funding: $USDC:50$", repo=repo, number=number, login="octocat")
        result = deliver(client, urls["github-app"], build_delivery(payload, secret))
        signing_url = result.signing_urls[0]
        token = parse_signing_url(signing_url).token
        signed = sign_intent(client, signing_url, Wallet.fresh())

        def in_ledger() -> dict[str, Any] | None:
            bounties = fetch_issue_bounties(client, urls["gateway"], repo, number).bounties
            return bounties[0] if bounties and bounties[0]["state"] == "signed" else None

        bounty = _wait_for("the signed bounty in the ledger", in_ledger)
        wallet = Wallet.fresh()
        link = request_link(client, urls["frontend"], wallet, "octocat")  # its code is known
        # a second message, signed but not posted: the first case to post it gets 201 (or 303)
        params = {"address": wallet.address, "login": "octocat"}
        unposted = client.get(f"{urls['frontend']}/api/link-message", params=params).json()

        def known() -> bool | None:
            # a 404 is "identity has not seen the code yet"; the link stays pending after
            status = get_link_status(client, urls["frontend"], link.code)
            return True if status.reason != "identity does not know the code yet" else None

        _wait_for("identity knowing the link code", known)
    return Running(
        urls=urls,
        secret=secret,
        repo=repo,
        number=number,
        intent_id=bounty["intent_id"],
        token=token,
        code=link.code,
        bodies={
            "/api/signatures": {
                "token": token,
                "address": signed.address,
                "signature": signed.signature,
            },
            "/api/links": {
                "message": unposted["message"],
                "signature": wallet.personal_sign(unposted["message"]),
            },
        },
    )


@pytest.fixture(scope="module")
def running(stack: Stack) -> Iterator[Running]:
    started: list[RunningService] = []
    try:
        for name in ("calc", "identity", "gateway", "github-app", "frontend"):
            started.append(launch(stack, name))
        yield _record_real_values(stack, {svc.name: svc.url for svc in started})
    finally:
        for svc in reversed(started):
            svc.stop()
        if CASES:
            print(_summary())


class Recorded:
    """What hostile requests must leave alone: github-app's deliveries and intents, and the
    events on frontend's subjects (read as the bus admin)."""

    FRONTEND_SUBJECTS = ("kdemo.bounty.signed.>", "kdemo.identity.link_requested.>")

    def __init__(self, stack: Stack) -> None:
        self._db = psycopg.connect(stack.database_url("github_app"), autocommit=True)
        self._loop = asyncio.new_event_loop()
        self._nc = self._loop.run_until_complete(nats.connect(**stack.connect_kwargs()))  # type: ignore[arg-type]

    def github_rows(self) -> tuple[int, int]:
        row = self._db.execute(
            "SELECT (SELECT count(*) FROM deliveries), (SELECT count(*) FROM intents)"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def frontend_events(self) -> int:
        async def count(subject: str) -> int:
            info = await self._nc.jetstream().stream_info("KDEMO", subjects_filter=subject)
            return sum((info.state.subjects or {}).values())

        return sum(self._loop.run_until_complete(count(s)) for s in self.FRONTEND_SUBJECTS)

    def settle(self) -> None:
        """Wait until what the accepted webhooks recorded left the outbox and was consumed,
        so the tests after these find the bus as quiet as they expect."""

        def outbox_empty() -> bool | None:
            row = self._db.execute("SELECT count(*) FROM outbox").fetchone()
            return True if row is not None and row[0] == 0 else None

        async def pending() -> int:
            js = self._nc.jetstream()
            infos = [await js.consumer_info("KDEMO", name) for name in ("gateway", "identity")]
            return sum(i.num_pending + i.num_ack_pending for i in infos)

        _wait_for("github-app's outbox to empty", outbox_empty)
        _wait_for(
            "the consumers to take everything",
            lambda: True if self._loop.run_until_complete(pending()) == 0 else None,
        )

    def close(self) -> None:
        self._loop.run_until_complete(self._nc.close())
        self._loop.close()
        self._db.close()


@pytest.fixture(scope="module")
def recorded(stack: Stack, running: Running) -> Iterator[Recorded]:
    watch = Recorded(stack)
    try:
        yield watch
        watch.settle()
    finally:
        watch.close()


def _summary() -> str:
    """Cases per operation and status; methods an operation lacks (405 probes) summed."""
    per_operation: dict[tuple[str, str], Counter[int]] = {}
    for (service, operation, status), n in CASES.items():
        per_operation.setdefault((service, operation), Counter())[status] += n
    lines = ["", "cases sent (status: count):"]
    probes: Counter[str] = Counter()
    for (service, operation), statuses in sorted(per_operation.items()):
        if set(statuses) == {405}:
            probes[service] += statuses.total()
        else:
            lines.append(
                f"  {service} {operation}: {statuses.total()} {dict(sorted(statuses.items()))}"
            )
    lines += [f"  {service} other methods: {n} x 405" for service, n in sorted(probes.items())]
    lines.append(f"  total: {CASES.total()}")
    return "\n".join(lines)


def _bucket(case: Case[Any], buckets: int) -> int:
    """A stable choice per generated case (the same when Hypothesis replays or shrinks it)."""
    body = None if isinstance(case.body, NotSet) else case.body
    parts = [case.path_parameters, case.query, case.headers, body]
    return zlib.crc32(json.dumps(parts, sort_keys=True, default=repr).encode()) % buckets


def _use_real_values(case: Case[Any], run: Running) -> bool:
    """For one case in three, the recorded bounty's, token's and code's values; True if so."""
    if _bucket(case, 3) != 0:
        return False
    owner, name = run.repo.split("/")
    path = {
        "intent_id": run.intent_id,
        "token": run.token,
        "code": run.code,
        "owner": owner,
        "repo": name,
        "number": str(run.number),
    }
    query = {"repo": run.repo, "t": run.token, "code": run.code}
    # new dicts, never edits: generated cases may share them, and a later case's choice of
    # bucket must not see this run's (random) real values
    case.path_parameters = _replaced(case.path_parameters, path)
    case.query = _replaced(case.query, query)
    case.body = _replaced(case.body, run.bodies.get(case.path, {}))
    return True


def _replaced(generated: Any, real: dict[str, str]) -> Any:
    if not isinstance(generated, dict):
        return generated
    return {key: real.get(key, value) for key, value in generated.items()}


def _checks(case: Case[Any], swapped: bool) -> list[Any]:
    if swapped or case.operation.label in RULES_NOT_ALL_SAID:
        return CHECKS
    return CHECKS + DATA_CHECKS


def _send(service: str, case: Case[Any], run: Running, **kwargs: Any) -> Any:
    response = case.call(base_url=run.urls[service], timeout=TIMEOUT_S, **kwargs)
    CASES[(service, f"{case.method} {case.path}", response.status_code)] += 1
    return response


@GATEWAY.parametrize()
def test_gateway_answers_as_documented(case: Case[Any], running: Running) -> None:
    swapped = _use_real_values(case, running)
    case.validate_response(_send("gateway", case, running), checks=_checks(case, swapped))


@FRONTEND.parametrize()
def test_frontend_answers_as_documented(
    case: Case[Any], running: Running, recorded: Recorded
) -> None:
    swapped = _use_real_values(case, running)
    before = recorded.frontend_events()
    response = _send("frontend", case, running)
    published = recorded.frontend_events() - before
    if response.status_code >= 400:
        assert published == 0, "a refused request published an event"
    elif case.operation.label == "POST /api/links":
        assert published == 1, "a link request is published once"  # and the count sees it
    case.validate_response(response, checks=_checks(case, swapped))


def _wire_body(case: Case[Any], base_url: str) -> bytes:
    """The exact bytes the case would send: what GitHub's signature covers."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    if "data" in kwargs:
        data = kwargs["data"]
        return data if isinstance(data, bytes) else str(data).encode()
    if "json" in kwargs:
        return json.dumps(kwargs["json"], allow_nan=False).encode()
    return b""


@GITHUB_APP.parametrize()
def test_github_app_answers_as_documented(
    case: Case[Any], running: Running, recorded: Recorded
) -> None:
    bucket = _bucket(case, 10)
    kwargs: dict[str, Any] = {}
    if bucket >= 2:  # one in five goes as generated: its signature header, if any, is random
        if bucket < 2 + len(COUNTED) and isinstance(case.body, dict):
            # a counted event and its action, so the generated payload reaches the parser
            event, action = sorted(COUNTED)[bucket - 2]
            headers = case.headers.copy()  # copies: generated cases may share their dicts
            headers["X-GitHub-Event"] = event
            case.headers, case.body = headers, {**case.body, "action": action}
        body = _wire_body(case, running.urls["github-app"])
        signature = signature_header(running.secret, body)
        kwargs = {"headers": {"X-Hub-Signature-256": signature}, "data": body}
    before = recorded.github_rows()
    response = _send("github-app", case, running, **kwargs)
    after = recorded.github_rows()

    if case.method == "POST":  # not the other methods schemathesis probes (405)
        # schemathesis drops the header from cases that test its absence: judge what was sent
        sent = response.request
        sent_body = sent.body if isinstance(sent.body, bytes) else str(sent.body or "").encode()
        valid = signature_header(running.secret, sent_body)
        signed = sent.headers.get("X-Hub-Signature-256") == valid
        if kwargs and "X-Hub-Signature-256" in sent.headers:
            assert signed, "the signature sent does not cover the bytes sent"
        assert (response.status_code == 401) != signed, response.text
    if response.status_code == 200 and not response.json()["duplicate"]:
        assert after[0] == before[0] + 1, "a new delivery is recorded once"
    else:
        assert after == before, f"answered {response.status_code}, yet rows were recorded"
    case.validate_response(response, checks=CHECKS)
