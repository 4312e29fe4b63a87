"""What every Kafka client of kdemo shares: the services' bus (`kafka_bus`) and the
runtime's admin, dead-letter tools and tap (`kdemo.runtime.kafkaadmin`).

The librdkafka settings, the header names of a record and of a dead letter, reading a
record's headers, and reading partitions to their end. It lives with the services because
kdemo imports the services' code, never the reverse.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from .bus import DLQ_CONSUMER_HEADER, DLQ_REASON_HEADER

__all__ = [
    "DEAD_LETTER_HEADERS",
    "EVENT_ID_HEADER",
    "IGNORED_BY_READERS",
    "ORIGINAL_TOPIC_HEADER",
    "Headers",
    "Progress",
    "Where",
    "client_config",
    "headers_of",
    "partitions_of",
    "read_to_end",
]

EVENT_ID_HEADER: Final = "Kdemo-Event-Id"
"""The event's id on every record: the consumers' dedupe key (as `Nats-Msg-Id`)."""
ORIGINAL_TOPIC_HEADER: Final = "Kdemo-Original-Topic"
DEAD_LETTER_HEADERS: Final = (DLQ_REASON_HEADER, DLQ_CONSUMER_HEADER, ORIGINAL_TOPIC_HEADER)
"""What dead-lettering adds to a record's headers (and a replay takes off again)."""
IGNORED_BY_READERS: Final = (KafkaError._PARTITION_EOF, KafkaError.GROUP_AUTHORIZATION_FAILED)
"""Errors a reader outside any group is told and ignores: librdkafka looks up the
coordinator of its nominal `group.id`, which a user without that group's ACL is refused;
the reader never uses the group."""

Headers = list[tuple[str, str | bytes | None]]
Where = tuple[str, int]
"""(topic, partition)."""


def client_config(
    bootstrap: str, user: str | None, password: str | None, *, logger: logging.Logger
) -> dict[str, Any]:
    """librdkafka settings for one user: SCRAM-SHA-512 over SASL_PLAINTEXT (no SASL when no
    user is given), librdkafka's logs to `logger` rather than the terminal, and no endless
    reconnecting to a broker that is gone."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": f"kdemo-{user or 'anonymous'}",
        "logger": logger,
        "socket.connection.setup.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 1000,
    }
    if user is not None:
        config |= {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": user,
            "sasl.password": password or "",
        }
    return config


def headers_of(msg: Message) -> list[tuple[str, bytes]]:
    """A record's headers as (name, bytes) pairs, in order (an empty value is b"")."""
    raw = msg.headers() or []
    pairs = list(raw.items()) if isinstance(raw, dict) else raw
    return [(k, v.encode() if isinstance(v, str) else v or b"") for k, v in pairs]


def partitions_of(consumer: Consumer, topics: Iterable[str], timeout_s: float) -> list[Where]:
    """Every partition of those of `topics` the broker lists (and lets this user describe)."""
    metadata = consumer.list_topics(timeout=timeout_s)
    return [
        (name, partition)
        for name in topics
        if name in metadata.topics and metadata.topics[name].error is None
        for partition in metadata.topics[name].partitions
    ]


@dataclass
class Progress:
    """How far a reader outside any group is through its partitions: each one's end (the
    high watermark, raised as the reader learns of later ones) and the offset it reads next.

    A partition is caught up once that offset reaches its end. The reader's *position*
    counts, not only the records it received: a transaction's commit marker (a replayed
    dead letter ends with one) takes an offset no consumer ever receives, so counting
    records alone would leave the partition one short for ever."""

    ends: dict[Where, int] = field(default_factory=dict)
    next: dict[Where, int] = field(default_factory=dict)

    @classmethod
    def measure(
        cls, consumer: Consumer, where: Iterable[Where], timeout_s: float, *, from_end: bool = False
    ) -> Progress:
        """The partitions' ends now; the reader starts at their beginning (or their end)."""
        progress = cls()
        for name, partition in where:
            tp = TopicPartition(name, partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
            progress.ends[(name, partition)] = high
            progress.next[(name, partition)] = high if from_end else low
        return progress

    def took(self, msg: Message) -> None:
        """The reader received `msg`."""
        where = (str(msg.topic()), int(msg.partition() or 0))
        self.next[where] = max(self.next.get(where, 0), int(msg.offset() or 0) + 1)

    def extend(self, where: Where, end: int) -> None:
        """The partition has grown to `end` (a negative end is librdkafka's "unknown")."""
        if end >= 0:
            self.ends[where] = max(self.ends.get(where, 0), end)

    def observe(self, consumer: Consumer) -> None:
        """Take the reader's positions of the partitions not caught up: past any marker."""
        behind = [TopicPartition(*w) for w, end in self.ends.items() if self.next.get(w, 0) < end]
        if not behind:
            return
        for tp in consumer.position(behind):
            if tp.offset >= 0:  # librdkafka's "no position yet" is negative
                where = (tp.topic, tp.partition)
                self.next[where] = max(self.next.get(where, 0), tp.offset)

    def behind(self) -> int:
        """How many offsets the reader has yet to go past."""
        return sum(max(0, end - self.next.get(w, 0)) for w, end in self.ends.items())

    @property
    def caught_up(self) -> bool:
        return self.behind() == 0


def read_to_end(consumer: Consumer, topics: Sequence[str], timeout_s: float) -> list[Message]:
    """Every record of `topics` up to their ends now, in partition order, for a consumer
    outside any group (read committed). KafkaException for a record's error; TimeoutError
    when the ends are not reached within three times `timeout_s`."""
    progress = Progress.measure(consumer, partitions_of(consumer, topics, timeout_s), timeout_s)
    if progress.caught_up:
        return []
    consumer.assign([TopicPartition(*w, progress.next[w]) for w in progress.ends])
    found: list[Message] = []
    deadline = time.monotonic() + timeout_s * 3
    while not progress.caught_up:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {', '.join(topics)} to the end took too long")
        for msg in consumer.consume(500, 0.5):
            error = msg.error()
            if error is not None:
                if error.code() in IGNORED_BY_READERS:
                    continue
                raise KafkaException(error)
            found.append(msg)
            progress.took(msg)
        progress.observe(consumer)
    consumer.unassign()
    return found
