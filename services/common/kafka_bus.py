"""Apache Kafka for the services: the `Bus` interface on confluent-kafka (librdkafka).

Names come from the topology (`topic`, `dlq_topic`, `consumer_group`); the runtime creates
the topics, the SCRAM users and the ACLs (kdemo/runtime/kafkaadmin.py), a service only
logs in as its own user (SASL SCRAM-SHA-512 over SASL_PLAINTEXT).

- **Publish**: an idempotent producer (`enable.idempotence`, `acks=all`), the record's key
  the event's key (intent id or link code), so one bounty's or link's events share a
  partition and stay in order; the value is the CloudEvents envelope the NATS bus sends,
  with the id in the `Kdemo-Event-Id` header (the consumers' dedupe key, as `Nats-Msg-Id`).
  Kafka drops no duplicate by id: the outbox may publish an event twice, and consumers
  dedupe on the id as they already do (`outbox.already_processed`).
- **Consume**: one consumer group per consuming service (named as its JetStream durable),
  no auto-commit: a record's offset is committed only after the handler returned, and the
  handler commits its database transaction before it returns. A crash in between
  redelivers the record, which the handler's dedupe absorbs.
- **Retry**: a handler that raises `Transient` (or anything not `Poison`) has its partition
  paused and the position sought back to the failed record; the partition resumes after
  `nak_delay(deliveries)`, the same capped backoff (0.25 s doubling to 30 s) as NATS's nak
  delay, and the record comes again. The other partitions keep flowing meanwhile: only the
  keys that hash to the failed record's partition wait behind it (a retry topic would let
  them pass too, but would reorder one key's events, which the ledger relies on).
- **Poison** (`Poison`, an invalid event, or `max_deliveries` reached when a caller sets
  it; like NATS's `max_deliver=-1`, none by default): the record goes to the event's
  dead-letter topic with its key and headers plus `Kdemo-Dlq-Reason`, `Kdemo-Dlq-Consumer`
  and `Kdemo-Original-Topic`, then its offset is committed.
- **Read back** (frontend, `topology.read_back_events`): NATS tells a repeated publish by
  its duplicate window and reads an earlier signature by a direct get on its subject. Here
  the service keeps an index of its own topics in memory (each event id's partition and
  offset, and the ids of each key: not the events), read from the beginning by a consumer
  outside any group (assigned every partition, committing nothing) and caught up before
  the service is ready; a publish whose id the index holds is a duplicate and is not sent
  again, and the earlier event is read again from its offset when it is asked for.
  Asking gateway instead would answer only once gateway consumed the event
  (later, and not at all for one it dead-lettered) and would make frontend's answer
  depend on gateway; the topic is what the service itself published, as on NATS.

librdkafka is synchronous: the producer is served by a thread of its own that runs the
delivery callbacks into asyncio futures, and each consumer is driven from one worker
thread, so nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from .bus import (
    DLQ_CONSUMER_HEADER,
    DLQ_REASON_HEADER,
    DRAIN_S,
    BusError,
    Handler,
    Poison,
    Published,
    Transient,
    nak_delay,
)
from .events import Event, EventInvalid, decode_record, encode, split_subject
from .failpoints import failpoint
from .kafka_client import (
    DEAD_LETTER_HEADERS,
    EVENT_ID_HEADER,
    ORIGINAL_TOPIC_HEADER,
    Headers,
    Progress,
    client_config,
    headers_of,
    partitions_of,
)
from .metrics import observe_edge
from .tasks import stop_service
from .topology import (
    DLQ_PREFIX,
    TOPIC_PREFIX,
    Edge,
    consumed_events,
    consumer_group,
    dlq_topic,
    for_bus,
    read_back_events,
    topic,
)

__all__ = ["SESSION_TIMEOUT_S", "KafkaBus", "connect_kafka"]

log = logging.getLogger(__name__)
_LIBRDKAFKA_LOG = logging.getLogger("services.kafka")
T = TypeVar("T")

PUBLISH_TIMEOUT_S: Final = 10.0
"""How long a publish waits for the broker's acknowledgement (all in-sync replicas)."""
CONNECT_TIMEOUT_S: Final = 5.0
POLL_S: Final = 0.5
SESSION_TIMEOUT_S: Final = 10.0
"""A group member that sends no heartbeat for this long is dropped and its uncommitted
records go to the group again (its restarted self, or a frozen one when it thaws). Shorter
than librdkafka's 45 s because one SIGKILLed replica holds its partitions until then: the
restarted service rejoins as a new member and the group waits for the dead one. The
heartbeats come from librdkafka's own thread, so a busy event loop does not miss them; the
broker accepts 6 s at the least (`group.min.session.timeout.ms`)."""
_DOWN: Final = (KafkaError._ALL_BROKERS_DOWN, KafkaError._AUTHENTICATION)
_PERMANENT: Final = (
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
)
"""Consumer errors that waiting does not fix: provisioning is wrong or missing."""


def _event_of_topic(name: str) -> str:
    return name.removeprefix(DLQ_PREFIX).removeprefix(TOPIC_PREFIX)


Place = tuple[int, int]
"""(partition, offset) of a record in its topic."""


def _place(msg: Message) -> Place:
    return int(msg.partition() or 0), int(msg.offset() or 0)


class _Health:
    """What librdkafka reported outside a call: a lost broker or a refused login; a fatal
    error (an idempotent producer that can no longer guarantee order, for one) stops the
    service so the runtime starts it with a new client."""

    def __init__(self) -> None:
        self.down: str | None = None

    def __call__(self, err: KafkaError) -> None:
        if err.fatal():
            self.down = f"fatal: {err.str()}"
            stop_service(f"kafka client fatal error: {err.str()}")
        elif err.code() in _DOWN:
            if self.down is None:
                log.warning("kafka unreachable", extra={"error": err.str()})
            self.down = str(err.str())
        else:
            log.info("kafka client error", extra={"error": err.str()})


class _Producer:
    """One idempotent producer; a thread serves its delivery callbacks into the loop."""

    def __init__(self, config: dict[str, Any], health: _Health) -> None:
        self.health = health
        self.producer = Producer(
            config
            | {
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": int(PUBLISH_TIMEOUT_S * 1000),
                # Java's partitioner: a key lands on the partition a Java client would choose
                "partitioner": "murmur2_random",
                "error_cb": health,
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kafka-producer", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        last_probe = 0.0
        while not self._stop.is_set():
            try:
                self.producer.poll(0.1)
            except Exception:  # a callback failed (the loop closed?): keep serving the rest
                log.exception("kafka delivery callback failed")
            if self.health.down is not None and time.monotonic() - last_probe > 2.0:
                last_probe = time.monotonic()
                with contextlib.suppress(KafkaException):
                    self.producer.list_topics(timeout=2.0)
                    self.health.down = None  # answered again
                    log.info("kafka reachable again")

    async def send(self, topic_: str, value: bytes, key: bytes, headers: Headers) -> Place:
        """Publish one record; where it landed once the broker acknowledged it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Place] = loop.create_future()

        def settle(err: KafkaError | None, place: Place) -> None:
            if done.done():
                return
            if err is None:
                done.set_result(place)
            else:
                done.set_exception(BusError(f"{topic_}: {err.str()}"))

        def delivered(err: KafkaError | None, msg: Message) -> None:
            loop.call_soon_threadsafe(settle, err, _place(msg))

        try:
            self.producer.produce(topic_, value, key, headers=headers, on_delivery=delivered)
        except (BufferError, KafkaException) as exc:
            raise BusError(f"{topic_}: {exc}") from exc
        try:
            await asyncio.wait_for(done, PUBLISH_TIMEOUT_S + 2.0)
        except TimeoutError as exc:
            raise BusError(f"{topic_}: no acknowledgement in {PUBLISH_TIMEOUT_S:.0f} s") from exc
        self.health.down = None
        return done.result()

    def close(self, timeout: float) -> None:
        """Flush what is queued for at most `timeout`, then stop serving (blocking)."""
        self.producer.flush(timeout)
        self._stop.set()
        self._thread.join(timeout=2.0)


class _ReadBack:
    """The service's own events of some topics, read from the beginning: an index of where
    each one is (its id's partition and offset, and the ids of each key), not the events,
    which would hold the whole history in memory. `fetch` reads one event again when it is
    asked for (a repeated publish met an earlier one), as NATS's direct get does."""

    def __init__(self, config: dict[str, Any], service: str, events: tuple[str, ...]) -> None:
        self.events = events
        self.place_by_id: dict[str, Place] = {}
        self.ids_by_key: dict[tuple[str, str], set[str]] = {}
        self.caught_up = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Outside any group: assigned partitions, they commit nothing and need no group
        # ACL; librdkafka wants a group.id all the same (the tap does the same).
        reader = config | {
            "group.id": f"kdemo-{service}-reader",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
        }
        self._consumer = Consumer(reader)
        self._fetcher = Consumer(reader)
        self._fetching = threading.Lock()
        self._progress = Progress()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Assign every partition from the beginning (blocking), then read in a thread."""
        names = [topic(e) for e in self.events]
        where = partitions_of(self._consumer, names, CONNECT_TIMEOUT_S)
        missing = sorted(set(names) - {name for name, _partition in where})
        if missing:
            raise BusError(f"topic {', '.join(missing)} is missing or not readable")
        self._progress = Progress.measure(self._consumer, where, CONNECT_TIMEOUT_S)
        self._consumer.assign([TopicPartition(*w, OFFSET_BEGINNING) for w in where])
        self.caught_up = self._progress.caught_up
        self._thread = threading.Thread(target=self._run, name="kafka-read-back", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._consumer.consume(200, POLL_S)
            except (KafkaException, RuntimeError) as exc:
                log.warning("reading back failed", extra={"error": str(exc)})
                time.sleep(1.0)
                continue
            for msg in batch:
                if msg.error() is not None:
                    continue  # group-less reader: the coordinator lookup is refused; EOF
                self._take(msg)
            if not self.caught_up:  # the ends seen at start: once reached, it stays so
                with contextlib.suppress(KafkaException):
                    self._progress.observe(self._consumer)
                self.caught_up = self._progress.caught_up

    def _take(self, msg: Message) -> None:
        with contextlib.suppress(EventInvalid):
            event = decode_record(msg.value() or b"", _event_of_topic(str(msg.topic())))
            self.add(event, _place(msg))
        self._progress.took(msg)

    def add(self, event: Event, place: Place) -> None:
        with self._lock:
            self.place_by_id.setdefault(event.id, place)
            self.ids_by_key.setdefault((sys.intern(event.name), event.key), set()).add(event.id)

    def place(self, event_id: str) -> Place | None:
        with self._lock:
            return self.place_by_id.get(event_id)

    def fetch(self, name: str, place: Place) -> Event | None:
        """The event of `name` at `place`, read again (blocking); None when retention has
        deleted it since. KafkaException or BusError when the broker does not answer."""
        partition, offset = place
        wanted = TopicPartition(topic(name), partition, offset)
        with self._fetching:
            low, _high = self._fetcher.get_watermark_offsets(wanted, timeout=CONNECT_TIMEOUT_S)
            if offset < low:
                return None
            self._fetcher.assign([wanted])
            try:
                return self._fetch_assigned(name, offset)
            finally:
                self._fetcher.unassign()

    def _fetch_assigned(self, name: str, offset: int) -> Event | None:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while time.monotonic() < deadline:
            msg = self._fetcher.poll(POLL_S)
            if msg is None or msg.error() is not None:
                continue
            if msg.offset() != offset:
                return None  # not there any more (the index holds only what it read)
            try:
                return decode_record(msg.value() or b"", name)
            except EventInvalid:
                return None
        raise BusError(f"{topic(name)}: no record at {offset} in {CONNECT_TIMEOUT_S:.0f} s")

    def others(self, event: Event) -> bool:
        with self._lock:
            return bool(self.ids_by_key.get((event.name, event.key), set()) - {event.id})

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=POLL_S * 4)
            if self._thread.is_alive():  # closing a consumer in use crashes librdkafka
                log.warning("the read-back thread did not stop; its consumer is left open")
                return
        with contextlib.suppress(KafkaException, RuntimeError):
            self._consumer.close()
        with self._fetching, contextlib.suppress(KafkaException, RuntimeError):
            self._fetcher.close()


class _LocksById:
    """One asyncio lock per event id, kept only while someone holds or awaits it: a slow
    publish (up to PUBLISH_TIMEOUT_S) holds up the repeats of its own event only."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, event_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(event_id, (asyncio.Lock(), 0))
        self._locks[event_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[event_id]
            if users == 1:
                del self._locks[event_id]
            else:
                self._locks[event_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


@dataclass
class _Retry:
    """A paused partition: resumed at `at` (monotonic), from `offset`."""

    at: float
    offset: int


@dataclass
class _ConsumerState:
    paused: dict[tuple[str, int], _Retry] = field(default_factory=dict)
    deliveries: dict[tuple[str, int, int], int] = field(default_factory=dict)


class KafkaBus:
    """The `Bus` on Kafka (see the module's docstring)."""

    def __init__(
        self,
        service: str,
        config: dict[str, Any],
        producer: _Producer,
        health: _Health,
        read_back: _ReadBack | None,
    ) -> None:
        self.service = service
        self.edge: Edge = for_bus("kafka").bus_edge(service)
        self._config = config
        self._producer = producer
        self._health = health
        self._read_back = read_back
        self._publishing = _LocksById()

    @property
    def connected(self) -> bool:
        caught_up = self._read_back is None or self._read_back.caught_up
        return self._health.down is None and caught_up

    # -- publishing ----------------------------------------------------------------------------

    async def publish(self, event: Event) -> Published:
        read_back = self._read_back
        if read_back is None or event.name not in read_back.events:
            await self._send(topic(event.name), encode(event), event.key, event.id)
            return Published(duplicate=False)
        if not read_back.caught_up:
            raise BusError("still reading back the earlier events")
        # Check and publish as one step for this id in this process; other ids go on.
        async with self._publishing.hold(event.id):
            if read_back.place(event.id) is not None:
                return Published(duplicate=True)
            place = await self._send(topic(event.name), encode(event), event.key, event.id)
            read_back.add(event, place)  # read your own write before the reader sees it
        return Published(duplicate=False)

    async def publish_raw(self, subject: str, payload: bytes, event_id: str) -> None:
        name, key = split_subject(subject)
        await self._send(topic(name), payload, key, event_id)

    async def _send(self, topic_: str, value: bytes, key: str, event_id: str) -> Place:
        headers: Headers = [(EVENT_ID_HEADER, event_id.encode())]
        with observe_edge(self.edge):
            return await self._producer.send(topic_, value, key.encode(), headers)

    async def find(self, event: Event) -> Event | None:
        read_back = self._read_back
        if read_back is None or event.name not in read_back.events:
            raise BusError(f"{self.service} does not read back {event.name}")
        place = read_back.place(event.id)
        if place is None:
            return None
        try:
            return await _to_thread_to_the_end(lambda: read_back.fetch(event.name, place))
        except KafkaException as exc:
            raise BusError(f"reading back {event.id}: {exc}") from exc

    async def another_with_key(self, event: Event) -> bool:
        if self._read_back is None or event.name not in self._read_back.events:
            return False
        return self._read_back.others(event)

    # -- consuming -----------------------------------------------------------------------------

    async def consume(
        self, handler: Handler, stop: asyncio.Event, *, max_deliveries: int | None = None
    ) -> None:
        """Run the service's group member until `stop` is set (see the module docstring)."""
        loop = asyncio.get_running_loop()
        worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kafka-consumer")
        state = _ConsumerState()

        async def run(fn: Callable[..., T], *args: Any) -> T:
            return await loop.run_in_executor(worker, fn, *args)

        def revoked(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
            # Runs inside poll (the worker thread) while the loop awaits that poll. A paused
            # partition's record is not committed: its next owner reads it again, and counts
            # its deliveries afresh (so does this member if the partition comes back).
            gone = {(tp.topic, tp.partition) for tp in partitions}
            for where in gone:
                state.paused.pop(where, None)
            for record in [r for r in state.deliveries if r[:2] in gone]:
                del state.deliveries[record]

        def assigned(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            # librdkafka keeps a partition's pause across a revoke and a new assignment: one
            # that was paused for a retry when the group rebalanced would never flow again.
            # Assigned partitions start from the committed offset, so none waits on a retry.
            consumer.assign(partitions)
            consumer.resume(partitions)

        consumer = await run(
            Consumer,
            self._config
            | {
                "group.id": consumer_group(self.service),
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": int(SESSION_TIMEOUT_S * 1000),
                "isolation.level": "read_committed",
                "error_cb": self._health,
            },
        )
        try:
            topics = [topic(e) for e in consumed_events(self.service)]
            await run(lambda: consumer.subscribe(topics, on_assign=assigned, on_revoke=revoked))
            while not stop.is_set():
                await self._resume_due(run, consumer, state)
                msg = await run(consumer.poll, POLL_S)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.fatal() or error.code() in _PERMANENT:
                        # Not something waiting fixes: the consumer (a vital task) ends and
                        # the runtime restarts the service, which says why in its log.
                        raise BusError(f"{self.service} cannot consume: {error.str()}")
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer error", extra={"error": error.str()})
                        await asyncio.sleep(1.0)
                    continue
                where = (str(msg.topic()), int(msg.partition() or 0))
                if where in state.paused:
                    continue  # fetched before the pause: read again after the seek
                try:
                    with observe_edge(self.edge):
                        await self._handle(run, consumer, msg, handler, state, max_deliveries)
                except Exception as exc:  # commit or dead letter failed: the bus is away
                    log.warning(
                        "record left for redelivery",
                        extra={"topic": where[0], "error": str(exc)},
                    )
                    await self._retry_later(run, consumer, msg, 1.0, state)
        finally:
            with contextlib.suppress(KafkaException, RuntimeError):
                await run(consumer.close)  # leaves the group: its partitions move at once
            worker.shutdown(wait=False)

    async def _handle(
        self,
        run: Callable[..., Any],
        consumer: Consumer,
        msg: Message,
        handler: Handler,
        state: _ConsumerState,
        max_deliveries: int | None,
    ) -> None:
        name = str(msg.topic())
        where = (name, int(msg.partition() or 0), int(msg.offset() or 0))
        deliveries = state.deliveries.get(where, 0) + 1
        state.deliveries[where] = deliveries
        try:
            event = decode_record(msg.value() or b"", _event_of_topic(name))
            await handler(event)
            failpoint("consumer.after_write")  # committed, not yet acknowledged
        except (EventInvalid, Poison) as exc:
            await self._dead_letter(msg, str(exc))
        except Exception as exc:  # transient by default: retried with a growing delay
            if max_deliveries is not None and deliveries >= max_deliveries:
                await self._dead_letter(msg, f"gave up after {deliveries} deliveries: {exc}")
            else:
                delay = nak_delay(deliveries)
                level = logging.INFO if isinstance(exc, Transient) else logging.WARNING
                log.log(
                    level,
                    "handler will retry",
                    extra={
                        "topic": name,
                        "partition": where[1],
                        "reason": str(exc),
                        "deliveries": deliveries,
                        "delay_s": delay,
                    },
                    exc_info=not isinstance(exc, Transient),
                )
                await self._retry_later(run, consumer, msg, delay, state)
                return
        await run(lambda: consumer.commit(message=msg, asynchronous=False))
        state.deliveries.pop(where, None)

    async def _retry_later(
        self,
        run: Callable[..., Any],
        consumer: Consumer,
        msg: Message,
        delay: float,
        state: _ConsumerState,
    ) -> None:
        """Pause the record's partition, back at its offset, for `delay` seconds."""
        tp = TopicPartition(str(msg.topic()), int(msg.partition() or 0))
        offset = int(msg.offset() or 0)
        state.paused[(tp.topic, tp.partition)] = _Retry(time.monotonic() + delay, offset)

        def pause() -> None:
            consumer.pause([tp])
            consumer.seek(TopicPartition(tp.topic, tp.partition, offset))

        with contextlib.suppress(KafkaException):  # revoked meanwhile: its owner reads it
            await run(pause)

    async def _resume_due(
        self, run: Callable[..., Any], consumer: Consumer, state: _ConsumerState
    ) -> None:
        now = time.monotonic()
        for (name, partition), retry in list(state.paused.items()):
            if retry.at > now:
                continue
            del state.paused[(name, partition)]

            def resume(
                name: str = name, partition: int = partition, offset: int = retry.offset
            ) -> None:
                try:
                    consumer.seek(TopicPartition(name, partition, offset))
                finally:  # the pause already left it at the offset: never leave it paused
                    consumer.resume([TopicPartition(name, partition)])

            with contextlib.suppress(KafkaException):
                await run(resume)

    async def _dead_letter(self, msg: Message, reason: str) -> None:
        name = str(msg.topic())
        headers: Headers = [(k, v) for k, v in headers_of(msg) if k not in DEAD_LETTER_HEADERS]
        headers += [
            (DLQ_REASON_HEADER, reason[:1000].encode()),
            (DLQ_CONSUMER_HEADER, self.service.encode()),
            (ORIGINAL_TOPIC_HEADER, name.encode()),
        ]
        log.warning("dead-lettered", extra={"topic": name, "reason": reason})
        await self._producer.send(
            dlq_topic(_event_of_topic(name)), msg.value() or b"", msg.key() or b"", headers
        )

    # -- closing -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Flush pending publishes for at most `DRAIN_S`, then stop the client threads.

        Call it once the consumer has returned (it closes its own group member)."""
        if self._read_back is not None:
            await asyncio.to_thread(self._read_back.close)
        await asyncio.to_thread(self._producer.close, DRAIN_S)


async def _to_thread_to_the_end(fn: Callable[[], T]) -> T:
    """`asyncio.to_thread(fn)`, except that a cancellation (the service shutting down) waits
    for `fn` to return before it propagates: the thread cannot be stopped, and the clean-up
    that follows must not close a client `fn` is still using."""
    running = asyncio.ensure_future(asyncio.to_thread(fn))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        if not running.cancelled():
            running.exception()  # retrieved: the cancellation is what the caller hears of
        raise


async def connect_kafka(
    service: str, bootstrap: str, user: str | None, password: str | None
) -> KafkaBus:
    """Connect as the service's own Kafka user; BusError when the broker does not answer
    or refuses the login (the lifecycle retries with its capped backoff)."""
    config = client_config(bootstrap, user, password, logger=_LIBRDKAFKA_LOG)
    health = _Health()
    producer = _Producer(config, health)
    read_back: _ReadBack | None = None
    try:
        try:
            await _to_thread_to_the_end(
                lambda: producer.producer.list_topics(None, CONNECT_TIMEOUT_S)
            )
        except KafkaException as exc:
            raise BusError(f"kafka at {bootstrap}: {health.down or exc}") from exc
        events = read_back_events(service)
        if events:
            read_back = _ReadBack(config | {"error_cb": health}, service, events)
            try:
                await _to_thread_to_the_end(read_back.start)
            except KafkaException as exc:
                raise BusError(f"kafka at {bootstrap}: {health.down or exc}") from exc
    except BaseException:
        if read_back is not None:
            await asyncio.to_thread(read_back.close)
        await asyncio.to_thread(producer.close, 0.0)
        raise
    return KafkaBus(service, config, producer, health, read_back)
