"""Faults: any node killed with SIGKILL mid-flow comes back, and the ledger stays exact.

Once per bus (one stack each for the module): NATS, and a real Kafka broker (skipped, with
the reason, without java or mvn).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from kdemo.errors import KdemoError
from kdemo.flow.bounties import fetch_bounties
from kdemo.flow.payloads import comment_payload
from kdemo.flow.wallet import Wallet, sign_intent
from kdemo.flow.webhook import build_delivery, deliver
from kdemo.runtime import get_runtime
from kdemo.runtime.base import Runtime
from tests.e2e.buses import BUSES

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]

T = TypeVar("T")
BUS = "bus"
"""Stands for the stack's bus node in VICTIMS: `nats` or `kafka`."""
VICTIMS = ["gateway", BUS, "postgres", "github-app", "frontend", "identity", "calc"]
RECOVERY_S = {"nats": 60.0, "kafka": 180.0}
"""How long a killed node may take to serve again: a Kafka broker is a JVM that starts in
15-25 s here (more on a loaded machine), and its clients reconnect after it."""


def victims(bus: str) -> list[str]:
    return [bus if victim == BUS else victim for victim in VICTIMS]


def retry(action: Callable[[], T], *, within_s: float = 60.0) -> T:
    """Run `action` until it succeeds: a killed node is back within seconds."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return action()
        except (KdemoError, httpx.HTTPError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def wait_all_ready(runtime: Runtime, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if all(node.ready for node in runtime.status()):
            return
        time.sleep(0.25)
    raise AssertionError(f"not all ready: {[n.to_json() for n in runtime.status()]}")


@pytest.fixture(scope="module", params=BUSES)
def runtime(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runtime]:
    state_dir: Path = tmp_path_factory.mktemp(f"faults-state-{request.param}")
    saved = os.environ.get("KDEMO_STATE_DIR")
    os.environ["KDEMO_STATE_DIR"] = str(state_dir)
    rt = get_runtime(state_dir, bus=request.param)
    rt.up(lambda _: None)
    try:
        yield rt
    finally:
        rt.down(purge=True)
        if saved is None:
            os.environ.pop("KDEMO_STATE_DIR", None)
        else:
            os.environ["KDEMO_STATE_DIR"] = saved


class Flows:
    """Comments and signatures of one repository, each retried until the stack takes it.

    A comment is one GitHub delivery built once and delivered again on failure (the stored
    answer comes back), so a retry never makes a second intent."""

    def __init__(self, runtime: Runtime, client: httpx.Client, wallet: Wallet) -> None:
        self.urls = runtime.public_urls()
        self.secret = runtime.webhook_secret()
        self.recovery_s = RECOVERY_S[runtime.bus()]
        self.client = client
        self.wallet = wallet
        self.repo = f"faults/bus-{uuid.uuid4().hex[:8]}"
        self.intents: list[str] = []
        self.signed = threading.Semaphore(0)

    def comment(self, number: int) -> str:
        body = f"Funding $USDC:{number}$"
        payload = comment_payload(body, repo=self.repo, number=number, login="faulty")
        delivery = build_delivery(payload, self.secret)
        answer = retry(
            lambda: deliver(self.client, self.urls["github-app"], delivery),
            within_s=self.recovery_s,
        )
        [intent] = answer.intents
        self.intents.append(str(intent["intent_id"]))
        return str(intent["signing_url"])

    def sign(self, url: str) -> None:
        retry(lambda: sign_intent(self.client, url, self.wallet), within_s=self.recovery_s)
        self.signed.release()


def test_killed_nodes_come_back_and_every_signed_bounty_is_recorded_once(runtime: Runtime) -> None:
    """Kill each node between a comment and its signature: all bounties end signed, once each."""
    bus = runtime.bus()
    wallet = Wallet.from_key("0x" + secrets.token_hex(32))
    restarts_before = {n.name: n.restarts for n in runtime.status()}

    with httpx.Client(timeout=5) as client:
        flows = Flows(runtime, client, wallet)
        for number, victim in enumerate(victims(bus), start=1):
            url = flows.comment(number)
            runtime.kill(victim)  # mid-flow: the intent is recorded, not yet signed
            flows.sign(url)

        wait_all_ready(runtime, flows.recovery_s)

        def all_signed() -> list[dict[str, object]]:
            bounties = fetch_bounties(client, flows.urls["gateway"], repo=flows.repo).bounties
            if sorted(b["intent_id"] for b in bounties) != sorted(flows.intents) or any(
                b["state"] != "signed" for b in bounties
            ):
                states = {b["intent_id"]: b["state"] for b in bounties}
                raise KdemoError(f"ledger not complete yet: {states} of {flows.intents}")
            return bounties

        bounties = retry(all_signed, within_s=flows.recovery_s)

    assert len(bounties) == len(VICTIMS)
    for bounty in bounties:
        assert bounty["funder"]["address"].lower() == wallet.address.lower()  # type: ignore[index]
        assert bounty["offers"] == []  # one signature per wallet, recorded once
    restarts_after = {n.name: n.restarts for n in runtime.status()}
    for victim in victims(bus):
        assert restarts_after[victim] > restarts_before[victim], victim


# -- the bus killed with flows in flight ------------------------------------------------------

IN_FLIGHT = 6
"""Flows running when the bus dies: half commented and being signed, half commented while it
is away."""
EVENTS = ("bounty.requested", "bounty.signed", "bounty.recorded")
DLQ_PREFIX = "kdemo.dlq."
"""Dead letters' subjects (NATS) and topics (Kafka) both start so."""


def events_on_the_bus(runtime: Runtime) -> list[dict[str, Any]]:
    """Every event the bus holds now, dead letters aside, read from its beginning by the tap
    user (NATS: the stream; Kafka: every partition of every event topic)."""

    async def read() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        async for tapped in runtime.bus_tap(deliver_all=True):
            if tapped.event is not None and not tapped.subject.startswith(DLQ_PREFIX):
                seen.append(tapped.event)
            if tapped.pending == 0:
                return seen
        return seen

    return asyncio.run(asyncio.wait_for(read(), timeout=60))


def copies_per_event(runtime: Runtime, intents: list[str]) -> Counter[tuple[str, str, str]]:
    """(event name, intent, event id) -> how many copies the bus holds, for `intents`."""
    wanted = set(intents)
    copies: Counter[tuple[str, str, str]] = Counter()
    for event in events_on_the_bus(runtime):
        name = str(event.get("type", "")).removeprefix("dev.kdemo.").removesuffix(".v1")
        if name in EVENTS and event.get("subject") in wanted:
            copies[(name, str(event["subject"]), str(event["id"]))] += 1
    return copies


def outboxes_empty(runtime: Runtime) -> None:
    for database in ("github_app", "ledger"):
        [(waiting,)] = runtime.query(database, "SELECT count(*) FROM outbox")
        if waiting:
            raise KdemoError(f"{waiting} events still in {database}'s outbox")


def test_bus_killed_with_flows_in_flight_loses_nothing_and_doubles_nothing(
    runtime: Runtime,
) -> None:
    """SIGKILL the bus while flows are in flight: comments recorded with their
    `bounty.requested` in github-app's outbox or on the bus, signatures being posted, their
    `bounty.recorded` in gateway's outbox; more comments arrive while it is away.

    0 lost: every intent a comment was answered with ends signed in the ledger, and its
    `bounty.requested`, `bounty.signed` and `bounty.recorded` are on the bus (read back by
    the tap from the beginning).
    0 doubled: the ledger is exact: github-app recorded one intent per comment, gateway one
    signature per intent (no offers) and processed each event id once; nothing was
    dead-lettered; and the bus carries no second, different event for an
    intent (every copy has the one event id). A copy of the same event may be on a Kafka
    topic twice: an outbox row published just before the broker died, and not yet deleted,
    is published again, and Kafka keeps no duplicate window (NATS drops it by
    `Nats-Msg-Id`); gateway's `processed_events` absorbs it, so the ledger stays exact.
    """
    bus = runtime.bus()
    wallet = Wallet.from_key("0x" + secrets.token_hex(32))
    restarts_before = {n.name: n.restarts for n in runtime.status()}
    half = IN_FLIGHT // 2
    with httpx.Client(timeout=5) as client, ThreadPoolExecutor(IN_FLIGHT) as pool:
        flows = Flows(runtime, client, wallet)
        urls = [flows.comment(number) for number in range(1, half + 1)]
        signing = [pool.submit(flows.sign, url) for url in urls]
        assert flows.signed.acquire(timeout=flows.recovery_s)  # the first one is through
        runtime.kill(bus)  # the others are being posted, consumed, relayed
        urls = [flows.comment(number) for number in range(half + 1, IN_FLIGHT + 1)]
        signing += [pool.submit(flows.sign, url) for url in urls]
        for done in signing:
            done.result()
        wait_all_ready(runtime, flows.recovery_s)
        intents = flows.intents

        def all_signed() -> list[dict[str, Any]]:
            bounties = fetch_bounties(client, flows.urls["gateway"], repo=flows.repo).bounties
            if len(bounties) < IN_FLIGHT or any(b["state"] != "signed" for b in bounties):
                states = {b["intent_id"]: b["state"] for b in bounties}
                raise KdemoError(f"ledger not complete yet: {states}")
            return bounties

        bounties = retry(all_signed, within_s=flows.recovery_s)
        retry(lambda: outboxes_empty(runtime), within_s=flows.recovery_s)

    assert {n.name: n.restarts for n in runtime.status()}[bus] > restarts_before[bus]
    assert sorted(b["intent_id"] for b in bounties) == sorted(intents)
    for bounty in bounties:
        assert bounty["funder"]["address"].lower() == wallet.address.lower()
        assert bounty["offers"] == []

    address = wallet.address.lower()
    assert intents_of(runtime, flows.repo) == sorted(intents)  # one per comment
    assert signatures_per_intent(runtime, intents) == {intent: 1 for intent in intents}
    ids = {f"bounty.requested:{intent}" for intent in intents} | {
        f"bounty.signed:{intent}:{address}" for intent in intents
    }
    processed = runtime.query(
        "ledger", "SELECT event_id FROM processed_events WHERE event_id = ANY(%s)", [sorted(ids)]
    )
    assert sorted(row[0] for row in processed) == sorted(ids)
    dead = [d.event_id for d in runtime.dlq_list() if any(i in d.event_id for i in intents)]
    assert dead == []

    copies = copies_per_event(runtime, intents)
    expected = {
        (name, intent, f"{name}:{intent}" + (f":{address}" if name != "bounty.requested" else ""))
        for name in EVENTS
        for intent in intents
    }
    assert set(copies) == expected  # every event there, and no second event for an intent
    if bus == "nats":  # the stream's duplicate window drops a republished copy
        assert set(copies.values()) == {1}, copies


def signatures_per_intent(runtime: Runtime, intents: list[str]) -> dict[str, int]:
    """intent -> signature rows in gateway's ledger (one per wallet that signed it)."""
    rows = runtime.query(
        "ledger",
        "SELECT intent_id, count(*) FROM signatures WHERE intent_id = ANY(%s) GROUP BY intent_id",
        [intents],
    )
    return {str(intent): int(count) for intent, count in rows}


def intents_of(runtime: Runtime, repo: str) -> list[str]:
    """The intents github-app recorded for `repo`'s comments."""
    rows = runtime.query(
        "github_app", "SELECT intent_id FROM intents WHERE repository = %s", [repo]
    )
    return sorted(str(row[0]) for row in rows)
