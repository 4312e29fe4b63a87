"""The services' Kafka bus (services/common/kafka_bus.py) against one real broker.

One KRaft broker for the module, provisioned by kdemo.runtime.kafkaadmin (topics, SCRAM
users, ACLs from the topology); each service logs in as its own user. Skipped, with the
reason, without java/mvn.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, Message, Producer
from confluent_kafka.admin import AdminClient

from kdemo.runtime import kafkaadmin, kafkaconfig
from kdemo.runtime import kafkabroker as kafka
from kdemo.runtime.kafkaadmin import KafkaAccess
from kdemo.runtime.kafkabroker import KafkaBroker
from services.common import kafka_bus
from services.common.bus import BusError, Poison, Transient, nak_delay
from services.common.events import Event, encode, make_event
from services.common.kafka_bus import KafkaBus, connect_kafka
from services.common.kafka_client import read_to_end
from tests.runtime.test_kafka_broker import Running, _free_ports, needs_jvm

pytestmark = [pytest.mark.stack, needs_jvm, pytest.mark.timeout(600)]

PASSWORDS = {user: f"{user}-secret-0123456789" for user in kafkaconfig.kafka_users()}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port, controller_port = _free_ports(2)
    root = tmp_path_factory.mktemp("kafka-bus")
    node = KafkaBroker(
        kafka.find_java(), kafka.fetch_kafka(), root, port, controller_port, dict(PASSWORDS)
    )
    node.format_storage()
    running = Running(node)
    running.start()
    try:
        asyncio.run(kafkaadmin.provision(node.bootstrap, PASSWORDS["admin"], PASSWORDS))
        yield node.bootstrap
    finally:
        running.stop()


def _intent() -> str:
    return "0x" + secrets.token_hex(32)


def _requested(intent: str) -> Event:
    data: dict[str, Any] = {
        "intent_id": intent,
        "repository": "acme/widgets",
        "number": 42,
        "kind": "issue",
        "source": "issue_comment",
        "source_id": 1001,
        "match_index": 0,
        "denomination": "USDC",
        "amount": "50",
        "author": {"id": 7, "login": "octocat"},
        "html_url": "https://github.com/acme/widgets/issues/42",
        "source_url": "https://github.com/acme/widgets/issues/42#issuecomment-1001",
        "signing_url": "http://127.0.0.1:1/sign?t=x",
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-02T00:00:00Z",
        "deadline": 1767312000,
    }
    return make_event("bounty.requested", key=intent, data=data, source="github-app")


def _signed(intent: str, wallet: str, signature: str = "0x" + "ab" * 65) -> Event:
    data: dict[str, Any] = {
        "intent_id": intent,
        "address": wallet,
        "signature": signature,
        "message": {
            "intentId": intent,
            "repository": "acme/widgets",
            "number": "42",
            "source": "issue_comment",
            "sourceId": "1001",
            "denomination": "USDC",
            "amount": "50",
            "deadline": "1767312000",
        },
        "chain_id": "1",
        "author_id": 7,
        "html_url": "https://github.com/acme/widgets/issues/42",
        "signed_at": "2026-01-01T00:00:00Z",
    }
    return make_event("bounty.signed", key=intent, data=data, source="frontend", wallet=wallet)


def _wallet() -> str:
    return "0x" + secrets.token_hex(20)


@pytest.fixture
async def buses(bootstrap: str) -> AsyncIterator[dict[str, KafkaBus]]:
    opened: dict[str, KafkaBus] = {}
    for service in ("github-app", "frontend", "gateway"):
        opened[service] = await connect_kafka(service, bootstrap, service, PASSWORDS[service])
    try:
        yield opened
    finally:
        for bus in opened.values():
            await bus.close()


class Seen:
    """What a test handler saw, by key, with the monotonic time of each delivery."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []
        self.changed = asyncio.Event()

    def add(self, event: Event) -> None:
        self.events.append((time.monotonic(), event))
        self.changed.set()

    def ids(self, key: str) -> list[str]:
        return [e.id for _t, e in self.events if e.key == key]

    async def wait(self, done: Any, within_s: float = 120.0) -> None:
        deadline = time.monotonic() + within_s
        while not done():
            assert time.monotonic() < deadline, f"timed out; saw {[e.id for _, e in self.events]}"
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1.0)


async def _consuming(bus: KafkaBus, handler: Any, **kwargs: Any) -> tuple[asyncio.Event, Any]:
    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume(handler, stop, **kwargs))
    return stop, task


def _admin_reader(bootstrap: str, topic: str) -> list[Message]:
    """Every record of `topic` as the admin reads it (outside any group)."""
    consumer = Consumer(_admin_config(bootstrap) | {"group.id": "kdemo-test-reader"})
    try:
        return read_to_end(consumer, [topic], 10)
    finally:
        consumer.close()


def _admin_config(bootstrap: str) -> dict[str, Any]:
    return kafkaadmin.client_config(KafkaAccess(bootstrap, "admin", PASSWORDS["admin"]))


async def test_publish_consume_in_order_per_key_and_read_back(
    buses: dict[str, KafkaBus],
) -> None:
    frontend, gateway = buses["frontend"], buses["gateway"]
    intents = [_intent() for _ in range(3)]
    wallets = [_wallet() for _ in range(5)]
    published: dict[str, list[str]] = {i: [] for i in intents}
    for wallet in wallets:
        for intent in intents:
            event = _signed(intent, wallet)
            assert (await frontend.publish(event)).duplicate is False
            published[intent].append(event.id)

    # frontend reads its own signatures back: a repeat is a duplicate, not sent again
    again = _signed(intents[0], wallets[0])
    assert (await frontend.publish(again)).duplicate is True
    found = await frontend.find(again)
    assert found is not None
    assert found.id == again.id
    assert await frontend.another_with_key(again) is True
    assert await frontend.another_with_key(_signed(_intent(), _wallet())) is False

    seen = Seen()

    async def handler(event: Event) -> None:
        if event.key in published:
            seen.add(event)

    stop, task = await _consuming(gateway, handler)
    try:
        await seen.wait(lambda: all(len(seen.ids(i)) >= len(wallets) for i in intents))
    finally:
        stop.set()
        await task
    for intent in intents:
        assert seen.ids(intent) == published[intent]  # in order, each once
    assert len(_admin_reader_ids(gateway, again)) == 1


def _admin_reader_ids(bus: KafkaBus, event: Event) -> list[str]:
    bootstrap = bus._config["bootstrap.servers"]
    return [
        (m.key() or b"").decode()
        for m in _admin_reader(bootstrap, f"kdemo.{event.name}")
        if (m.key() or b"").decode() == event.key and _id_of(m) == event.id
    ]


def _hdrs(msg: Message) -> dict[str, str]:
    raw = msg.headers() or []
    pairs = list(raw.items()) if isinstance(raw, dict) else raw
    return {k: v.decode() if isinstance(v, bytes) else v or "" for k, v in pairs}


def _id_of(msg: Message) -> str:
    return _hdrs(msg).get("Kdemo-Event-Id", "")


CRASHING_CONSUMER = """
import asyncio, sys
from services.common import failpoints
from services.common.kafka_bus import connect_kafka

async def main() -> None:
    bootstrap, password, log, wanted = sys.argv[1:5]
    failpoints.arm("consumer.after_write=crash")
    bus = await connect_kafka("gateway", bootstrap, "gateway", password)

    async def handler(event) -> None:
        if event.key == wanted:
            with open(log, "a") as f:  # the handler's "transaction": committed here
                f.write(event.id + "\\n")
                f.flush()
        else:
            failpoints.arm("")  # not ours: let it be committed

    await bus.consume(handler, asyncio.Event())

asyncio.run(main())
"""


async def test_a_consumer_killed_before_commit_gets_it_again_deduped(
    bootstrap: str, buses: dict[str, KafkaBus], tmp_path: Path
) -> None:
    intent = _intent()
    event = _requested(intent)
    await buses["github-app"].publish(event)
    processed = tmp_path / "processed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_CONSUMER,
        bootstrap,
        PASSWORDS["gateway"],
        str(processed),
        intent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    status = await asyncio.wait_for(child.wait(), 180)
    assert status == 137  # the failpoint: handler committed, offset not
    assert processed.read_text().split() == [event.id]

    seen = Seen()
    duplicates: list[str] = []

    async def handler(got: Event) -> None:
        if got.key != intent:
            return
        if got.id in processed.read_text().split():  # the handlers' dedupe on the id
            duplicates.append(got.id)
        seen.add(got)

    stop, task = await _consuming(buses["gateway"], handler)
    try:
        await seen.wait(lambda: bool(seen.events))
    finally:
        stop.set()
        await task
    assert duplicates == [event.id]  # redelivered, and recognised as processed


FAILURES = 6
"""The slow record fails this often; the last wait before its retry is nak_delay(6), 8 s."""


async def test_transient_is_retried_with_backoff_while_other_partitions_flow(
    bootstrap: str, buses: dict[str, KafkaBus]
) -> None:
    """Records published while the slow one waits out its longest retry delay: those on
    other partitions are handled meanwhile (well before the retry: a consumer that slept
    through the delay would handle them only after it), those behind it on its partition
    only after it (one key's order)."""
    slow = _requested(_intent())
    await buses["github-app"].publish(slow)
    later = [_requested(_intent()) for _ in range(9)]
    attempts: list[float] = []
    last_failure = asyncio.Event()
    seen = Seen()

    async def handler(event: Event) -> None:
        if event.key == slow.key:
            attempts.append(time.monotonic())
            if len(attempts) == FAILURES:
                last_failure.set()
            if len(attempts) <= FAILURES:
                raise Transient("counterpart not there yet")
        if event.key in {e.key for e in [slow, *later]}:
            seen.add(event)

    stop, task = await _consuming(buses["gateway"], handler)
    try:
        await asyncio.wait_for(last_failure.wait(), 120)
        for event in later:
            await buses["github-app"].publish(event)
        await seen.wait(lambda: len(seen.events) >= 1 + len(later))
    finally:
        stop.set()
        await task
    partition = {
        (m.key() or b"").decode(): int(m.partition() or 0)
        for m in _admin_reader(bootstrap, "kdemo.bounty.requested")
    }
    handled = {e.key: t for t, e in seen.events}
    flowing = [e.key for e in later if partition[e.key] != partition[slow.key]]
    behind = [e.key for e in later if partition[e.key] == partition[slow.key]]
    assert flowing, "all nine keys on the slow one's partition"
    retried_at, last_failed_at = attempts[-1], attempts[-2]
    assert all(handled[k] < last_failed_at + nak_delay(FAILURES) / 2 for k in flowing), [
        handled[k] - last_failed_at for k in flowing
    ]
    assert all(handled[k] > retried_at for k in behind)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    for n, gap in enumerate(gaps, start=1):
        assert gap >= nak_delay(n) * 0.9, (n, gaps)
    assert len(attempts) == FAILURES + 1


async def _caught_up(bus: KafkaBus) -> None:
    """Until `bus` has read back its earlier events (it refuses to publish them before)."""
    deadline = time.monotonic() + 60
    while not bus.connected:
        assert time.monotonic() < deadline, f"{bus.service} never caught up"
        await asyncio.sleep(0.1)


async def _wait_for_members(bootstrap: str, group: str, count: int) -> None:
    """Until `group` is stable with `count` members that each hold partitions."""
    admin = AdminClient(_admin_config(bootstrap))

    def members() -> int:
        described = admin.describe_consumer_groups([group])[group].result(10)
        if described.state != ConsumerGroupState.STABLE:
            return -1
        return sum(1 for m in described.members if m.assignment.topic_partitions)

    deadline = time.monotonic() + 120
    while await asyncio.to_thread(members) != count:
        assert time.monotonic() < deadline, f"group {group} never had {count} members"
        await asyncio.sleep(0.5)


async def test_a_partition_paused_for_a_retry_flows_again_after_a_rebalance(
    bootstrap: str, buses: dict[str, KafkaBus], monkeypatch: pytest.MonkeyPatch
) -> None:
    """librdkafka keeps a partition's pause across a rebalance: a member given back a
    partition it paused for a retry must resume it, or none of its keys flows again; and
    the record's deliveries are counted afresh by whoever owns it next (here max_deliveries
    is 2: a count kept from before the rebalance would dead-letter it at once)."""
    monkeypatch.setattr(kafka_bus, "nak_delay", lambda _deliveries: 600.0)  # beyond the test
    stuck = _requested(_intent())
    await buses["github-app"].publish(stuck)
    calls: list[float] = []
    called = asyncio.Event()

    async def fails(event: Event) -> None:
        if event.key == stuck.key:
            calls.append(time.monotonic())
            called.set()
            raise RuntimeError("not yet")

    stop, task = await _consuming(buses["gateway"], fails, max_deliveries=2)
    newcomer = await connect_kafka("gateway", bootstrap, "gateway", PASSWORDS["gateway"])
    try:
        await asyncio.wait_for(called.wait(), 120)
        called.clear()
        # A second member joins (every partition is revoked and shared out), then leaves (the
        # first is given them all back); the newcomer leaves the stuck record to it.
        newcomer_stop, newcomer_task = await _consuming(newcomer, fails)
        await _wait_for_members(bootstrap, "gateway", 2)
        newcomer_stop.set()
        await newcomer_task
        await asyncio.wait_for(called.wait(), 60)
        await asyncio.sleep(3)  # what a dead letter would take to be written
    finally:
        stop.set()
        await task
        await newcomer.close()
    letters = _admin_reader(bootstrap, "kdemo.dlq.bounty.requested")
    assert stuck.key.encode() not in {m.key() for m in letters}


async def test_concurrent_repeats_of_one_event_are_sent_once(
    bootstrap: str, buses: dict[str, KafkaBus]
) -> None:
    event = _signed(_intent(), _wallet())
    await _caught_up(buses["frontend"])
    answers = await asyncio.gather(*(buses["frontend"].publish(event) for _ in range(3)))
    assert sorted(a.duplicate for a in answers) == [False, True, True]
    assert len(_admin_reader_ids(buses["frontend"], event)) == 1


async def test_poison_and_invalid_records_go_to_the_dead_letter_topic(
    bootstrap: str, buses: dict[str, KafkaBus]
) -> None:
    poison = _requested(_intent())
    given_up = _requested(_intent())
    await buses["github-app"].publish(poison)
    await buses["github-app"].publish(given_up)
    junk_key = _intent()
    admin = Producer(_admin_config(bootstrap))
    admin.produce("kdemo.bounty.requested", b"not an event", junk_key.encode())
    assert admin.flush(30) == 0
    calls: dict[str, int] = {}
    done = asyncio.Event()

    async def handler(event: Event) -> None:
        calls[event.key] = calls.get(event.key, 0) + 1
        if event.key == poison.key:
            raise Poison("contradicts the record")
        if event.key == given_up.key:
            if calls[event.key] >= 2:
                done.set()
            raise RuntimeError("never works")

    stop, task = await _consuming(buses["gateway"], handler, max_deliveries=2)
    try:
        await asyncio.wait_for(done.wait(), 120)
        deadline = time.monotonic() + 60
        letters: dict[str, Message] = {}
        while len(letters) < 3 and time.monotonic() < deadline:
            letters = {
                (m.key() or b"").decode(): m
                for m in _admin_reader(bootstrap, "kdemo.dlq.bounty.requested")
                if (m.key() or b"").decode() in (poison.key, given_up.key, junk_key)
            }
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await task
    assert set(letters) == {poison.key, given_up.key, junk_key}
    headers = _hdrs(letters[poison.key])
    assert headers["Kdemo-Dlq-Reason"] == "contradicts the record"
    assert headers["Kdemo-Dlq-Consumer"] == "gateway"
    assert headers["Kdemo-Original-Topic"] == "kdemo.bounty.requested"
    assert headers["Kdemo-Event-Id"] == poison.id
    assert "gave up after 2 deliveries" in _hdrs(letters[given_up.key])["Kdemo-Dlq-Reason"]
    assert calls[poison.key] == 1
    assert calls[given_up.key] == 2
    # listed by the admin's dead-letter tooling
    listed = await kafkaadmin.dlq_list(KafkaAccess(bootstrap, "admin", PASSWORDS["admin"]))
    assert {d.event_id for d in listed} >= {poison.id, given_up.id}


async def test_a_service_is_refused_another_services_event(buses: dict[str, KafkaBus]) -> None:
    recorded = make_event(
        "bounty.recorded",
        key=_intent(),
        source="github-app",
        wallet=_wallet(),
        data={
            "intent_id": "0x" + "1" * 64,
            "address": "0x" + "2" * 40,
            "state": "signed",
            "repository": "acme/widgets",
            "number": 42,
            "denomination": "USDC",
            "amount": "50",
            "recorded_at": "2026-01-01T00:00:00Z",
        },
    )
    with pytest.raises(BusError, match=r"(?i)authoriz"):
        await buses["github-app"].publish(recorded)
    await buses["gateway"].publish(recorded)  # its owner may


def _reachable(root: object) -> Iterator[object]:
    """Everything held through the containers (dicts, sets, lists, tuples) under `root`."""
    seen: set[int] = set()
    todo = list(vars(root).values())
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        if isinstance(item, dict | set | frozenset | list | tuple):
            todo.extend(gc.get_referents(item))


async def test_read_back_keeps_where_the_events_are_not_the_events(
    bootstrap: str, buses: dict[str, KafkaBus]
) -> None:
    """Frontend's index would otherwise hold every signature and link request it ever
    published; it keeps each one's offset and reads the event again when asked."""
    event = _signed(_intent(), _wallet())
    await _caught_up(buses["frontend"])
    await buses["frontend"].publish(event)
    fresh = await connect_kafka("frontend", bootstrap, "frontend", PASSWORDS["frontend"])
    try:
        await _caught_up(fresh)
        for bus in (buses["frontend"], fresh):  # its own write, and what a restart read back
            found = await bus.find(event)
            assert found is not None
            assert (found.id, found.data) == (event.id, event.data)
            held = [o for o in _reachable(bus._read_back) if isinstance(o, Event | dict)]
            assert not [o for o in held if isinstance(o, Event) or "signature" in o], bus
    finally:
        await fresh.close()


async def test_read_back_catches_up_when_a_transaction_marker_ends_the_topic(
    bootstrap: str,
) -> None:
    """A replayed dead letter is written in a transaction, whose commit marker is then the
    partition's last offset: a consumer never receives it, so frontend must see by its
    position that it caught up (it used to stay unready for ever, answering 503)."""
    event = _signed(_intent(), _wallet())
    replayer = Producer(
        _admin_config(bootstrap) | {"transactional.id": f"test-replay-{secrets.token_hex(4)}"}
    )
    replayer.init_transactions(10)
    replayer.begin_transaction()
    replayer.produce("kdemo.bounty.signed", encode(event), event.key.encode())
    replayer.commit_transaction(10)

    frontend = await connect_kafka("frontend", bootstrap, "frontend", PASSWORDS["frontend"])
    try:
        for _ in range(200):  # 20 s: the reader polls in 0.5 s steps
            if frontend.connected:
                break
            await asyncio.sleep(0.1)
        assert frontend.connected, "frontend never caught up with its own topic"
        assert await frontend.find(event) is not None
    finally:
        await frontend.close()
