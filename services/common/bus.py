"""The event bus for the services: one interface (`Bus`), two implementations.

`connect_bus(service, settings)` picks the bus from `KDEMO_BUS`: `NatsBus` (NATS
JetStream, the default) or `KafkaBus` (`services.common.kafka_bus`); a service uses
only the interface below and never knows which one it got. Either way the value is the
same CloudEvents envelope, the event id is the consumers' dedupe key, and a handler
returns (→ acked or committed after its transaction committed), raises `Transient`
(→ retried after a growing delay capped at 30 s, without limit) or `Poison` (→ copied to
the event's dead-letter subject or topic with the reason headers, then dropped). Any
other exception counts as transient.

NATS: the stream and the durable consumers are created by the runtime (from the declared
topology); a service only binds to its own durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from .events import Event, EventInvalid, decode, encode, split_subject
from .failpoints import failpoint
from .metrics import observe_edge
from .settings import BusSettings
from .topology import Edge, for_bus

__all__ = [
    "DLQ_CONSUMER_HEADER",
    "DLQ_REASON_HEADER",
    "ORIGINAL_SUBJECT_HEADER",
    "Bus",
    "BusError",
    "Handler",
    "NatsBus",
    "Poison",
    "Published",
    "Transient",
    "connect",
    "connect_bus",
    "dlq_subject",
    "nak_delay",
    "original_subject",
]

log = logging.getLogger(__name__)
MAX_NAK_DELAY = 30.0
_DLQ_SUBJECT_PREFIX = "kdemo.dlq."
DRAIN_S = 2.0
"""How long closing the bus waits for the connection to drain."""
DLQ_REASON_HEADER = "Kdemo-Dlq-Reason"
DLQ_CONSUMER_HEADER = "Kdemo-Dlq-Consumer"
ORIGINAL_SUBJECT_HEADER = "Kdemo-Original-Subject"
"""Where a dead letter came from, for people reading it; a replay goes by its own subject."""

Handler = Callable[[Event], Awaitable[None]]


class Transient(Exception):
    """The handler may succeed later (a counterpart has not arrived, a service is down)."""


class Poison(Exception):
    """The message can never succeed (bad signature, expired, contradicts the record)."""


class BusError(Exception):
    """The bus did not take or answer a request (away, timed out, refused)."""


@dataclass(frozen=True)
class Published:
    """The bus took the event; `duplicate` when it already held one with the same id (then
    it kept the earlier one and dropped this copy)."""

    duplicate: bool


def nak_delay(deliveries: int) -> float:
    """Growing delay for the n-th delivery, capped at 30 s."""
    # The exponent is capped too: 2.0 ** 1024 overflows, and a message may be redelivered
    # every 30 s for a whole intent lifetime (thousands of deliveries).
    return min(MAX_NAK_DELAY, 0.25 * 2.0 ** min(max(0, deliveries - 1), 16))


def dlq_subject(subject: str) -> str:
    return _DLQ_SUBJECT_PREFIX + subject.removeprefix("kdemo.")


def original_subject(dead_letter_subject: str) -> str:
    """The subject a dead letter was taken from, read from its own subject (`dlq_subject`
    reversed); ValueError when that is not the dead letter of a kdemo event."""
    if not dead_letter_subject.startswith(_DLQ_SUBJECT_PREFIX):
        raise ValueError(f"{dead_letter_subject!r} is not a dead letter's subject")
    subject = "kdemo." + dead_letter_subject.removeprefix(_DLQ_SUBJECT_PREFIX)
    split_subject(subject)  # ValueError for a subject no kdemo event has
    return subject


class Bus(Protocol):
    """What a service does with the bus, whichever it is."""

    service: str
    edge: Edge
    """The service → bus edge every publish, consume and dead letter is counted on."""

    @property
    def connected(self) -> bool:
        """Whether the bus answers now (part of the service's readiness)."""
        ...

    async def publish(self, event: Event) -> Published:
        """Publish `event`; BusError when the bus did not take it (nothing was recorded)."""
        ...

    async def publish_raw(self, subject: str, payload: bytes, event_id: str) -> None:
        """Publish an encoded event as the outbox stored it (its NATS subject and id)."""
        ...

    async def consume(self, handler: Handler, stop: asyncio.Event) -> None:
        """Run the service's consumer until `stop` is set."""
        ...

    async def find(self, event: Event) -> Event | None:
        """The event with `event`'s id the bus already holds, if any (what a duplicate
        publish met); BusError when the bus cannot answer."""
        ...

    async def another_with_key(self, event: Event) -> bool:
        """Whether the bus holds an event of `event`'s name and key with another id (for
        `bounty.signed`: another wallet signed the intent); False when it cannot tell."""
        ...

    async def close(self) -> None: ...


async def connect_bus(service: str, settings: BusSettings) -> Bus:
    """Connect `service` to the bus its settings choose (`KDEMO_BUS`), as its own user."""
    if settings.bus == "kafka":
        from .kafka_bus import connect_kafka  # librdkafka only when chosen

        return await connect_kafka(
            service, settings.kafka_bootstrap, settings.kafka_user, settings.kafka_password
        )
    return await connect(
        service,
        settings.nats_url,
        settings.nats_user,
        settings.nats_password,
        stream=settings.nats_stream,
    )


@dataclass
class NatsBus:
    """NATS JetStream: the stream's duplicate window drops a second publish of an id."""

    service: str
    nc: NATS
    js: JetStreamContext
    stream: str
    edge: Edge = field(init=False)
    """The service → nats edge every publish, fetch and dead letter is counted on."""

    def __post_init__(self) -> None:
        self.edge = for_bus("nats").bus_edge(self.service)

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def publish(self, event: Event) -> Published:
        return await self._publish(event.nats_subject, encode(event), event.id)

    async def publish_raw(self, subject: str, payload: bytes, event_id: str) -> None:
        await self._publish(subject, payload, event_id)

    async def _publish(self, subject: str, payload: bytes, msg_id: str) -> Published:
        try:
            with observe_edge(self.edge):
                ack = await self.js.publish(
                    subject,
                    payload,
                    stream=self.stream,
                    headers={"Nats-Msg-Id": msg_id},
                    timeout=5,
                )
        except (nats.errors.Error, TimeoutError) as exc:
            raise BusError(str(exc) or type(exc).__name__) from exc
        return Published(duplicate=bool(ack.duplicate))

    async def find(self, event: Event) -> Event | None:
        try:
            raw = await self.js.get_msg(self.stream, subject=event.nats_subject, direct=True)
        except nats.js.errors.NotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as exc:
            raise BusError(str(exc) or type(exc).__name__) from exc
        try:
            return decode(raw.data or b"", event.nats_subject)
        except EventInvalid:
            return None  # not an event this service could have published

    async def another_with_key(self, event: Event) -> bool:
        # The last message on kdemo.<name>.<key>.* (per-wallet events add the wallet).
        this_key = f"kdemo.{event.name}.{event.key}"
        wanted = this_key + ".*" if event.nats_subject != this_key else this_key
        try:
            raw = await self.js.get_msg(self.stream, subject=wanted, direct=True)
        except (nats.errors.Error, TimeoutError):  # NotFoundError included: nothing yet
            return False
        return raw.subject not in (None, event.nats_subject)

    async def consume(self, handler: Handler, stop: asyncio.Event, *, batch: int = 16) -> None:
        """Run the service's durable consumer until `stop` is set."""
        sub = await self.js.pull_subscribe_bind(durable=self.service, stream=self.stream)
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(batch, timeout=1.0)
                except TimeoutError:
                    continue
                except nats.errors.Error as exc:
                    log.warning("fetch failed", extra={"error": str(exc)})
                    await asyncio.sleep(1.0)
                    continue
                for msg in msgs:
                    try:
                        with observe_edge(self.edge):
                            await self._handle(msg, handler)
                    except Exception as exc:  # ack, nak or dead-letter failed: the bus is away
                        # The message was not acked, so JetStream redelivers it after ack_wait;
                        # the consumer itself must live on.
                        log.warning(
                            "message left for redelivery",
                            extra={"subject": msg.subject, "error": str(exc)},
                        )
        finally:
            # Without this, draining the connection waits on the pull subscription's queue.
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()

    async def _handle(self, msg: Msg, handler: Handler) -> None:
        deliveries = msg.metadata.num_delivered
        try:
            event = decode(msg.data, msg.subject)
            await handler(event)
            failpoint("consumer.after_write")  # committed, not yet acked
        except (EventInvalid, Poison) as exc:
            await self._dead_letter(msg, str(exc))
            await msg.term()
            return
        except Exception as exc:  # transient by default: retried with a growing delay
            delay = nak_delay(deliveries)
            level = logging.INFO if isinstance(exc, Transient) else logging.WARNING
            log.log(
                level,
                "handler will retry",
                extra={
                    "subject": msg.subject,
                    "reason": str(exc),
                    "deliveries": deliveries,
                    "delay_s": delay,
                },
                exc_info=not isinstance(exc, Transient),
            )
            await msg.nak(delay=delay)
            return
        await msg.ack()

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        headers = {
            "Nats-Msg-Id": f"dlq:{msg.headers.get('Nats-Msg-Id') if msg.headers else None}"
            f":{msg.metadata.sequence.stream}",
            DLQ_REASON_HEADER: reason[:1000],
            DLQ_CONSUMER_HEADER: self.service,
            ORIGINAL_SUBJECT_HEADER: msg.subject,
        }
        log.warning("dead-lettered", extra={"subject": msg.subject, "reason": reason})
        with observe_edge(self.edge):
            await self.js.publish(
                dlq_subject(msg.subject), msg.data, stream=self.stream, headers=headers, timeout=5
            )

    async def close(self) -> None:
        """Drain (pending publishes are flushed) for at most `DRAIN_S`, then close.

        Call it once the consumer has returned: nats-py's drain can wait on a pull
        subscription's inbox long after its `drain_timeout`, so it is cut short here.
        """
        try:
            await asyncio.wait_for(self.nc.drain(), DRAIN_S)
        except TimeoutError:
            log.info("bus drain timed out; closing", extra={"after_s": DRAIN_S})
        except nats.errors.Error as exc:  # already closed, or the server went away
            log.info("bus drain failed; closing", extra={"error": str(exc)})
        with contextlib.suppress(nats.errors.Error):
            await self.nc.close()


async def connect(
    service: str, url: str, user: str | None, password: str | None, *, stream: str = "KDEMO"
) -> NatsBus:
    """Connect as the service's own bus user, with a private inbox prefix its permissions allow."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats error", extra={"error": str(exc)})

    try:
        nc = await _connect_nats(service, url, user, password, on_error)
    except (nats.errors.Error, OSError, TimeoutError) as exc:  # away, or refused the login
        raise BusError(f"nats at {url}: {exc or type(exc).__name__}") from exc
    # Connected: from now on a lost connection is re-established without limit (nats-py
    # reads both options when a connection drops).
    nc.options["allow_reconnect"] = True
    nc.options["max_reconnect_attempts"] = -1
    return NatsBus(service=service, nc=nc, js=nc.jetstream(), stream=stream)


async def _connect_nats(
    service: str,
    url: str,
    user: str | None,
    password: str | None,
    on_error: Callable[[Exception], Awaitable[None]],
) -> NATS:
    return await nats.connect(
        url,
        user=user,
        password=password,
        name=service,
        inbox_prefix=f"_INBOX_{service}".encode(),
        # A short first attempt: with unlimited reconnects, nats-py retries a first
        # connection that fails forever inside connect(), every reconnect_time_wait, and the
        # caller never learns why. The caller retries instead (services.common.lifecycle,
        # with the capped backoff). Unlimited reconnects are switched on once connected.
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.5,
        connect_timeout=3,
        # A pull subscription can leave drain waiting for its whole timeout; a short
        # one keeps shutdown quick (unacked messages are redelivered anyway).
        drain_timeout=2,
        error_cb=on_error,
    )
