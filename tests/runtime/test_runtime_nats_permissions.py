"""Bus users against a real nats-server: each may do exactly what the topology allows."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client
from nats.js import api
from nats.js.errors import APIError

from kdemo import topology
from kdemo.runtime.natsconfig import bus_services, nats_permissions
from kdemo.testing.servers import TestBus, start_nats

pytestmark = pytest.mark.stack  # a real nats-server

TIMEOUT = 1.0
Conn = tuple[Client, list[Exception]]


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestBus]:
    with start_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


async def _connect(bus: TestBus, user: str) -> tuple[Client, list[Exception]]:
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    nc = await nats.connect(
        **bus.connect_kwargs(user),
        error_cb=on_error,  # type: ignore[arg-type]
        allow_reconnect=False,
    )
    return nc, errors


def _violated(errors: list[Exception], what: str, subject: str) -> bool:
    """The server reported a permissions violation for `what` on `subject`."""
    return any(f'permissions violation for {what} to "{subject}"' in str(e).lower() for e in errors)


async def _reported(errors: list[Exception], what: str, subject: str) -> None:
    """Wait for the server's permissions violation for `what` on `subject` (it comes as an
    asynchronous -ERR): a refusal is known from the server's word, not from a silence."""
    deadline = time.monotonic() + 5 * TIMEOUT
    while not _violated(errors, what, subject):
        assert time.monotonic() < deadline, f"no violation for {what} to {subject}: {errors}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def frontend(bus: TestBus) -> AsyncIterator[tuple[Client, list[Exception]]]:
    nc, errors = await _connect(bus, "frontend")
    yield nc, errors
    await nc.close()


def test_services_with_a_bus_edge_get_a_user() -> None:
    """Every NATS edge of the topology has a bus user; calc has none."""
    assert set(bus_services()) == {"github-app", "frontend", "gateway", "identity"}
    with pytest.raises(KeyError, match="calc"):
        nats_permissions("calc")


@pytest.mark.parametrize("service", ["github-app", "frontend", "gateway", "identity"])
def test_service_publishes_only_its_own_events(service: str) -> None:
    """Publish rights are the service's events, DLQ of what it consumes, its durable's API."""
    perms = nats_permissions(service)
    assert perms is not None
    allow = perms["publish"]["allow"]
    events = [s for s in allow if s.startswith("kdemo.") and not s.startswith("kdemo.dlq.")]
    assert events == [f"kdemo.{e}.>" for e in topology.published_events(service)]
    assert [s for s in allow if s.startswith("kdemo.dlq.")] == [
        f"kdemo.dlq.{e}.>" for e in topology.consumed_events(service)
    ]
    assert "$JS.API.STREAM.INFO.KDEMO" not in allow
    assert not any(
        s.startswith("$JS.API.STREAM.PURGE")
        or (s.endswith(">") and "$JS.API" in s and "DIRECT.GET" not in s)
        for s in allow
    )
    assert perms["subscribe"]["allow"] == [f"_INBOX_{service}.>"]


async def test_frontend_cannot_purge_the_stream(bus: TestBus, frontend: Conn) -> None:
    """A purge request from frontend is refused by the server, and the stream keeps its messages."""
    nc, errors = frontend
    js = nc.jetstream()
    await js.publish(
        "kdemo.bounty.signed.0xabc.0xdef",
        b"{}",
        stream="KDEMO",
        headers={"Nats-Msg-Id": "test-purge"},
    )
    with pytest.raises(nats.errors.TimeoutError):
        await nc.request("$JS.API.STREAM.PURGE.KDEMO", b"", timeout=TIMEOUT)
    await nc.flush()
    assert _violated(errors, "publish", "$js.api.stream.purge.kdemo")
    admin = await nats.connect(**bus.connect_kwargs("admin"))  # type: ignore[arg-type]
    try:
        info = await admin.jetstream().stream_info("KDEMO")
        assert info.state.messages >= 1
    finally:
        await admin.close()


async def test_frontend_cannot_read_identity_events(bus: TestBus, frontend: Conn) -> None:
    """frontend can neither subscribe to identity subjects nor open a consumer on them."""
    nc, errors = frontend
    sub = await nc.subscribe("kdemo.identity.>")
    inbox = await nc.subscribe("_INBOX_frontend.sentinel")  # frontend's own: allowed
    await nc.flush()
    await _reported(errors, "subscription", "kdemo.identity.>")
    admin = await nats.connect(**bus.connect_kwargs("admin"))  # type: ignore[arg-type]
    try:
        await admin.jetstream().publish("kdemo.identity.linked.somecode", b"{}")
        await admin.publish("_INBOX_frontend.sentinel", b"after the identity event")
        await admin.flush()
    finally:
        await admin.close()
    # One publisher's messages reach a connection in the order they were sent: once the
    # sentinel is here, an identity event let through would already be queued before it.
    assert (await inbox.next_msg(timeout=5 * TIMEOUT)).data == b"after the identity event"
    assert sub.pending_msgs == 0
    js = nc.jetstream()
    with pytest.raises(nats.errors.TimeoutError):
        await js.add_consumer(
            "KDEMO", api.ConsumerConfig(filter_subject="kdemo.identity.>"), timeout=TIMEOUT
        )
    await _reported(errors, "publish", "$js.api.consumer.create.kdemo")
    with pytest.raises(nats.errors.TimeoutError):
        await nc.request(
            "$JS.API.DIRECT.GET.KDEMO.kdemo.identity.linked.somecode", b"", timeout=TIMEOUT
        )
    await _reported(errors, "publish", "$js.api.direct.get.kdemo.kdemo.identity.linked.somecode")


async def test_frontend_reads_back_its_own_signature(bus: TestBus, frontend: Conn) -> None:
    """frontend may direct-get the last `bounty.signed` of an (intent, wallet)."""
    nc, _ = frontend
    js = nc.jetstream()
    subject = "kdemo.bounty.signed.0x01.0x02"
    await js.publish(
        subject, b'{"sig": 1}', stream="KDEMO", headers={"Nats-Msg-Id": "bounty.signed:0x01:0x02"}
    )
    msg = await js.get_last_msg("KDEMO", subject, direct=True)
    assert msg.data == b'{"sig": 1}'


async def test_gateway_cannot_publish_bounty_signed(bus: TestBus) -> None:
    """gateway's publish to `bounty.signed` is refused; its own `bounty.recorded` is stored."""
    nc, errors = await _connect(bus, "gateway")
    try:
        js = nc.jetstream()
        with pytest.raises(nats.errors.TimeoutError):
            await js.publish("kdemo.bounty.signed.0xaa.0xbb", b"{}", timeout=TIMEOUT)
        assert _violated(errors, "publish", "kdemo.bounty.signed.0xaa.0xbb")
        ack = await js.publish("kdemo.bounty.recorded.0xaa.0xbb", b"{}", stream="KDEMO")
        assert ack.stream == "KDEMO"
    finally:
        await nc.close()


async def test_gateway_consumes_its_durable_but_not_identitys(bus: TestBus) -> None:
    """gateway binds and fetches from `gateway`, and is refused on `identity`."""
    admin = await nats.connect(**bus.connect_kwargs("admin"))  # type: ignore[arg-type]
    try:
        await admin.jetstream().publish("kdemo.bounty.requested.0xfeed", b'{"n": 1}')
    finally:
        await admin.close()
    nc, errors = await _connect(bus, "gateway")
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe_bind("gateway", stream="KDEMO")
        msgs = await sub.fetch(10, timeout=TIMEOUT)
        assert "kdemo.bounty.requested.0xfeed" in [m.subject for m in msgs]
        for m in msgs:
            await m.ack()
        with pytest.raises(nats.errors.TimeoutError):
            await js.consumer_info("KDEMO", "identity", timeout=TIMEOUT)
        await _reported(errors, "publish", "$js.api.consumer.info.kdemo.identity")
        with pytest.raises(nats.errors.TimeoutError):
            await nc.request(
                "$JS.API.CONSUMER.MSG.NEXT.KDEMO.identity",
                json.dumps({"batch": 1}).encode(),
                timeout=TIMEOUT,
            )
        await _reported(errors, "publish", "$js.api.consumer.msg.next.kdemo.identity")
    finally:
        await nc.close()


async def test_tap_reads_everything_but_creates_no_durable(bus: TestBus) -> None:
    """The tap user gets an ordered consumer that reads every message the stream holds, in
    order; a durable or a consumer deletion is refused."""
    admin = await nats.connect(**bus.connect_kwargs("admin"))  # type: ignore[arg-type]
    try:
        admin_js = admin.jetstream()
        await admin_js.publish("kdemo.bounty.requested.0xtap", b"{}")
        held = await admin_js.stream_info("KDEMO", subjects_filter=">")
    finally:
        await admin.close()
    wanted = Counter(held.state.subjects or {})
    assert wanted["kdemo.bounty.requested.0xtap"] == 1
    nc, errors = await _connect(bus, "tap")
    try:
        js = nc.jetstream()
        sub = await js.subscribe("kdemo.>", stream="KDEMO", ordered_consumer=True)
        read = [await sub.next_msg(timeout=5 * TIMEOUT) for _ in range(held.state.messages)]
        assert Counter(m.subject for m in read) == wanted
        seqs = [m.metadata.sequence.stream for m in read]
        assert seqs == sorted(seqs)
        assert seqs[-1] == held.state.last_seq
        with pytest.raises((nats.errors.TimeoutError, APIError)):
            await js.add_consumer(
                "KDEMO", api.ConsumerConfig(durable_name="sneaky"), timeout=TIMEOUT
            )
        with pytest.raises(nats.errors.TimeoutError):
            await nc.request("$JS.API.CONSUMER.DELETE.KDEMO.gateway", b"", timeout=TIMEOUT)
        await _reported(errors, "publish", "$js.api.consumer.delete.kdemo.gateway")
    finally:
        await nc.close()
    admin = await nats.connect(**bus.connect_kwargs("admin"))  # type: ignore[arg-type]
    try:
        names = {c.name for c in await admin.jetstream().consumers_info("KDEMO")}
        assert {"gateway", "identity"} <= names
        assert "sneaky" not in names
    finally:
        await admin.close()
