"""kdemo.runtime.kafkaadmin against one real broker for the whole module.

The broker is formatted with the admin and gateway only, so the first `provision` has to
add the other SCRAM users over the protocol. Skipped (with the reason) without java/mvn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from kdemo.errors import KdemoError
from kdemo.runtime import kafkaadmin, kafkaconfig
from kdemo.runtime import kafkabroker as kafka
from kdemo.runtime.base import TapEvent
from kdemo.runtime.kafkaadmin import KafkaAccess
from kdemo.runtime.kafkabroker import KafkaBroker
from services.common.kafka_client import headers_of
from tests.runtime.test_kafka_broker import Running, _free_ports, needs_jvm

pytestmark = [pytest.mark.stack, needs_jvm, pytest.mark.timeout(600)]

PASSWORDS = {user: f"{user}-secret-0123456789" for user in kafkaconfig.kafka_users()}
FORMATTED_WITH = ("admin", "gateway")


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port, controller_port = _free_ports(2)
    root = tmp_path_factory.mktemp("kafka-admin")
    formatted = {u: PASSWORDS[u] for u in FORMATTED_WITH}
    node = KafkaBroker(
        kafka.find_java(), kafka.fetch_kafka(), root, port, controller_port, formatted
    )
    node.format_storage()
    running = Running(node)
    running.start()
    try:
        yield node.bootstrap
    finally:
        running.stop()


@pytest.fixture(scope="module")
def provisioned(bootstrap: str) -> kafkaadmin.ProvisionReport:
    return asyncio.run(kafkaadmin.provision(bootstrap, PASSWORDS["admin"], PASSWORDS))


def _access(bootstrap: str, user: str) -> KafkaAccess:
    return KafkaAccess(bootstrap, user, PASSWORDS[user])


def _config(bootstrap: str, user: str, **extra: Any) -> dict[str, Any]:
    config = kafkaadmin.client_config(_access(bootstrap, user))
    config.update({k.replace("_", "."): v for k, v in extra.items()})
    return config


def _produce(
    bootstrap: str,
    user: str,
    topic: str,
    value: bytes,
    key: bytes,
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> None:
    """Produce one record as `user` (idempotent, acks=all); the broker's refusal raises."""
    producer = Producer(_config(bootstrap, user, enable_idempotence=True, acks="all"))
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    producer.produce(topic, value, key, headers=headers, on_delivery=delivered)
    assert producer.flush(30) == 0
    if failures:
        raise KafkaException(failures[0])


def _event(event_id: str, event: str) -> bytes:
    return json.dumps({"id": event_id, "type": f"kdemo.{event}", "data": {}}).encode()


def _groups(bootstrap: str) -> set[str]:
    admin = AdminClient(_config(bootstrap, "admin"))
    listed = admin.list_consumer_groups().result(30)
    return {g.group_id for g in listed.valid}


def test_provision_adds_topics_users_acls_then_changes_nothing(
    bootstrap: str, provisioned: kafkaadmin.ProvisionReport
) -> None:
    names = {s.name for s in kafkaconfig.topic_specs(3600)}
    assert set(provisioned.topics_created) == names
    assert set(provisioned.users_upserted) == set(PASSWORDS) - set(FORMATTED_WITH)
    assert provisioned.acls_created == len(kafkaconfig.all_acls())
    assert provisioned.acls_deleted == 0

    again = asyncio.run(kafkaadmin.provision(bootstrap, PASSWORDS["admin"], PASSWORDS))
    assert again == kafkaadmin.ProvisionReport()


def test_provision_updates_a_changed_password(
    bootstrap: str, provisioned: kafkaadmin.ProvisionReport
) -> None:
    changed = {**PASSWORDS, "tap": "another-tap-secret-987"}
    report = asyncio.run(kafkaadmin.provision(bootstrap, PASSWORDS["admin"], changed))
    assert report.users_upserted == ["tap"]
    report = asyncio.run(kafkaadmin.provision(bootstrap, PASSWORDS["admin"], PASSWORDS))
    assert report.users_upserted == ["tap"]


def test_a_wrong_admin_password_is_a_kdemo_error(bootstrap: str) -> None:
    with pytest.raises(KdemoError, match="refused the login of 'admin'"):
        asyncio.run(kafkaadmin.provision(bootstrap, "not-the-password", PASSWORDS))


def test_service_writes_its_own_event_and_is_refused_another(
    bootstrap: str, provisioned: kafkaadmin.ProvisionReport
) -> None:
    _produce(bootstrap, "gateway", "kdemo.bounty.recorded", _event("r-1", "x"), b"intent-r")
    with pytest.raises(KafkaException) as refused:
        _produce(bootstrap, "gateway", "kdemo.bounty.signed", _event("s-1", "x"), b"intent-s")
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def _first_error(consumer: Consumer, seconds: float = 30) -> KafkaError | None:
    """The first error the consumer reports within `seconds` (None: none)."""
    for _ in range(int(seconds / 0.5)):
        for msg in consumer.consume(10, 0.5):
            if msg.error() is not None:
                return msg.error()
    return None


def test_a_group_other_than_its_own_is_refused(
    bootstrap: str, provisioned: kafkaadmin.ProvisionReport
) -> None:
    topic = "kdemo.bounty.requested"
    foreign = Consumer(_config(bootstrap, "gateway", group_id="identity", enable_auto_commit=False))
    try:
        foreign.subscribe([topic])
        error = _first_error(foreign)
    finally:
        foreign.close()
    assert error is not None
    assert error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED

    own = Consumer(
        _config(
            bootstrap,
            "gateway",
            group_id="gateway",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
    )
    try:
        own.subscribe([topic])
        assert _first_error(own, seconds=5) is None
    finally:
        own.close()


async def _tap_until(bootstrap: str, wanted: set[str], seconds: float = 60) -> list[TapEvent]:
    """What the tap delivers (from the beginning) until it has seen every id in `wanted`."""
    seen: list[TapEvent] = []

    async def read() -> None:
        async for event in kafkaadmin.tap(_access(bootstrap, "tap"), deliver_all=True):
            seen.append(event)
            if wanted <= {str((e.event or {}).get("id")) for e in seen}:
                return

    await asyncio.wait_for(read(), seconds)
    return seen


async def test_tap_reads_everything_and_leaves_no_offsets(
    bootstrap: str, provisioned: kafkaadmin.ProvisionReport
) -> None:
    records = [
        ("github-app", "bounty.requested", "t-req"),
        ("frontend", "bounty.signed", "t-sig"),
        ("identity", "identity.linked", "t-lnk"),
    ]
    for user, event, event_id in records:
        await asyncio.to_thread(
            _produce, bootstrap, user, kafkaconfig.topic(event), _event(event_id, event), b"k"
        )
    seen = await _tap_until(bootstrap, {r[2] for r in records})
    by_id = {str((e.event or {}).get("id")): e for e in seen}
    for _user, event, event_id in records:
        assert by_id[event_id].subject == kafkaconfig.topic(event)
        assert not by_id[event_id].dead_lettered
    assert all(e.pending is not None and e.pending >= 0 for e in seen)
    assert not {g for g in await asyncio.to_thread(_groups, bootstrap) if "tap" in g}

    # and it could not keep offsets if it tried: no group is the tap's
    committer = Consumer(_config(bootstrap, "tap", group_id="tap", enable_auto_commit=False))
    try:
        committer.subscribe([kafkaconfig.topic("bounty.requested")])
        error = await asyncio.to_thread(_first_error, committer)
    finally:
        await asyncio.to_thread(committer.close)
    assert error is not None
    assert error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def _produce_in_a_transaction(bootstrap: str, topic: str, value: bytes, key: bytes) -> None:
    """As a replay does: the commit marker then takes the partition's last offset."""
    producer = Producer(_config(bootstrap, "admin", transactional_id="test-tap-transaction"))
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, value, key)
    producer.commit_transaction(30)


async def _tap_until_quiet(bootstrap: str, wanted: set[str], quiet_s: float = 5) -> list[TapEvent]:
    """What the tap delivers (from the beginning) once it has seen every id in `wanted` and
    then nothing more for `quiet_s`."""
    seen: list[TapEvent] = []

    async def read() -> None:
        async for event in kafkaadmin.tap(_access(bootstrap, "tap"), deliver_all=True):
            seen.append(event)

    reader = asyncio.create_task(read())
    try:
        async with asyncio.timeout(90):
            count = -1
            while count != len(seen) or not wanted <= {
                str((e.event or {}).get("id")) for e in seen
            }:
                count = len(seen)
                await asyncio.sleep(quiet_s)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return seen


async def test_the_tap_counts_a_partition_ended_by_a_transaction_marker_as_read(
    bootstrap: str, provisioned: kafkaadmin.ProvisionReport
) -> None:
    """A replayed dead letter is committed in a transaction, and no consumer ever receives
    its commit marker: counting the records read, the tap stayed one short for ever."""
    topic = kafkaconfig.topic("identity.link_refused")
    await asyncio.to_thread(
        _produce_in_a_transaction, bootstrap, topic, _event("t-txn", "x"), b"k-txn"
    )
    seen = await _tap_until_quiet(bootstrap, {"t-txn"})
    assert seen[-1].pending == 0, [(e.subject, e.seq, e.pending) for e in seen]


def _read_topic(bootstrap: str, topic: str) -> list[Message]:
    consumer = kafkaadmin._consumer(_access(bootstrap, "admin"), kafkaadmin._Errors())
    try:
        return kafkaadmin._read_all(consumer, [topic])
    finally:
        consumer.close()


def test_dead_letter_is_listed_and_replayed_once(
    bootstrap: str, provisioned: kafkaadmin.ProvisionReport
) -> None:
    topic = kafkaconfig.topic("bounty.requested")
    dlq = kafkaconfig.dlq_topic("bounty.requested")
    headers: list[tuple[str, str | bytes | None]] = [
        ("ce_source", b"github-app"),
        (kafkaadmin.DLQ_REASON_HEADER, b"schema: amount missing"),
        (kafkaadmin.DLQ_CONSUMER_HEADER, b"gateway"),
        (kafkaadmin.ORIGINAL_TOPIC_HEADER, topic.encode()),
    ]
    _produce(bootstrap, "gateway", dlq, _event("d-1", "bounty.requested"), b"intent-d", headers)
    admin = _access(bootstrap, "admin")

    letters = asyncio.run(kafkaadmin.dlq_list(admin))
    assert len(letters) == 1
    letter = letters[0]
    assert (letter.subject, letter.original_subject) == (dlq, topic)
    assert (letter.consumer, letter.reason) == ("gateway", "schema: amount missing")
    assert (letter.event_id, letter.event_type) == ("d-1", "kdemo.bounty.requested")
    assert letter.time > 0

    assert asyncio.run(kafkaadmin.dlq_replay(admin, [letter.seq])) == 1
    assert asyncio.run(kafkaadmin.dlq_replay(admin, [letter.seq])) == 0
    assert asyncio.run(kafkaadmin.dlq_replay(admin)) == 0
    assert asyncio.run(kafkaadmin.dlq_list(admin)) == []

    replayed = [m for m in _read_topic(bootstrap, topic) if b'"d-1"' in (m.value() or b"")]
    assert len(replayed) == 1
    assert replayed[0].key() == b"intent-d"
    got = dict(headers_of(replayed[0]))
    assert got["ce_source"] == b"github-app"
    assert got[kafkaadmin.REPLAY_OF_HEADER] == f"{dlq}:0:0".encode()
    assert kafkaadmin.DLQ_REASON_HEADER not in got


def test_replay_of_an_unknown_number_does_nothing(
    bootstrap: str, provisioned: kafkaadmin.ProvisionReport
) -> None:
    assert asyncio.run(kafkaadmin.dlq_replay(_access(bootstrap, "admin"), [99990, 10])) == 0


def test_a_broker_that_is_not_there_is_a_kdemo_error(tmp_path: Path) -> None:
    (port,) = _free_ports(1)
    with pytest.raises(KdemoError, match="does not answer"):
        asyncio.run(kafkaadmin.dlq_list(KafkaAccess(f"127.0.0.1:{port}", "admin", "x")))
