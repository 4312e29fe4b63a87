"""The stream, the durables, dead letters and the tap, against a real nats-server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js import api
from nats.js.errors import NotFoundError

from kdemo import topology
from kdemo.errors import ConfigError
from kdemo.runtime.busadmin import dlq_list, dlq_replay, ensure_stream, intent_ttl, tap
from kdemo.runtime.natsrequest import NatsRequestError, count_dead_letters
from kdemo.testing.servers import TestBus, start_nats

pytestmark = pytest.mark.stack  # a real nats-server per test


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestBus]:
    with start_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


def _event(name: str, key: str) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"{name}:{key}",
            "type": f"dev.kdemo.{name}.v1",
            "source": "/kdemo/test",
            "data": {},
        }
    ).encode()


async def _snapshot(bus: TestBus) -> dict[str, Any]:
    """What a second `ensure_stream` must leave as it is: the stream's and each durable's
    configuration, creation time and position (a recreated one would start afresh)."""
    nc = await nats.connect(**bus.connect_kwargs("admin"))  # type: ignore[arg-type]
    try:
        js = nc.jetstream()
        info = await js.stream_info("KDEMO")
        state = info.state
        seen: dict[str, Any] = {
            "stream": (info.config.as_dict(), info.created),
            "messages": (state.messages, state.first_seq, state.last_seq),
        }
        for consumer in topology.CONSUMERS:
            c = await js.consumer_info("KDEMO", consumer.durable)
            assert c.delivered is not None
            assert c.ack_floor is not None
            seen[consumer.durable] = (
                c.config.as_dict(),
                c.created,
                (c.delivered.consumer_seq, c.delivered.stream_seq),
                (c.ack_floor.consumer_seq, c.ack_floor.stream_seq),
                (c.num_pending, c.num_ack_pending, c.num_redelivered),
            )
        return seen
    finally:
        await nc.close()


async def test_stream_and_durables_follow_the_declaration(tmp_path: Path) -> None:
    """File storage, `kdemo.>`, duplicate window = TTL, max age = 2 x TTL, direct get, durables;
    running it again (every `up` does) keeps the stream, its messages and the durables'
    positions as they are."""
    with start_nats(tmp_path, ttl_s=600) as bus:
        nc = await nats.connect(**bus.connect_kwargs("admin"))  # type: ignore[arg-type]
        try:
            js = nc.jetstream()
            info = await js.stream_info("KDEMO")
            cfg = info.config
            assert (
                cfg.subjects,
                cfg.storage,
                cfg.duplicate_window,
                cfg.max_age,
                cfg.allow_direct,
            ) == (["kdemo.>"], api.StorageType.FILE, 600, 1200, True)
            for consumer in topology.CONSUMERS:
                c = (await js.consumer_info("KDEMO", consumer.durable)).config
                assert c.ack_policy == api.AckPolicy.EXPLICIT
                assert c.filter_subjects == list(consumer.filter_subjects)
                assert (c.ack_wait, c.max_deliver, c.deliver_subject) == (30, -1, None)
            # What a running stack has: messages, one acked and one delivered but not yet acked.
            for key in ("0x1", "0x2", "0x3"):
                await js.publish(f"kdemo.bounty.requested.{key}", _event("bounty.requested", key))
            sub = await js.pull_subscribe_bind("gateway", stream="KDEMO")
            acked, held = await sub.fetch(2, timeout=5)
            await acked.ack_sync()
            assert held.metadata.sequence.stream == 2
        finally:
            await nc.close()
        before = await _snapshot(bus)
        assert before["messages"] == (3, 1, 3)
        assert before["gateway"][2:] == ((2, 2), (1, 1), (1, 1, 0))

        await ensure_stream(bus.access("admin"), ttl_s=600)

        assert await _snapshot(bus) == before


@pytest.mark.parametrize("raw", ["0", "-5", "day"])
def test_bad_intent_ttl_is_refused(raw: str) -> None:
    """KDEMO_INTENT_TTL must be a positive number of seconds."""
    with pytest.raises(ConfigError, match="KDEMO_INTENT_TTL"):
        intent_ttl({"KDEMO_INTENT_TTL": raw})


async def test_dead_letters_are_listed_and_replayed(bus: TestBus) -> None:
    """A DLQ message is listed with its headers, and replay republishes then deletes it."""
    nc = await nats.connect(**bus.connect_kwargs("gateway"))  # type: ignore[arg-type]
    try:
        js = nc.jetstream()
        for key in ("0x11", "0x22"):
            await js.publish(
                f"kdemo.dlq.bounty.requested.{key}",
                _event("bounty.requested", key),
                stream="KDEMO",
                headers={
                    "Nats-Msg-Id": f"dlq:bounty.requested:{key}:1",
                    "Kdemo-Dlq-Reason": "schema invalid",
                    "Kdemo-Dlq-Consumer": "gateway",
                    "Kdemo-Original-Subject": f"kdemo.bounty.requested.{key}",
                },
            )
    finally:
        await nc.close()
    letters = await dlq_list(bus.access("admin"))
    assert [(d.event_id, d.reason, d.consumer, d.event_type) for d in letters] == [
        ("bounty.requested:0x11", "schema invalid", "gateway", "dev.kdemo.bounty.requested.v1"),
        ("bounty.requested:0x22", "schema invalid", "gateway", "dev.kdemo.bounty.requested.v1"),
    ]
    first = letters[0]
    assert await dlq_replay(bus.access("admin"), [first.seq]) == 1
    assert [d.event_id for d in await dlq_list(bus.access("admin"))] == ["bounty.requested:0x22"]
    admin = await nats.connect(**bus.connect_kwargs("admin"))  # type: ignore[arg-type]
    try:
        msg = await admin.jetstream().get_last_msg("KDEMO", first.original_subject)
        assert msg.data == _event("bounty.requested", "0x11")
        assert msg.headers == {"Nats-Msg-Id": f"bounty.requested:0x11:replay:{first.seq}"}
    finally:
        await admin.close()
    assert await dlq_replay(bus.access("admin")) == 1
    assert await dlq_list(bus.access("admin")) == []


async def test_a_replay_goes_to_the_subject_the_dead_letter_names_not_its_header(
    tmp_path: Path,
) -> None:
    """The header is written by the service that dead-lettered the event, and the admin
    may publish anywhere: a forged one must not make the admin publish another service's
    event (gateway may write dead letters, never frontend's signatures)."""
    with start_nats(tmp_path) as bus:
        nc = await nats.connect(**bus.connect_kwargs("gateway"))  # type: ignore[arg-type]
        try:
            await nc.jetstream().publish(
                "kdemo.dlq.bounty.requested.0x44",
                _event("bounty.requested", "0x44"),
                stream="KDEMO",
                headers={
                    "Kdemo-Dlq-Reason": "schema invalid",
                    "Kdemo-Dlq-Consumer": "gateway",
                    "Kdemo-Original-Subject": "kdemo.bounty.signed.0x44.0xforged",
                },
            )
        finally:
            await nc.close()
        (letter,) = await dlq_list(bus.access("admin"))
        assert letter.original_subject == "kdemo.bounty.requested.0x44"
        assert await dlq_replay(bus.access("admin")) == 1
        admin = await nats.connect(**bus.connect_kwargs("admin"))  # type: ignore[arg-type]
        try:
            js = admin.jetstream()
            replayed = await js.get_last_msg("KDEMO", "kdemo.bounty.requested.0x44")
            assert replayed.data == _event("bounty.requested", "0x44")
            with pytest.raises(NotFoundError):
                await js.get_last_msg("KDEMO", "kdemo.bounty.signed.>")
        finally:
            await admin.close()


async def test_tap_yields_every_message_with_its_event(tmp_path: Path) -> None:
    """The tap (tap user) delivers retained messages in order, parsed as CloudEvents."""
    with start_nats(tmp_path) as bus:
        nc = await nats.connect(**bus.connect_kwargs("github-app"))  # type: ignore[arg-type]
        try:
            js = nc.jetstream()
            for key in ("0xa", "0xb"):
                await js.publish(
                    f"kdemo.bounty.requested.{key}", _event("bounty.requested", key), stream="KDEMO"
                )
        finally:
            await nc.close()
        stream = tap(bus.access("tap"))
        seen = [await asyncio.wait_for(anext(stream), 5) for _ in range(2)]
        await stream.aclose()  # type: ignore[attr-defined]
    assert [(e.subject, e.seq, e.dead_lettered) for e in seen] == [
        ("kdemo.bounty.requested.0xa", 1, False),
        ("kdemo.bounty.requested.0xb", 2, False),
    ]
    assert seen[0].event is not None
    assert seen[0].event["id"] == "bounty.requested:0xa"


async def test_the_tap_fails_only_with_kdemo_errors_when_the_bus_goes(tmp_path: Path) -> None:
    """The Runtime contract: when nats goes away under the tap, the reader sees the stream end
    or a KdemoError, never the client library's own exceptions."""
    with start_nats(tmp_path) as bus:
        nc = await nats.connect(**bus.connect_kwargs("admin"))  # type: ignore[arg-type]
        try:
            await nc.jetstream().publish("kdemo.bounty.requested.0x33", _event("x", "0x33"))
        finally:
            await nc.close()
        events = tap(bus.access("tap"), deliver_all=True)
        first = await anext(events)
        assert first.subject == "kdemo.bounty.requested.0x33"
        assert first.pending == 0  # caught up: nothing after it
    # The server is stopped now: the client (which never reconnects) closes, the tap ends.
    async with asyncio.timeout(30):
        rest = [event async for event in events]
    assert rest == []


def _count(bus: TestBus, user: str = "admin", password: str | None = None) -> int:
    host, port = bus.url.removeprefix("nats://").rsplit(":", 1)
    return count_dead_letters(
        host,
        int(port),
        user=user,
        password=bus.passwords[user] if password is None else password,
        stream=topology.STREAM_NAME,
        dlq_prefix=topology.DLQ_PREFIX,
        timeout=2.0,
    )


async def test_the_dead_letter_count_is_the_length_of_the_list(tmp_path: Path) -> None:
    """`status` counts with one STREAM.INFO request and no nats-py: the same number as
    `dlq list`, over several dead-letter subjects, ignoring the events around them."""
    with start_nats(tmp_path) as bus:
        assert _count(bus) == 0
        nc = await nats.connect(**bus.connect_kwargs("gateway"))  # type: ignore[arg-type]
        try:
            js = nc.jetstream()
            for n, subject in enumerate(
                [
                    "kdemo.dlq.bounty.requested.0x1",
                    "kdemo.dlq.bounty.requested.0x1",
                    "kdemo.dlq.bounty.signed.0x2",
                ]
            ):
                await js.publish(subject, b"{}", headers={"Nats-Msg-Id": f"dlq:{n}"})
            await js.publish("kdemo.bounty.recorded.0x3", _event("bounty.recorded", "0x3"))
        finally:
            await nc.close()
        assert _count(bus) == len(await dlq_list(bus.access("admin"))) == 3
        await dlq_replay(bus.access("admin"), [(await dlq_list(bus.access("admin")))[0].seq])
        assert _count(bus) == 2


def test_the_dead_letter_count_fails_with_the_reason(tmp_path: Path) -> None:
    """A refused login, a missing stream, no server and a server that is not NATS each
    raise NatsRequestError naming what happened; none hangs."""
    with start_nats(tmp_path, create_stream=False) as bus:
        with pytest.raises(NatsRequestError, match="Authorization Violation"):
            _count(bus, password="wrong")
        with pytest.raises(NatsRequestError, match="stream KDEMO: stream not found"):
            _count(bus)
        monitor = bus.server.monitor_port
        assert monitor is not None
        with pytest.raises(NatsRequestError, match="timed out"):  # HTTP waits for a request
            count_dead_letters(
                "127.0.0.1",
                monitor,
                user="admin",
                password=bus.passwords["admin"],
                stream=topology.STREAM_NAME,
                dlq_prefix=topology.DLQ_PREFIX,
                timeout=0.5,
            )
    with pytest.raises(NatsRequestError, match="Connection refused"):
        _count(bus)  # the server has stopped
