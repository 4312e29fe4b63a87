"""NATS JetStream for the services: connect as the service's own user, publish, consume.

The stream and the durable consumers are created by the runtime (from the declared
topology); a service only binds to its own durable. A handler returns (→ ack after
its transaction committed), raises `Transient` (→ nak with a growing delay capped at
30 s, redelivered without limit) or `Poison` (→ copied to `kdemo.dlq.<name>…`, then
terminated). Any other exception counts as transient.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck

from .events import Event, EventInvalid, decode, encode
from .failpoints import failpoint
from .metrics import observe_edge
from .topology import Edge, edge

__all__ = [
    "Bus",
    "Poison",
    "Transient",
    "connect",
    "dlq_subject",
    "nak_delay",
]

log = logging.getLogger(__name__)
MAX_NAK_DELAY = 30.0
DRAIN_S = 2.0
"""How long closing the bus waits for the connection to drain."""


class Transient(Exception):
    """The handler may succeed later (a counterpart has not arrived, a service is down)."""


class Poison(Exception):
    """The message can never succeed (bad signature, expired, contradicts the record)."""


def nak_delay(deliveries: int) -> float:
    """Growing delay for the n-th delivery, capped at 30 s."""
    # The exponent is capped too: 2.0 ** 1024 overflows, and a message may be redelivered
    # every 30 s for a whole intent lifetime (thousands of deliveries).
    return min(MAX_NAK_DELAY, 0.25 * 2.0 ** min(max(0, deliveries - 1), 16))


def dlq_subject(subject: str) -> str:
    return "kdemo.dlq." + subject.removeprefix("kdemo.")


@dataclass
class Bus:
    service: str
    nc: NATS
    js: JetStreamContext
    stream: str
    edge: Edge = field(init=False)
    """The service → nats edge every publish, fetch and dead letter is counted on."""

    def __post_init__(self) -> None:
        self.edge = edge(self.service, "nats")

    async def publish(self, event: Event) -> PubAck:
        return await self.publish_raw(event.nats_subject, encode(event), event.id)

    async def publish_raw(self, subject: str, payload: bytes, msg_id: str) -> PubAck:
        with observe_edge(self.edge):
            return await self.js.publish(
                subject, payload, stream=self.stream, headers={"Nats-Msg-Id": msg_id}, timeout=5
            )

    async def consume(
        self,
        handler: Callable[[Event], Awaitable[None]],
        stop: asyncio.Event,
        *,
        batch: int = 16,
    ) -> None:
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

    async def _handle(self, msg: Msg, handler: Callable[[Event], Awaitable[None]]) -> None:
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
            "Kdemo-Dlq-Reason": reason[:1000],
            "Kdemo-Dlq-Consumer": self.service,
            "Kdemo-Original-Subject": msg.subject,
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
) -> Bus:
    """Connect as the service's own bus user, with a private inbox prefix its permissions allow."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats error", extra={"error": str(exc)})

    nc = await nats.connect(
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
    # Connected: from now on a lost connection is re-established without limit (nats-py
    # reads both options when a connection drops).
    nc.options["allow_reconnect"] = True
    nc.options["max_reconnect_attempts"] = -1
    return Bus(service=service, nc=nc, js=nc.jetstream(), stream=stream)
