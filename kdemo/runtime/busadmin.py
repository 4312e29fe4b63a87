"""The runtime's side of the bus: stream and durables, dead letters, the read-only tap.

Services never create the stream or their consumers; the runtime does it here,
with the admin user, from the one declaration in `kdemo.topology`. The tap uses
the `tap` user, which may only create ephemeral consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api
from nats.js.errors import NotFoundError

from kdemo import topology
from kdemo.errors import KdemoError
from kdemo.runtime.base import DeadLetter, TapEvent
from kdemo.runtime.natsconfig import ACK_WAIT_S, inbox_prefix
from kdemo.runtime.settings import intent_ttl
from services.common.bus import DLQ_CONSUMER_HEADER, DLQ_REASON_HEADER, original_subject

__all__ = [
    "ACK_WAIT_S",
    "BUS_ERRORS",
    "DLQ_SUBJECTS",
    "BusAccess",
    "connect",
    "dlq_list",
    "dlq_replay",
    "ensure_stream",
    "intent_ttl",
    "run_sync",
    "tap",
]

BUS_ERRORS = (nats.errors.Error, OSError, TimeoutError)
"""What the NATS client raises once connected (connecting already gives a KdemoError)."""
DLQ_SUBJECTS = f"{topology.DLQ_PREFIX}>"
_T = TypeVar("_T")


@dataclass(frozen=True)
class BusAccess:
    """How one bus user reaches the server."""

    url: str
    user: str
    password: str


async def connect(access: BusAccess) -> Client:
    """A connection as `access.user`, receiving on that user's private inbox prefix.

    Fails fast with a KdemoError when the bus does not answer (the CLI must not hang
    or print the client's tracebacks while the runtime is bringing nats back).
    """

    async def quiet(_: Exception) -> None:
        return None

    try:
        return await nats.connect(
            servers=[access.url],
            user=access.user,
            password=access.password,
            inbox_prefix=inbox_prefix(access.user).encode(),
            connect_timeout=3,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            name=f"kdemo-{access.user}",
            error_cb=quiet,
        )
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        raise KdemoError(
            f"the bus at {access.url} does not answer ({exc.__class__.__name__}: {exc})",
            "see `kdemo status`: the runtime restarts nats when it dies",
        ) from exc


def stream_config(ttl_s: int) -> api.StreamConfig:
    return api.StreamConfig(
        name=topology.STREAM_NAME,
        subjects=list(topology.STREAM_SUBJECTS),
        storage=api.StorageType.FILE,
        duplicate_window=float(ttl_s),
        max_age=float(2 * ttl_s),
        allow_direct=True,
        num_replicas=1,
    )


def consumer_config(consumer: topology.Consumer) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=consumer.durable,
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        filter_subjects=list(consumer.filter_subjects),
        ack_wait=ACK_WAIT_S,
        max_deliver=-1,
    )


async def ensure_stream(admin: BusAccess, *, ttl_s: int | None = None) -> None:
    """Create or update the stream and every durable consumer of the topology."""
    ttl = intent_ttl() if ttl_s is None else ttl_s
    nc = await connect(admin)
    try:
        js = nc.jetstream()
        config = stream_config(ttl)
        try:
            await js.stream_info(topology.STREAM_NAME)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)
        for consumer in topology.CONSUMERS:
            await js.add_consumer(topology.STREAM_NAME, consumer_config(consumer))
    finally:
        await nc.close()


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    return (headers or {}).get(name, "")


def _dead_letter(msg: api.RawStreamMsg) -> DeadLetter:
    headers = msg.headers or {}
    event: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        parsed = json.loads(msg.data or b"")
        if isinstance(parsed, dict):
            event = parsed
    event_id = str(event.get("id") or _header(headers, "Nats-Msg-Id").removeprefix("dlq:"))
    return DeadLetter(
        seq=int(msg.seq or 0),
        subject=msg.subject or "",
        original_subject=_replay_subject(msg.subject or ""),
        consumer=_header(headers, DLQ_CONSUMER_HEADER),
        reason=_header(headers, DLQ_REASON_HEADER),
        event_id=event_id,
        event_type=str(event.get("type", "")),
        time=msg.time.timestamp() if msg.time else 0.0,
    )


def _replay_subject(dead_letter_subject: str) -> str:
    """From the dead letter's own subject, never from the header the dead-lettering service
    wrote: a replay is published by the admin, who may publish on any subject. "" when the
    subject is not a dead letter of a kdemo event (nothing to replay it to)."""
    try:
        return original_subject(dead_letter_subject)
    except ValueError:
        return ""


async def _dlq_messages(nc: Client) -> list[api.RawStreamMsg]:
    js = nc.jetstream()
    found: list[api.RawStreamMsg] = []
    seq = 1
    while True:
        try:
            msg = await js.get_msg(topology.STREAM_NAME, seq=seq, subject=DLQ_SUBJECTS, next=True)
        except NotFoundError:
            return found
        found.append(msg)
        seq = int(msg.seq or seq) + 1


async def dlq_list(admin: BusAccess) -> list[DeadLetter]:
    """Every dead letter still in the stream, oldest first."""
    nc = await connect(admin)
    try:
        return [_dead_letter(m) for m in await _dlq_messages(nc)]
    finally:
        await nc.close()


async def dlq_replay(admin: BusAccess, seqs: list[int] | None = None) -> int:
    """Republish dead letters to their original subjects, then delete them; returns the count.

    The new `Nats-Msg-Id` is `<event id>:replay:<seq>`: unique per dead letter, so the
    stream's duplicate window does not swallow the replay of an event seen before.
    """
    nc = await connect(admin)
    try:
        js = nc.jetstream()
        wanted = None if seqs is None else set(seqs)
        done = 0
        for msg in await _dlq_messages(nc):
            letter = _dead_letter(msg)
            if wanted is not None and letter.seq not in wanted:
                continue
            if not letter.original_subject:
                continue  # not ours to replay: not the dead letter of a kdemo event
            await js.publish(
                letter.original_subject,
                msg.data or b"",
                headers={"Nats-Msg-Id": f"{letter.event_id}:replay:{letter.seq}"},
            )
            await js.delete_msg(topology.STREAM_NAME, letter.seq)
            done += 1
        return done
    finally:
        await nc.close()


async def tap(tap_user: BusAccess, *, deliver_all: bool = True) -> AsyncGenerator[TapEvent, None]:
    """Every message on the bus (all retained ones first when `deliver_all`), read-only."""
    nc = await connect(tap_user)
    try:
        js = nc.jetstream()
        policy = api.DeliverPolicy.ALL if deliver_all else api.DeliverPolicy.NEW
        sub = await js.subscribe(
            topology.STREAM_SUBJECTS[0],
            stream=topology.STREAM_NAME,
            ordered_consumer=True,
            deliver_policy=policy,
        )
        async for msg in _until_dropped(sub.messages):
            event: dict[str, Any] | None = None
            with contextlib.suppress(ValueError):
                parsed = json.loads(msg.data)
                event = parsed if isinstance(parsed, dict) else None
            meta = msg.metadata
            yield TapEvent(
                subject=msg.subject,
                seq=meta.sequence.stream,
                time=meta.timestamp.timestamp(),
                headers=dict(msg.headers or {}),
                event=event,
                raw=msg.data,
                pending=meta.num_pending,
            )
    finally:
        await nc.close()


async def _until_dropped(messages: AsyncIterator[Msg]) -> AsyncGenerator[Msg, None]:
    """The subscription's messages; the client's own errors become one KdemoError."""
    try:
        async for msg in messages:
            yield msg
    except BUS_ERRORS as exc:
        raise KdemoError(
            f"the bus tap stopped ({type(exc).__name__}: {exc})".replace(": )", ")"),
            "is nats running? see `kdemo status`",
        ) from exc


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run `coro` to completion from sync code, even when an event loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="kdemo-busadmin")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: _T = box["value"]
    return value
