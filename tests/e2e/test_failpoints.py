"""Crashes and errors at exact points (`KDEMO_FAILPOINTS`), with real processes, bus and database.

Each crash test starts the service with one failpoint armed, drives the flow until
the process dies at that point (status 137, its line in the log), restarts it
unarmed, and counts what is left: exactly one row and exactly one event — nothing
lost, nothing doubled. Nothing is decided by sleeping: every count is taken after
the durable consumer has taken and acked everything (num_pending and
num_ack_pending at 0) or after the outbox row is gone (deleted only on PubAck).

Services start one at a time on the shared session stack, so a test first lets
earlier tests' events through with the service unarmed (`drain_*`): the failpoint
then fires on this test's own message.

The relay crash and the consumer crash run on Kafka too, against one real broker for the
module (tests/services/test_kafka_bus.py's, provisioned by kafkaadmin; skipped, with the
reason, without java or mvn). There the counts come from the topics (records per key, read
to the end by the admin) and "taken" means the group's committed offsets reached the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import nats
import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo, SequenceInfo

from kdemo import topology
from kdemo.flow.payloads import comment_payload
from kdemo.runtime.busadmin import consumer_config, dlq_list, dlq_replay
from services.common import eip712
from services.common.events import Event, encode
from services.common.failpoints import CRASH_STATUS
from services.common.kafka_client import (
    EVENT_ID_HEADER,
    Headers,
    client_config,
    headers_of,
    partitions_of,
    read_to_end,
)
from services.common.siwe import new_link_code
from tests.conftest import RunningService, Stack
from tests.e2e.buses import BUSES, needs_kafka
from tests.services.test_gateway import FUNDER_KEY, new_intent, requested, signed, wallet
from tests.services.test_github_app import deliver, unique_repo
from tests.services.test_identity import (
    FRONTEND_AT_DOMAIN,
    link_confirmed,
    link_requested,
    new_github_id,
    new_login,
    new_wallet,
)
from tests.services.test_kafka_bus import PASSWORDS as KAFKA_PASSWORDS
from tests.services.test_kafka_bus import bootstrap  # noqa: F401 (the module's broker)

pytestmark = [pytest.mark.stack, pytest.mark.timeout(180)]

STREAM = topology.STREAM_NAME
WAIT_S = 20.0
KAFKA_WAIT_S = 60.0
"""A group's first commit on a fresh broker creates `__consumer_offsets` (seconds here), and a
crashed member holds its partitions until its session times out (10 s)."""
COORDINATOR_NOT_READY = (
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
)
"""What a broker answers for a group's offsets until the group's coordinator is up."""
QUICK_ACK_WAIT_S = 1.0
"""A crashed consumer's message comes back after ack_wait (30 s); the crash tests shorten it."""

Start = Callable[..., RunningService]


# -- what the tests count with ------------------------------------------------------------


class Bus:
    """The runtime's admin view of the stream and the durables."""

    name = "nats"

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    def env(self, service: str) -> dict[str, str]:
        return {}  # the session stack's own

    async def publish(self, event: Event) -> int:
        ack = await self.js.publish(
            event.nats_subject, encode(event), stream=STREAM, headers={"Nats-Msg-Id": event.id}
        )
        return int(ack.seq)

    async def count(self, subject: str) -> int:
        """Messages the stream holds on exactly `subject`."""
        info = await self.js.stream_info(STREAM, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))

    async def consumer(self, durable: str) -> ConsumerInfo:
        info: ConsumerInfo = await self.js.consumer_info(STREAM, durable)
        return info

    async def settle(self, durable: str) -> ConsumerInfo:
        """Once the durable has taken and acked everything (acked = its transaction committed)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            info = await self.consumer(durable)
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return info
            assert time.monotonic() < deadline, f"{durable} did not take its events: {info}"
            await asyncio.sleep(0.05)

    @asynccontextmanager
    async def quick_redelivery(self, durable: str) -> AsyncIterator[None]:
        """Shorten the durable's ack_wait for the test (restored after it)."""
        [declared] = [c for c in topology.CONSUMERS if c.durable == durable]
        config = consumer_config(declared)
        await self.js.add_consumer(STREAM, dataclasses.replace(config, ack_wait=QUICK_ACK_WAIT_S))
        try:
            yield
        finally:
            await self.js.add_consumer(STREAM, config)

    async def copies(self, event: str, key: str) -> int:
        """Messages of `event` keyed `key` (an intent or a link code) on the stream."""
        return await self.count(f"kdemo.{event}.{key}")


class Topics:
    """The same counts on Kafka, as the runtime's admin (the broker's super user)."""

    name = "kafka"

    def __init__(self, broker: str) -> None:
        self.bootstrap = broker
        self.config = client_config(
            broker, "admin", KAFKA_PASSWORDS["admin"], logger=logging.getLogger("kafka")
        )

    def env(self, service: str) -> dict[str, str]:
        """What starts `service` on this broker instead of the session's nats-server."""
        return {
            "KDEMO_BUS": "kafka",
            "KDEMO_KAFKA_BOOTSTRAP": self.bootstrap,
            "KDEMO_KAFKA_USER": service,
            "KDEMO_KAFKA_PASSWORD": KAFKA_PASSWORDS[service],
        }

    async def publish(self, event: Event) -> None:
        producer = Producer(self.config | {"enable.idempotence": True, "acks": "all"})
        headers: Headers = [(EVENT_ID_HEADER, event.id.encode())]
        producer.produce(
            topology.topic(event.name), encode(event), event.key.encode(), headers=headers
        )
        assert await asyncio.to_thread(producer.flush, WAIT_S) == 0

    def _ids(self, event: str, key: str) -> list[str]:
        consumer = Consumer(
            self.config | {"group.id": "kdemo-test-reader", "enable.auto.commit": False}
        )
        try:
            records = read_to_end(consumer, [topology.topic(event)], WAIT_S)
        finally:
            consumer.close()
        return [
            dict(headers_of(m))[EVENT_ID_HEADER].decode()
            for m in records
            if m.key() == key.encode()
        ]

    async def ids(self, event: str, key: str) -> list[str]:
        """The event id of each record keyed `key` on `event`'s topic, from its beginning."""
        return await asyncio.to_thread(self._ids, event, key)

    async def copies(self, event: str, key: str) -> int:
        return len(await self.ids(event, key))

    def _lag(self, group: str) -> int:
        # A consumer in the group's name that never joins it: it only reads the offsets.
        consumer = Consumer(self.config | {"group.id": group, "enable.auto.commit": False})
        try:
            topics = [topology.topic(e) for e in topology.consumed_events(group)]
            where = [TopicPartition(*w) for w in partitions_of(consumer, topics, WAIT_S)]
            lag = 0
            for tp in consumer.committed(where, timeout=WAIT_S):
                low, high = consumer.get_watermark_offsets(tp, timeout=WAIT_S)
                lag += high - (tp.offset if tp.offset >= 0 else low)
            return lag
        finally:
            consumer.close()

    async def lag(self, group: str) -> int:
        """Records on the group's topics past its committed offsets (not yet taken)."""
        deadline = time.monotonic() + KAFKA_WAIT_S
        while True:
            try:
                return await asyncio.to_thread(self._lag, group)
            except KafkaException as exc:
                # A fresh broker answers "not coordinator" while it makes __consumer_offsets.
                error = exc.args[0]
                if error.code() not in COORDINATOR_NOT_READY or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.5)

    async def settle(self, group: str) -> None:
        """Once the group committed every record (a commit follows the handler's transaction)."""
        deadline = time.monotonic() + KAFKA_WAIT_S
        while (behind := await self.lag(group)) > 0:
            assert time.monotonic() < deadline, f"group {group} left {behind} records"
            await asyncio.sleep(0.1)


@pytest.fixture
async def bus(stack: Stack) -> AsyncIterator[Bus]:
    nc = await nats.connect(**stack.connect_kwargs("admin"))  # type: ignore[arg-type]
    try:
        yield Bus(nc.jetstream())
    finally:
        await nc.close()


@pytest.fixture
def topics(request: pytest.FixtureRequest) -> Topics:
    return Topics(request.getfixturevalue("bootstrap"))


@pytest.fixture(params=BUSES)
def either(request: pytest.FixtureRequest) -> Bus | Topics:
    """The test's bus, once NATS (the session's nats-server), once Kafka (the module's broker)."""
    chosen: Bus | Topics = request.getfixturevalue("bus" if request.param == "nats" else "topics")
    return chosen


async def count_rows(stack: Stack, database: str, sql: str, *params: Any) -> int:
    async with await psycopg.AsyncConnection.connect(stack.database_url(database)) as conn:
        cur = await conn.execute(sql, params)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def outbox_gone(stack: Stack, database: str, event_id: str) -> None:
    """Wait until the relay deleted `event_id` from the outbox: JetStream acked its publish."""
    deadline = time.monotonic() + WAIT_S
    while await count_rows(stack, database, "SELECT count(*) FROM outbox WHERE id = %s", event_id):
        assert time.monotonic() < deadline, f"{event_id} still in {database}'s outbox"
        await asyncio.sleep(0.05)


def delivered(info: ConsumerInfo) -> SequenceInfo:
    """The durable's last delivery: consumer sequence (one per delivery) and its time."""
    assert info.delivered is not None
    return info.delivered


def crashed_at(svc: RunningService, name: str) -> None:
    """The process died at failpoint `name` (and not of anything else)."""
    try:
        svc.proc.wait(timeout=WAIT_S)
    except TimeoutError:
        pytest.fail(f"{svc.name} did not crash at {name}:\n{svc.log()[-3000:]}")
    assert svc.proc.returncode == CRASH_STATUS, svc.log()[-3000:]
    assert f"failpoint {name}: crash" in svc.log()


def log_lines(svc: RunningService, msg: str, **fields: Any) -> list[dict[str, Any]]:
    """The JSON log lines of `svc` with message `msg` and the given field values."""
    found = []
    for line in svc.log().splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("msg") == msg and all(record.get(k) == v for k, v in fields.items()):
            found.append(record)
    return found


def comment_intent(payload: dict[str, Any]) -> str:
    """The intent id of the one bounty in an `issue_comment` payload."""
    repository, number = payload["repository"]["full_name"], payload["issue"]["number"]
    return eip712.intent_id(repository, number, "issue_comment", payload["comment"]["id"], 0)


def seconds(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()


# -- letting earlier tests' events through, unarmed -----------------------------------------


async def drain_consumer(
    bus: Bus, start_service: Start, durable: str, overrides: dict[str, str] | None = None
) -> None:
    info = await bus.consumer(durable)
    if info.num_pending or info.num_ack_pending:
        svc = start_service(durable, overrides)
        await bus.settle(durable)
        svc.stop()


async def drain_github_app_outbox(
    stack: Stack, start_service: Start, overrides: dict[str, str] | None = None
) -> None:
    try:
        waiting = await count_rows(stack, "github_app", "SELECT count(*) FROM outbox")
    except psycopg.errors.UndefinedTable:
        return  # github-app never ran on this stack: nothing is waiting
    if waiting:
        svc = start_service("github-app", overrides)
        deadline = time.monotonic() + WAIT_S
        while await count_rows(stack, "github_app", "SELECT count(*) FROM outbox"):
            assert time.monotonic() < deadline, "github-app's outbox did not drain"
            await asyncio.sleep(0.05)
        svc.stop()


# -- the outbox relay -----------------------------------------------------------------------


@pytest.mark.parametrize("point", ["outbox.after_commit", "outbox.after_publish"])
async def test_relay_crash_publishes_the_committed_event_and_it_is_taken_once(
    stack: Stack, either: Bus | Topics, start_service: Start, point: str
) -> None:
    """Crash before the publish (row committed) or after it (row not yet deleted): after a
    restart the intent's `bounty.requested` is on the bus and gateway records it once.

    On the bus it is once, but twice on Kafka after a crash after the publish: Kafka keeps no
    duplicate window (NATS drops the second copy by `Nats-Msg-Id`), and gateway's
    `processed_events` absorbs the copy."""
    bus = either
    await drain_github_app_outbox(stack, start_service, bus.env("github-app"))
    app = start_service("github-app", {"KDEMO_FAILPOINTS": point} | bus.env("github-app"))
    payload = comment_payload("$USDC:41$", repo=unique_repo(), number=3, login="lena")
    delivery = str(uuid.uuid4())
    try:
        answer = deliver(app.url, stack.secrets.webhook_secret, payload, delivery_id=delivery)
    except httpx.TransportError:
        answer = None  # the relay may crash the process before the answer is written
    crashed_at(app, point)

    intent_id = comment_intent(payload)
    event_id = f"bounty.requested:{intent_id}"
    in_outbox = "SELECT count(*) FROM outbox WHERE id = %s"
    assert await count_rows(stack, "github_app", in_outbox, event_id) == 1
    published = 1 if point == "outbox.after_publish" else 0
    assert await bus.copies("bounty.requested", intent_id) == published

    app = start_service("github-app", bus.env("github-app"))
    await outbox_gone(stack, "github_app", event_id)
    copies = 1 + published if bus.name == "kafka" else 1
    assert await bus.copies("bounty.requested", intent_id) == copies
    again = deliver(app.url, stack.secrets.webhook_secret, payload, delivery_id=delivery)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert [i["intent_id"] for i in again.json()["intents"]] == [intent_id]
    if answer is not None:
        assert answer.json()["intents"] == again.json()["intents"]
    intents = "SELECT count(*) FROM intents WHERE intent_id = %s"
    assert await count_rows(stack, "github_app", intents, intent_id) == 1
    assert await bus.copies("bounty.requested", intent_id) == copies

    gateway = start_service("gateway", bus.env("gateway"))
    await bus.settle("gateway")  # every copy taken
    assert len(log_lines(gateway, "bounty requested", intent_id=intent_id)) == 1
    processed = "SELECT count(*) FROM processed_events WHERE event_id = %s"
    assert await count_rows(stack, "ledger", processed, event_id) == 1
    bounties = "SELECT count(*) FROM bounties WHERE intent_id = %s AND requested"
    assert await count_rows(stack, "ledger", bounties, intent_id) == 1


# -- github-app's answer --------------------------------------------------------------------


async def test_webhook_crash_before_the_answer_keeps_one_intent_for_the_redelivery(
    stack: Stack, bus: Bus, start_service: Start
) -> None:
    """The delivery is committed but GitHub gets no answer; redelivered (as from GitHub's UI)
    after the restart, it gets the stored answer: one intent, one `bounty.requested`."""
    app = start_service("github-app", {"KDEMO_FAILPOINTS": "webhook.after_record"})
    payload = comment_payload("$DAI:12$", repo=unique_repo(), number=5, login="lena")
    delivery = str(uuid.uuid4())
    with pytest.raises(httpx.TransportError):
        deliver(app.url, stack.secrets.webhook_secret, payload, delivery_id=delivery)
    crashed_at(app, "webhook.after_record")
    intent_id = comment_intent(payload)
    deliveries = "SELECT count(*) FROM deliveries WHERE delivery_id = %s"
    intents = "SELECT count(*) FROM intents WHERE intent_id = %s"
    assert await count_rows(stack, "github_app", deliveries, delivery) == 1
    assert await count_rows(stack, "github_app", intents, intent_id) == 1

    app = start_service("github-app")
    again = deliver(app.url, stack.secrets.webhook_secret, payload, delivery_id=delivery)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    [intent] = again.json()["intents"]
    assert (intent["intent_id"], intent["amount"]) == (intent_id, "12")
    await outbox_gone(stack, "github_app", f"bounty.requested:{intent_id}")
    assert await bus.count(f"kdemo.bounty.requested.{intent_id}") == 1
    assert await count_rows(stack, "github_app", deliveries, delivery) == 1
    assert await count_rows(stack, "github_app", intents, intent_id) == 1


# -- a consumer between its commit and its ack ----------------------------------------------


async def test_consumer_crash_before_the_ack_records_the_signature_once(
    stack: Stack, bus: Bus, start_service: Start
) -> None:
    """gateway commits the signature (and its `bounty.recorded` in the outbox) and dies before
    the ack; the redelivery after the restart finds it processed: one row, one event."""
    await drain_consumer(bus, start_service, "gateway")
    intent = new_intent()
    event = signed(intent, stack.secrets.eip712_salt)
    address = wallet(FUNDER_KEY)
    signatures = "SELECT count(*) FROM signatures WHERE intent_id = %s AND address = %s"
    async with bus.quick_redelivery("gateway"):
        gateway = start_service("gateway", {"KDEMO_FAILPOINTS": "consumer.after_write"})
        before = delivered(await bus.consumer("gateway")).consumer_seq
        seq = await bus.publish(event)
        crashed_at(gateway, "consumer.after_write")
        assert await count_rows(stack, "ledger", signatures, intent["intent_id"], address) == 1
        info = await bus.consumer("gateway")
        assert info.num_ack_pending == 1  # committed, never acked
        assert info.ack_floor is not None
        assert info.ack_floor.stream_seq < seq

        start_service("gateway")
        after = delivered(await bus.settle("gateway")).consumer_seq
    assert after - before >= 2  # delivered again after the crash, and acked this time
    assert await count_rows(stack, "ledger", signatures, intent["intent_id"], address) == 1
    processed = "SELECT count(*) FROM processed_events WHERE event_id = %s"
    assert await count_rows(stack, "ledger", processed, event.id) == 1
    recorded = f"bounty.recorded:{intent['intent_id']}:{address}"
    await outbox_gone(stack, "ledger", recorded)
    assert await bus.count(f"kdemo.bounty.recorded.{intent['intent_id']}.{address}") == 1


@needs_kafka
async def test_consumer_crash_before_the_offset_commit_records_the_signature_once_on_kafka(
    stack: Stack, topics: Topics, start_service: Start
) -> None:
    """gateway commits the signature (and its `bounty.recorded` in the outbox) and dies before
    committing the record's offset; after the restart the group reads it again from the
    committed offset, and gateway finds it processed: one row, one processed event, and
    every `bounty.recorded` on the topic is the one event."""
    on_kafka = topics.env("gateway")
    if await topics.lag("gateway"):
        drained = start_service("gateway", on_kafka)
        await topics.settle("gateway")
        drained.stop()
    intent = new_intent()
    event = signed(intent, stack.secrets.eip712_salt)
    address = wallet(FUNDER_KEY)
    signatures = "SELECT count(*) FROM signatures WHERE intent_id = %s AND address = %s"
    gateway = start_service("gateway", {"KDEMO_FAILPOINTS": "consumer.after_write"} | on_kafka)
    await topics.publish(event)
    crashed_at(gateway, "consumer.after_write")
    assert await count_rows(stack, "ledger", signatures, intent["intent_id"], address) == 1
    assert await topics.lag("gateway") == 1  # committed in the ledger, not on the group

    start_service("gateway", on_kafka)
    await topics.settle("gateway")  # read again and committed this time
    assert await count_rows(stack, "ledger", signatures, intent["intent_id"], address) == 1
    processed = "SELECT count(*) FROM processed_events WHERE event_id = %s"
    assert await count_rows(stack, "ledger", processed, event.id) == 1
    recorded = f"bounty.recorded:{intent['intent_id']}:{address}"
    await outbox_gone(stack, "ledger", recorded)
    # At least once: the relay may have published it in the instant before the crash.
    copies = await topics.ids("bounty.recorded", intent["intent_id"])
    assert set(copies) == {recorded}, copies


# -- identity between its decision and its event --------------------------------------------


async def test_pairing_crash_before_the_event_commits_neither_and_links_once(
    stack: Stack, bus: Bus, start_service: Start
) -> None:
    """identity dies with the link written but `identity.linked` not yet enqueued: the
    transaction rolls back whole, and after the restart the redelivered confirmation links
    the wallet once, with one outcome and one event."""
    await drain_consumer(bus, start_service, "identity", FRONTEND_AT_DOMAIN)
    wallet_, login, github_id = new_wallet(), new_login(), new_github_id()
    code = new_link_code()
    address = wallet_.address.lower()
    links = "SELECT count(*) FROM links WHERE address = %s"
    outcomes = "SELECT count(*) FROM link_outcomes WHERE code = %s"
    async with bus.quick_redelivery("identity"):
        armed = FRONTEND_AT_DOMAIN | {"KDEMO_FAILPOINTS": "pairing.before_event"}
        identity = start_service("identity", armed)
        await bus.publish(link_requested(wallet_, login, code))
        await bus.publish(link_confirmed(code, github_id, login))
        crashed_at(identity, "pairing.before_event")
        assert await count_rows(stack, "identity", links, address) == 0
        assert await count_rows(stack, "identity", outcomes, code) == 0

        start_service("identity", FRONTEND_AT_DOMAIN)
        await bus.settle("identity")
    assert await count_rows(stack, "identity", links, address) == 1
    linked = "SELECT count(*) FROM link_outcomes WHERE code = %s AND state = 'linked'"
    assert await count_rows(stack, "identity", linked, code) == 1
    await outbox_gone(stack, "identity", f"identity.linked:{code}")
    assert await bus.count(f"kdemo.identity.linked.{code}") == 1
    assert await bus.count(f"kdemo.identity.link_refused.{code}") == 0


# -- nak with a growing delay -----------------------------------------------------------------


async def test_transient_errors_are_retried_with_growing_delays_then_succeed(
    stack: Stack, bus: Bus, start_service: Start
) -> None:
    """Three transient errors after the commit: the message is nakked with 0.25, 0.5 and 1 s,
    redelivered no sooner than each delay, acked on the fourth delivery; one row, one event."""
    failures = 3
    await drain_consumer(bus, start_service, "gateway")
    armed = {"KDEMO_FAILPOINTS": f"consumer.after_write={failures}*error"}
    gateway = start_service("gateway", armed)
    before = delivered(await bus.consumer("gateway")).consumer_seq
    intent = new_intent()
    event = signed(intent, stack.secrets.eip712_salt)
    await bus.publish(event)
    settled = await bus.settle("gateway")

    # The consumer's sequence counts every delivery, the acked one included.
    assert delivered(settled).consumer_seq - before == failures + 1
    retries = log_lines(gateway, "handler will retry", subject=event.nats_subject)
    delays = [0.25, 0.5, 1.0]  # docs/architecture.md: min(30, 0.25 x 2^(deliveries-1)) s
    assert [(r["deliveries"], r["delay_s"]) for r in retries] == [(1, 0.25), (2, 0.5), (3, 1.0)]
    # Each retry is logged just before its nak; the next delivery may come no sooner than
    # the delay after it. The last one is the acked delivery, as the server saw it.
    acked_delivery = delivered(settled).last_active
    assert acked_delivery is not None
    deliveries = [seconds(r) for r in retries] + [acked_delivery.timestamp()]
    for n, (nakked, next_delivery) in enumerate(itertools.pairwise(deliveries), start=1):
        waited = next_delivery - nakked
        assert waited >= delays[n - 1] - 0.01, f"delivery {n + 1} came {waited:.3f} s after {n}"
    address = wallet(FUNDER_KEY)
    signatures = "SELECT count(*) FROM signatures WHERE intent_id = %s"
    assert await count_rows(stack, "ledger", signatures, intent["intent_id"]) == 1
    await outbox_gone(stack, "ledger", f"bounty.recorded:{intent['intent_id']}:{address}")
    assert await bus.count(f"kdemo.bounty.recorded.{intent['intent_id']}.{address}") == 1


# -- dead letters, fixed and replayed ---------------------------------------------------------


async def test_dead_letter_is_replayed_exactly_once_after_the_cause_is_fixed(
    stack: Stack, bus: Bus, start_service: Start
) -> None:
    """gateway misconfigured for chain 5 dead-letters a chain-1 signature and terminates it;
    restarted with the right chain, `dlq replay` records it once, and a second replay finds
    nothing to send."""
    await drain_consumer(bus, start_service, "gateway")
    gateway = start_service("gateway", {"KDEMO_CHAIN_ID": "5"})
    intent = new_intent()
    event = signed(intent, stack.secrets.eip712_salt)
    address = wallet(FUNDER_KEY)
    dlq = "kdemo.dlq." + event.nats_subject.removeprefix("kdemo.")
    recorded = f"kdemo.bounty.recorded.{intent['intent_id']}.{address}"
    signatures = "SELECT count(*) FROM signatures WHERE intent_id = %s"
    await bus.publish(requested(intent))
    await bus.publish(event)
    await bus.settle("gateway")  # terminated: nothing left unacked or pending
    assert await bus.count(dlq) == 1
    gateway.stop()

    start_service("gateway")  # the cause fixed: the stack's chain
    await bus.settle("gateway")
    assert await bus.count(dlq) == 1  # a terminated message never comes back by itself
    assert await count_rows(stack, "ledger", signatures, intent["intent_id"]) == 0
    admin = stack.bus.access("admin")
    [letter] = [d for d in await dlq_list(admin) if d.event_id == event.id]
    assert (letter.consumer, letter.original_subject) == ("gateway", event.nats_subject)
    assert "chain_id: signed for chain 1, this stack uses 5" in letter.reason

    assert await dlq_replay(admin, [letter.seq]) == 1
    await bus.settle("gateway")
    assert await count_rows(stack, "ledger", signatures, intent["intent_id"]) == 1
    await outbox_gone(stack, "ledger", f"bounty.recorded:{intent['intent_id']}:{address}")
    assert await bus.count(recorded) == 1
    assert await bus.count(dlq) == 0

    assert await dlq_replay(admin, [letter.seq]) == 0
    await bus.settle("gateway")
    assert await count_rows(stack, "ledger", signatures, intent["intent_id"]) == 1
    assert await bus.count(recorded) == 1
