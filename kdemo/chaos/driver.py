"""The load of `kdemo chaos`: N flows (comment → sign → link) started at a steady rate.

Each flow does what a user and GitHub would: a webhook delivery that is redelivered, unchanged,
until github-app answers it (GitHub's "Redeliver" button); a signature posted again after a
failure; a link whose comment is redelivered the same way. Only answers count: the audit later
checks what the services stored against what they said they accepted.

One flow in ten also posts a forged signature first (valid for other typed data), which must
be refused and leave no trace.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import httpx

from kdemo.errors import KdemoError
from kdemo.flow.http import ServiceRefused, json_answer, new_client
from kdemo.flow.link import get_link_status, request_link
from kdemo.flow.payloads import comment_payload
from kdemo.flow.wallet import Wallet, fetch_typed_data, parse_signing_url
from kdemo.flow.webhook import WebhookResult, build_delivery, deliver

__all__ = ["STEP_TIMEOUT_S", "FlowRecord", "LoadPlan", "drive"]

T = TypeVar("T")

STEP_TIMEOUT_S: Final = 180.0
"""How long one step keeps trying: past a stopped PostgreSQL (ack wait + 2 s) and a restart."""
RETRY_PAUSE_S: Final = 0.5
FORGED_EVERY: Final = 10


class GaveUp(KdemoError):
    """A step did not get an answer it could use within STEP_TIMEOUT_S."""


@dataclass(frozen=True)
class LoadPlan:
    flows: int
    rate: float
    """Flows started per second."""
    repo: str
    """A repository of its own per run, so the audit finds exactly this run's rows."""
    run_id: str
    seed: int
    webhook_secret: str
    urls: dict[str, str]
    concurrency: int = 64


@dataclass
class FlowRecord:
    """What one flow was told, and when."""

    index: int
    number: int
    login: str
    wallet: str
    comment: str = "pending"
    """accepted (200 with one intent), refused (4xx), gave up."""
    intent_id: str = ""
    signed: str = "pending"
    signed_at: float = 0.0
    """Wall-clock time the signature was accepted (compared with the ledger's recorded_at)."""
    forge: bool = False
    """This flow posts a forged signature before its own."""
    forged_wallet: str = ""
    forged: str = ""
    """refused (as it must be) or accepted (a defect) when this flow tried a forgery."""
    link_code: str = ""
    link: str = "pending"
    stage_s: dict[str, float] = field(default_factory=dict)
    attempts: int = 0
    error: str = ""
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    """Set when the run is interrupted: the flow ends at its next retry or poll."""

    @property
    def complete(self) -> bool:
        return self.comment == "accepted" and self.signed == "accepted" and self.link == "linked"


def persist(step: Callable[[], T], record: FlowRecord) -> T:
    """Run `step` until a usable answer: transport failures and 5xx/429 are retried, any other
    error is final. Raises GaveUp after STEP_TIMEOUT_S."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while True:
        record.attempts += 1
        _check_stop(record)
        try:
            return step()
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        except ServiceRefused as exc:
            if not exc.transient:
                raise
            last = exc.message
        if time.monotonic() > deadline:
            raise GaveUp(f"no usable answer within {STEP_TIMEOUT_S:.0f} s; last: {last}")
        time.sleep(RETRY_PAUSE_S)


def _check_stop(record: FlowRecord) -> None:
    if record.stop.is_set():
        raise KdemoError("the run was interrupted")


def _timed(record: FlowRecord, stage: str, step: Callable[[], T]) -> T:
    begun = time.monotonic()
    value = persist(step, record)
    record.stage_s[stage] = time.monotonic() - begun
    return value


def _delivery(plan: LoadPlan, record: FlowRecord, body: str) -> Callable[[httpx.Client], Any]:
    """One comment, built and signed once: every retry redelivers the very same bytes, as
    GitHub's "Redeliver" does (a new comment each time would be a new intent)."""
    payload = comment_payload(body, repo=plan.repo, number=record.number, login=record.login)
    delivery = build_delivery(payload, plan.webhook_secret)
    return lambda client: deliver(client, plan.urls["github-app"], delivery)


def _post_signature(
    client: httpx.Client, base: str, token: str, address: str, signature: str
) -> None:
    response = client.post(
        f"{base}/api/signatures",
        json={"token": token, "address": address, "signature": signature},
        headers={"Accept": "application/json"},
    )
    json_answer(response, "frontend POST /api/signatures")


def run_flow(client: httpx.Client, plan: LoadPlan, record: FlowRecord, wallet: Wallet) -> None:
    """One flow, start to end; the outcome of each step lands in `record`."""
    body = f"Chaos flow {record.index}: $USDC:{record.number}$"
    comment = _delivery(plan, record, body)
    answer: WebhookResult = _timed(record, "comment", lambda: comment(client))
    if answer.status != 200 or len(answer.intents) != 1:
        record.comment = "refused"
        record.error = answer.nothing_matched_reason()
        return
    record.comment = "accepted"
    record.intent_id = str(answer.intents[0]["intent_id"])
    signing = parse_signing_url(str(answer.intents[0]["signing_url"]))

    if record.forge:
        forger = Wallet.from_key("0x" + secrets.token_hex(32))
        record.forged_wallet = forger.address
        typed = persist(lambda: fetch_typed_data(client, signing), record)
        other = {**typed, "message": {**typed["message"], "amount": str(record.number + 1)}}
        forged = forger.sign_typed_data(other)
        try:
            post = signing.base, signing.token, forger.address, forged
            persist(lambda: _post_signature(client, *post), record)
            record.forged = "accepted"
        except ServiceRefused:
            record.forged = "refused"

    def sign() -> None:
        typed = fetch_typed_data(client, signing)
        _post_signature(
            client, signing.base, signing.token, wallet.address, wallet.sign_typed_data(typed)
        )

    _timed(record, "sign", sign)
    record.signed = "accepted"
    record.signed_at = time.time()

    def link() -> str:
        request = request_link(client, plan.urls["frontend"], wallet, record.login)
        record.link_code = request.code
        comment = _delivery(plan, record, f"Linking my wallet: $link:{request.code}$")
        delivered: WebhookResult = persist(lambda: comment(client), record)
        if request.code not in delivered.link_codes:
            raise KdemoError(f"github-app did not take link code {request.code}")
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while time.monotonic() < deadline:
            _check_stop(record)
            status = get_link_status(client, plan.urls["frontend"], request.code)
            if status.state != "pending":
                return status.state
            time.sleep(RETRY_PAUSE_S)
        raise GaveUp(f"link {request.code} still pending after {STEP_TIMEOUT_S:.0f} s")

    record.link = _timed(record, "link", link)


def drive(
    plan: LoadPlan,
    *,
    on_flow: Callable[[FlowRecord], None] = lambda _: None,
    stop: threading.Event | None = None,
) -> list[FlowRecord]:
    """Start plan.flows flows at plan.rate per second; returns when every one has ended."""
    rng = random.Random(plan.seed)  # noqa: S311 - reproducible choices, not secrets
    records = [
        FlowRecord(
            index=i,
            number=i + 1,
            login=f"chaos-{plan.run_id}-{i}",
            wallet="",
            forge=rng.randrange(FORGED_EVERY) == 0,
        )
        for i in range(plan.flows)
    ]
    stop = stop or threading.Event()
    for record in records:
        record.stop = stop
    started = time.monotonic()

    def one(record: FlowRecord) -> None:
        wallet = Wallet.from_key("0x" + secrets.token_hex(32))
        record.wallet = wallet.address
        try:
            with new_client(timeout=10.0) as client:
                run_flow(client, plan, record, wallet)
        except KdemoError as exc:
            record.error = exc.message
            for attr in ("comment", "signed", "link"):
                if getattr(record, attr) == "pending":
                    setattr(record, attr, "gave up" if isinstance(exc, GaveUp) else "failed")
                    break
        on_flow(record)

    with ThreadPoolExecutor(max_workers=plan.concurrency, thread_name_prefix="kdemo-flow") as pool:
        try:
            for record in records:
                due = started + record.index / plan.rate
                if stop.wait(max(0.0, due - time.monotonic())):
                    break
                pool.submit(one, record)
        except BaseException:  # Ctrl-C: the flows under way end at their next retry or poll
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return records


def summary(records: list[FlowRecord]) -> dict[str, Any]:
    """Counts of each outcome, for the report."""
    out: dict[str, Any] = {}
    for attr in ("comment", "signed", "link"):
        counts: dict[str, int] = {}
        for record in records:
            value = getattr(record, attr)
            counts[value] = counts.get(value, 0) + 1
        out[attr] = counts
    return out
