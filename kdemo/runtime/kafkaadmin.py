"""The runtime's side of the Kafka bus: topics, ACLs, SCRAM users, dead letters, the tap.

The Kafka counterpart of `busadmin` (NATS), with the same types (`TapEvent`, `DeadLetter`)
so that a runtime can switch on its bus. Everything is derived from `kafkaconfig` (and so
from the topology); services never create topics or ACLs.

confluent-kafka (librdkafka) is a synchronous client with threads of its own: every
operation here runs in a worker thread (`asyncio.to_thread`, or one dedicated thread for
the tap's consumer), so nothing blocks the caller's event loop, and every client error
leaves as a `KdemoError`.

Dead letters: a service's Kafka bus copies a record it gives up on to
`kdemo.dlq.<event>` with the original key and headers plus `Kdemo-Dlq-Reason`,
`Kdemo-Dlq-Consumer` and `Kdemo-Original-Topic`. `dlq_replay` republishes it to the
original topic (same key, the original headers and `Kdemo-Replay-Of`) and writes a marker
to the compacted `kdemo.admin.replayed` topic in the same Kafka transaction, so the replay
and its marker are committed together or not at all; a dead letter with a marker is neither
listed nor replayed again. (Deleting the dead letter, as JetStream does, is not possible in
Kafka short of DeleteRecords below an offset.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from kdemo.errors import KdemoError
from kdemo.runtime import kafkaconfig
from kdemo.runtime.base import DeadLetter, TapEvent
from kdemo.runtime.kafkaconfig import Acl
from services.common.bus import DLQ_CONSUMER_HEADER, DLQ_REASON_HEADER
from services.common.kafka_client import (
    DEAD_LETTER_HEADERS,
    IGNORED_BY_READERS,
    ORIGINAL_TOPIC_HEADER,
    Headers,
    Progress,
    headers_of,
    partitions_of,
    read_to_end,
)
from services.common.kafka_client import client_config as _client_config

__all__ = [
    "DLQ_CONSUMER_HEADER",
    "DLQ_REASON_HEADER",
    "ORIGINAL_TOPIC_HEADER",
    "REPLAY_OF_HEADER",
    "KafkaAccess",
    "ProvisionReport",
    "client_config",
    "dlq_list",
    "dlq_replay",
    "provision",
    "tap",
]

REPLAY_OF_HEADER = "Kdemo-Replay-Of"
_NOT_REPLAYED = (*DEAD_LETTER_HEADERS, REPLAY_OF_HEADER)
"""Headers the dead-lettering (or an earlier replay) added: dropped when republished."""
SCRAM_ITERATIONS = 8192
REPLAY_TRANSACTION_ID = "kdemo-admin-dlq-replay"
"""One transactional id for every replay: a second replay that starts fences the first,
whose transaction is then aborted rather than committed twice."""
TIMEOUT_S = 10.0
_HINT = "see `kdemo status` and the kafka log: the runtime restarts the broker when it dies"
_LOG = logging.getLogger("kdemo.kafka")
_LOG.addHandler(logging.NullHandler())
_T = TypeVar("_T")
_C = TypeVar("_C", AdminClient, Consumer, Producer)


@dataclass(frozen=True)
class KafkaAccess:
    """How one bus user reaches the broker."""

    bootstrap: str
    user: str
    password: str


@dataclass
class ProvisionReport:
    """What `provision` changed (all empty when the broker was up to date)."""

    topics_created: list[str] = field(default_factory=list)
    users_upserted: list[str] = field(default_factory=list)
    acls_created: int = 0
    acls_deleted: int = 0


def client_config(access: KafkaAccess) -> dict[str, Any]:
    """librdkafka settings for `access` (the services' own, with the logs kept off the
    terminal in the `kdemo.kafka` logger)."""
    return _client_config(access.bootstrap, access.user, access.password, logger=_LOG)


# -- errors ------------------------------------------------------------------------------------


class _Errors:
    """Collects the errors librdkafka reports outside a call (refused login, no broker)."""

    def __init__(self) -> None:
        self.seen: list[KafkaError] = []
        self.clients: list[AdminClient | Consumer | Producer] = []

    def __call__(self, err: KafkaError) -> None:
        self.seen.append(err)

    def watch(self, client: _C) -> _C:
        self.clients.append(client)
        return client

    def drain(self) -> None:
        """Serve the clients' queued callbacks: librdkafka reports a refused login through
        `error_cb`, which runs only in a poll, while the call itself fails as a transport
        error. (Called only on the way out of a failure: records polled here are dropped.)"""
        for client in self.clients:
            with contextlib.suppress(KafkaException, RuntimeError):
                client.poll(0.2)

    def auth_failed(self) -> bool:
        return any(e.code() == KafkaError._AUTHENTICATION for e in self.seen)

    def describe(self) -> str:
        return str(self.seen[-1].str()) if self.seen else ""


def _explain(exc: KafkaException, access: KafkaAccess, what: str, errors: _Errors) -> KdemoError:
    errors.drain()
    err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    code = err.code() if err is not None else None
    text = err.str() if err is not None else str(exc)
    if errors.auth_failed() or code == KafkaError._AUTHENTICATION:
        return KdemoError(
            f"the bus at {access.bootstrap} refused the login of {access.user!r} while {what}",
            "the stack's secrets and the broker's SCRAM users differ: run `kdemo up` again",
        )
    if code in (
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    ):
        return KdemoError(
            f"the bus refused {access.user!r} while {what}: {text}",
            "the user's ACLs come from the topology (kdemo/runtime/kafkaconfig.py)",
        )
    if code in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN):
        detail = errors.describe() or text
        return KdemoError(f"the bus at {access.bootstrap} does not answer ({detail})", _HINT)
    return KdemoError(f"the bus failed while {what}: {text}", _HINT)


@contextlib.contextmanager
def _wrapped(access: KafkaAccess, what: str, errors: _Errors) -> Iterator[None]:
    try:
        yield
    except KafkaException as exc:
        raise _explain(exc, access, what, errors) from exc
    except (BufferError, OSError, concurrent.futures.TimeoutError) as exc:
        raise KdemoError(
            f"the bus failed while {what} ({type(exc).__name__}: {exc})", _HINT
        ) from exc


def _config(access: KafkaAccess, errors: _Errors, **extra: Any) -> dict[str, Any]:
    config = client_config(access)
    config["error_cb"] = errors
    config.update({key.replace("_", "."): value for key, value in extra.items()})
    return config


def _admin(access: KafkaAccess, errors: _Errors) -> AdminClient:
    client = errors.watch(AdminClient(_config(access, errors)))
    with _wrapped(access, "connecting", errors):
        client.list_topics(timeout=TIMEOUT_S)
    return client


def _consumer(access: KafkaAccess, errors: _Errors) -> Consumer:
    """A consumer outside any group: it is assigned partitions at explicit offsets and
    commits nothing, so it leaves no offsets and needs no group ACL. librdkafka insists on
    a `group.id` even so; `kdemo-<user>-reader` is one that no ACL grants."""
    return errors.watch(
        Consumer(
            _config(
                access,
                errors,
                group_id=f"kdemo-{access.user}-reader",
                enable_auto_commit=False,
                enable_auto_offset_store=False,
                isolation_level="read_committed",
            )
        )
    )


async def _in_thread(fn: Callable[..., _T], *args: Any) -> _T:
    return await asyncio.to_thread(fn, *args)


# -- provisioning -----------------------------------------------------------------------------

_OPERATIONS = {
    "read": AclOperation.READ,
    "write": AclOperation.WRITE,
    "describe": AclOperation.DESCRIBE,
    "idempotent_write": AclOperation.IDEMPOTENT_WRITE,
}
_KINDS = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "cluster": ResourceType.BROKER}


def _binding(rule: Acl) -> AclBinding:
    return AclBinding(
        _KINDS[rule.kind],
        rule.name,
        ResourcePatternType.LITERAL,
        rule.principal,
        "*",
        _OPERATIONS[rule.operation],
        AclPermissionType.ALLOW,
    )


def _rule(binding: AclBinding) -> Acl | None:
    """The rule an ACL on the broker is, if it is of the kind kafkaconfig makes."""
    kinds = {v: k for k, v in _KINDS.items()}
    operations = {v: k for k, v in _OPERATIONS.items()}
    if (
        binding.resource_pattern_type != ResourcePatternType.LITERAL
        or binding.permission_type != AclPermissionType.ALLOW
        or binding.host != "*"
        or not binding.principal.startswith("User:")
        or binding.restype not in kinds
        or binding.operation not in operations
    ):
        return None
    return Acl(
        binding.principal.removeprefix("User:"),
        kinds[binding.restype],  # type: ignore[arg-type]
        binding.name,
        operations[binding.operation],  # type: ignore[arg-type]
    )


def _all_acls_filter() -> AclBindingFilter:
    anything: Any = None  # a None field of a filter matches every value (typed as str)
    return AclBindingFilter(
        ResourceType.ANY,
        anything,
        ResourcePatternType.ANY,
        anything,
        anything,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )


def _ensure_topics(admin: AdminClient, retention_s: int) -> list[str]:
    present = set(admin.list_topics(timeout=TIMEOUT_S).topics)
    missing = [s for s in kafkaconfig.topic_specs(retention_s) if s.name not in present]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, kafkaconfig.REPLICATION, config=s.config) for s in missing],
        operation_timeout=TIMEOUT_S,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(TIMEOUT_S * 2)
            created.append(name)
        except KafkaException as exc:  # made meanwhile by another admin: kept as it is
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return sorted(created)


def _can_login(bootstrap: str, user: str, password: str) -> bool:
    """Whether `user` authenticates with `password` (a metadata request as that user)."""
    errors = _Errors()
    access = KafkaAccess(bootstrap, user, password)
    client = errors.watch(AdminClient(_config(access, errors)))
    try:
        client.list_topics(timeout=TIMEOUT_S)
    except KafkaException as exc:
        errors.drain()
        if errors.auth_failed() or exc.args[0].code() == KafkaError._AUTHENTICATION:
            return False
        raise
    return not errors.auth_failed()


def _ensure_users(admin: AdminClient, bootstrap: str, passwords: Mapping[str, str]) -> list[str]:
    users = sorted(u for u in passwords if u != kafkaconfig.ADMIN_USER)
    if not users:
        return []
    described = admin.describe_user_scram_credentials(users)
    assert isinstance(described, dict)
    stale = []
    for user, future in sorted(described.items()):
        try:
            info = future.result(TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.RESOURCE_NOT_FOUND:
                raise
            stale.append(user)
            continue
        mechanisms = {c.mechanism for c in info.scram_credential_infos}
        if ScramMechanism.SCRAM_SHA_512 not in mechanisms or not _can_login(
            bootstrap, user, passwords[user]
        ):
            stale.append(user)
    if not stale:
        return []
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts: list[Any] = [
        UserScramCredentialUpsertion(u, info, passwords[u].encode()) for u in stale
    ]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(TIMEOUT_S)
    return stale


def _broker_rules(admin: AdminClient) -> dict[Acl | None, list[AclBinding]]:
    found: dict[Acl | None, list[AclBinding]] = {}
    bindings = admin.describe_acls(_all_acls_filter()).result(TIMEOUT_S)
    for binding in bindings:
        found.setdefault(_rule(binding), []).append(binding)
    return found


def _ensure_acls(admin: AdminClient) -> tuple[int, int]:
    wanted = set(kafkaconfig.all_acls())
    managed = {f"User:{u}" for u in kafkaconfig.kafka_users()}
    present = _broker_rules(admin)
    missing = sorted(wanted - set(present))
    stale = [
        b
        for rule, bindings in present.items()
        if rule not in wanted
        for b in bindings
        if b.principal in managed
    ]
    if missing:
        for future in admin.create_acls([_binding(r) for r in missing]).values():
            future.result(TIMEOUT_S)
    if stale:
        filters = [
            AclBindingFilter(
                b.restype,
                b.name,
                b.resource_pattern_type,
                b.principal,
                b.host,
                b.operation,
                b.permission_type,
            )
            for b in stale
        ]
        for future in admin.delete_acls(filters).values():
            future.result(TIMEOUT_S)
    # The broker's authorizer applies ACLs from the metadata log a moment after the
    # controller commits them; return once it answers with all of them, so that a service
    # started next is not refused.
    deadline = time.monotonic() + TIMEOUT_S * 3
    while missing and not wanted <= set(_broker_rules(admin)):
        if time.monotonic() > deadline:
            raise KdemoError("the broker did not apply the bus's ACLs in time", _HINT)
        time.sleep(0.1)
    return len(missing), len(stale)


def _provision_sync(
    bootstrap: str, admin_password: str, passwords: Mapping[str, str], retention_s: int
) -> ProvisionReport:
    errors = _Errors()
    access = KafkaAccess(bootstrap, kafkaconfig.ADMIN_USER, admin_password)
    admin = _admin(access, errors)
    report = ProvisionReport()
    with _wrapped(access, "creating the topics", errors):
        report.topics_created = _ensure_topics(admin, retention_s)
    with _wrapped(access, "adding the SCRAM users", errors):
        report.users_upserted = _ensure_users(admin, bootstrap, passwords)
    with _wrapped(access, "setting the ACLs", errors):
        report.acls_created, report.acls_deleted = _ensure_acls(admin)
    return report


async def provision(
    bootstrap: str,
    admin_password: str,
    passwords: Mapping[str, str],
    *,
    retention_s: int | None = None,
) -> ProvisionReport:
    """Bring the broker up to date with the topology, as the admin; idempotent.

    Creates the missing topics (existing ones are kept as they are, partitions and
    configuration included), upserts the SCRAM-SHA-512 credential of every user in
    `passwords` that is missing or no longer logs in with its password (a data directory
    formatted with fewer users, or a changed secret), creates the missing ACLs and deletes
    the bus users' ACLs that the topology no longer gives. `retention_s` defaults to twice
    the intent TTL, as the JetStream stream's max_age.
    """
    if retention_s is None:
        from kdemo.runtime.busadmin import intent_ttl  # late: busadmin imports nats

        retention_s = 2 * intent_ttl()
    return await _in_thread(_provision_sync, bootstrap, admin_password, passwords, retention_s)


# -- dead letters -----------------------------------------------------------------------------


def _slot_base() -> int:
    digits = len(str(len(kafkaconfig.consumed_events())))
    return int(10**digits)


def _seq(dlq_topic: str, offset: int) -> int:
    """The number `kdemo dlq list` shows: the offset, then the topic's slot in its last
    digit(s) (1 for the first dead-letter topic in kafkaconfig.consumed_events() order)."""
    slot: int = kafkaconfig.consumed_events().index(kafkaconfig.event_of_topic(dlq_topic)) + 1
    return offset * _slot_base() + slot


def _address(seq: int) -> tuple[str, int] | None:
    """(dead-letter topic, offset) of a listed number, None when it names no topic."""
    events = kafkaconfig.consumed_events()
    offset, slot = divmod(seq, _slot_base())
    if not 1 <= slot <= len(events):
        return None
    return kafkaconfig.dlq_topic(events[slot - 1]), offset


def _marker_key(msg: Message) -> str:
    return f"{msg.topic()}:{msg.partition()}:{msg.offset()}"


def _header(msg: Message, name: str) -> str:
    for key, value in headers_of(msg):
        if key.lower() == name.lower():
            return value.decode(errors="replace")
    return ""


def _read_all(consumer: Consumer, topics: Sequence[str]) -> list[Message]:
    """Every record in `topics` up to their ends now (read committed), in partition order."""
    try:
        return read_to_end(consumer, topics, TIMEOUT_S)
    except TimeoutError as exc:
        raise KdemoError("reading the dead letters took too long", _HINT) from exc


def _dead_letter(msg: Message) -> DeadLetter:
    event: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        parsed = json.loads(msg.value() or b"")
        if isinstance(parsed, dict):
            event = parsed
    topic = str(msg.topic())
    # From the dead-letter topic's own name, never from the header the dead-lettering
    # service wrote: a replay is produced by the admin, who may write any topic.
    original = kafkaconfig.topic(kafkaconfig.event_of_topic(topic))
    _kind, stamp = msg.timestamp()
    return DeadLetter(
        seq=_seq(topic, int(msg.offset() or 0)),
        subject=topic,
        original_subject=original,
        consumer=_header(msg, DLQ_CONSUMER_HEADER),
        reason=_header(msg, DLQ_REASON_HEADER),
        event_id=str(event.get("id", "")),
        event_type=str(event.get("type", "")),
        time=stamp / 1000 if stamp > 0 else 0.0,
    )


def _pending_letters(consumer: Consumer) -> list[tuple[DeadLetter, Message]]:
    replayed = {
        (m.key() or b"").decode() for m in _read_all(consumer, [kafkaconfig.REPLAYED_TOPIC])
    }
    dlq_topics = [kafkaconfig.dlq_topic(e) for e in kafkaconfig.consumed_events()]
    letters = []
    for msg in _read_all(consumer, dlq_topics):
        if _marker_key(msg) not in replayed:
            letters.append((_dead_letter(msg), msg))
    return sorted(letters, key=lambda pair: (pair[0].time, pair[0].seq))


def _dlq_list_sync(access: KafkaAccess) -> list[DeadLetter]:
    errors = _Errors()
    consumer = _consumer(access, errors)
    try:
        with _wrapped(access, "reading the dead letters", errors):
            return [letter for letter, _msg in _pending_letters(consumer)]
    finally:
        consumer.close()


async def dlq_list(admin: KafkaAccess) -> list[DeadLetter]:
    """Every dead letter not replayed yet, oldest first."""
    return await _in_thread(_dlq_list_sync, admin)


def _replay_sync(access: KafkaAccess, seqs: list[int] | None) -> int:
    errors = _Errors()
    wanted = None if seqs is None else {a for a in map(_address, seqs) if a is not None}
    producer = errors.watch(
        Producer(
            _config(
                access,
                errors,
                transactional_id=REPLAY_TRANSACTION_ID,
                enable_idempotence=True,
                acks="all",
            )
        )
    )
    consumer = _consumer(access, errors)
    try:
        with _wrapped(access, "replaying the dead letters", errors):
            # First: a replay still running elsewhere is fenced now, before we read markers.
            producer.init_transactions(TIMEOUT_S * 3)
            chosen = [
                (letter, msg)
                for letter, msg in _pending_letters(consumer)
                if wanted is None or (letter.subject, msg.offset()) in wanted
            ]
            if not chosen:
                return 0
            producer.begin_transaction()
            try:
                for letter, msg in chosen:
                    headers: Headers = [
                        (k, v) for k, v in headers_of(msg) if k not in _NOT_REPLAYED
                    ]
                    headers.append((REPLAY_OF_HEADER, _marker_key(msg).encode()))
                    producer.produce(
                        letter.original_subject, msg.value(), msg.key(), headers=headers
                    )
                    marker = {"time": time.time(), "to": letter.original_subject}
                    producer.produce(
                        kafkaconfig.REPLAYED_TOPIC,
                        json.dumps(marker).encode(),
                        _marker_key(msg).encode(),
                    )
                producer.commit_transaction(TIMEOUT_S * 3)
            except BaseException:
                with contextlib.suppress(KafkaException):
                    producer.abort_transaction(TIMEOUT_S)
                raise
            return len(chosen)
    finally:
        consumer.close()
        producer.flush(1)


async def dlq_replay(admin: KafkaAccess, seqs: list[int] | None = None) -> int:
    """Republish dead letters (all when `seqs` is None) to their original topics, once.

    Returns how many were replayed. Each republished record keeps the dead letter's key
    (so it lands on the partition its intent or link uses) and its original headers; the
    replay and its marker in `kdemo.admin.replayed` commit in one transaction, so a second
    replay of the same number does nothing.
    """
    return await _in_thread(_replay_sync, admin, seqs)


# -- the tap ----------------------------------------------------------------------------------


class _Tap:
    """The tap's consumer and how far it is through each partition; one thread uses it."""

    def __init__(self, access: KafkaAccess, deliver_all: bool) -> None:
        self.access = access
        self.errors = _Errors()
        self.consumer = _consumer(access, self.errors)
        with _wrapped(access, "starting the tap", self.errors):
            metadata = self.consumer.list_topics(timeout=TIMEOUT_S)
            names = sorted(t for t in metadata.topics if _tapped(t))
            if not names:
                raise KdemoError(
                    f"the tap user {access.user!r} sees no topic of the bus",
                    "the bus is not provisioned yet, or the tap's ACLs are missing",
                )
            where = partitions_of(self.consumer, names, TIMEOUT_S)
            self.progress = Progress.measure(
                self.consumer, where, TIMEOUT_S, from_end=not deliver_all
            )
            start = OFFSET_BEGINNING if deliver_all else OFFSET_END
            self.consumer.assign([TopicPartition(*w, start) for w in where])

    def poll(self) -> list[TapEvent]:
        with _wrapped(self.access, "tapping the bus", self.errors):
            records = []
            for msg in self.consumer.consume(200, 0.5):
                error = msg.error()
                if error is not None:
                    if error.code() in IGNORED_BY_READERS:
                        continue
                    raise KafkaException(error)
                where = (str(msg.topic()), int(msg.partition() or 0))
                _low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(*where), cached=True
                )
                self.progress.extend(where, high)
                self.progress.took(msg)
                records.append(msg)
            self.progress.observe(self.consumer)
            # What is left after the batch, plus the batch's records after each one.
            left = self.progress.behind()
            return [_tap_event(msg, left + len(records) - n) for n, msg in enumerate(records, 1)]

    def close(self) -> None:
        with contextlib.suppress(KafkaException, RuntimeError):
            self.consumer.close()


def _tap_event(msg: Message, pending: int) -> TapEvent:
    raw = msg.value() or b""
    event: dict[str, Any] | None = None
    with contextlib.suppress(ValueError):
        parsed = json.loads(raw)
        event = parsed if isinstance(parsed, dict) else None
    _kind, stamp = msg.timestamp()
    return TapEvent(
        subject=str(msg.topic()),
        seq=int(msg.offset() or 0),
        time=stamp / 1000 if stamp > 0 else time.time(),
        headers={k: v.decode(errors="replace") for k, v in headers_of(msg)},
        event=event,
        raw=raw,
        pending=pending,
    )


def _tapped(name: str) -> bool:
    try:
        kafkaconfig.event_of_topic(name)
    except KeyError:
        return False
    return True


async def tap(tap_user: KafkaAccess, *, deliver_all: bool = True) -> AsyncGenerator[TapEvent, None]:
    """Every record on the event and dead-letter topics, read-only.

    With `deliver_all` every retained record first (each partition from its beginning),
    else only records produced from now on. The consumer has no group: it is assigned every
    partition itself and commits nothing, so the tap leaves no offsets behind. Records of
    one partition come in order; partitions interleave as they are fetched. `seq` is the
    record's offset in its partition, `pending` how many records the tap has yet to read.
    """
    loop = asyncio.get_running_loop()
    thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kdemo-kafka-tap")
    reader: _Tap | None = None
    try:
        reader = await loop.run_in_executor(thread, _Tap, tap_user, deliver_all)
        while True:
            for event in await loop.run_in_executor(thread, reader.poll):
                yield event
    finally:
        if reader is not None:
            thread.submit(reader.close)  # in its thread, after a poll still running
        thread.shutdown(wait=False)
