"""Kafka topics, consumer groups and ACLs, derived from the topology (shared by all runtimes).

Pure data, like `natsconfig` for NATS: `kafkaadmin` turns it into topics, ACLs and SCRAM
users on a broker. The rules mirror the NATS users':

- one topic per event, `kdemo.<event>` (`kdemo.bounty.requested`), written only by the
  event's owner; one dead-letter topic per consumed event, `kdemo.dlq.<event>`, written
  only by the services that consume that event;
- one consumer group per consuming service, named as its JetStream durable
  (`topology.CONSUMERS`), which only that service may use;
- a service reads only the topics it consumes (plus frontend reads back what it publishes,
  `topology.read_back_events`, to tell a repeated post from a new or conflicting one);
- the `tap` user reads every event and dead-letter topic but holds no group ACL, so it can
  commit nothing: it assigns partitions itself and keeps no offsets;
- `admin` is the broker's super user (`super.users`) and needs no ACL.

Operations are granted explicitly with DESCRIBE beside READ and WRITE (Kafka would imply
it), so that the list reads as the permissions it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from kdemo import topology

__all__ = [
    "ADMIN_USER",
    "CLUSTER",
    "DLQ_PARTITIONS",
    "DLQ_PREFIX",
    "PARTITIONS",
    "REPLAYED_TOPIC",
    "TAP_USER",
    "TOPIC_PREFIX",
    "Acl",
    "TopicSpec",
    "acls",
    "all_acls",
    "bus_services",
    "dlq_topic",
    "event_of_topic",
    "group_of",
    "groups",
    "kafka_users",
    "topic",
    "topic_specs",
]

ADMIN_USER: Final = "admin"
TAP_USER: Final = "tap"
TOPIC_PREFIX: Final = topology.TOPIC_PREFIX
DLQ_PREFIX: Final = topology.DLQ_PREFIX
REPLAYED_TOPIC: Final = "kdemo.admin.replayed"
"""Compacted; one record per replayed dead letter (key `<dlq topic>:<partition>:<offset>`),
written by the admin in the same transaction as the republished event. Not under
`kdemo.dlq.` (the tap and `TapEvent.dead_lettered` take that prefix for dead letters) and
readable by the admin only."""
PARTITIONS: Final = 3
"""Per event topic. Records are keyed by the intent id (bounty events) or the link code
(identity events), so the events of one intent or link stay in order on one partition while
up to three consumers of a group (replicas of a service) can share the work. Three, not
more: a partition costs the single node files and a little memory, the demo's rate is a
few events a second, and more partitions than consumers only leave some idle. Raising it
later is possible (never lowering) but moves keys to other partitions, so order per key
holds only for records produced afterwards."""
DLQ_PARTITIONS: Final = 1
"""Dead letters are rare and their order does not matter; one partition makes
(topic, offset) the address of a dead letter, from which its listed number is made."""
REPLICATION: Final = 1
"""One broker."""
CLUSTER: Final = "kafka-cluster"
"""The name of Kafka's one CLUSTER resource (IDEMPOTENT_WRITE is granted on it)."""

ResourceKind = Literal["topic", "group", "cluster"]
Operation = Literal["read", "write", "describe", "idempotent_write"]


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW rule: `user` may do `operation` on the resource of that kind and name
    (a literal name, never a prefix or a wildcard)."""

    user: str
    kind: ResourceKind
    name: str
    operation: Operation

    @property
    def principal(self) -> str:
        return f"User:{self.user}"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


def topic(event: str) -> str:
    """`bounty.requested` → `kdemo.bounty.requested` (the services' name, from the topology)."""
    return topology.topic(event)


def dlq_topic(event: str) -> str:
    """`bounty.requested` → `kdemo.dlq.bounty.requested` (from the topology)."""
    return topology.dlq_topic(event)


def event_of_topic(name: str) -> str:
    """The event an event or dead-letter topic carries (KeyError for any other topic)."""
    for prefix in (DLQ_PREFIX, TOPIC_PREFIX):
        if name.startswith(prefix) and name.removeprefix(prefix) in topology.EVENT_NAMES:
            return name.removeprefix(prefix)
    raise KeyError(f"{name!r} is not a topic of the topology")


def bus_services() -> tuple[str, ...]:
    """Services that publish or consume events, in topology order."""
    return tuple(dict.fromkeys(e.source for e in topology.EDGES if e.publishes or e.consumes))


def consumed_events() -> tuple[str, ...]:
    """Every event some service consumes (each has a dead-letter topic), sorted."""
    return tuple(sorted({name for c in topology.CONSUMERS for name in c.events}))


def group_of(service: str) -> str | None:
    """The consumer group of `service` (its JetStream durable's name), if it consumes."""
    try:
        return topology.consumer_group(service)
    except KeyError:
        return None


def groups() -> dict[str, tuple[str, ...]]:
    """Consumer group → the topics it subscribes to."""
    return {c.durable: tuple(topic(e) for e in c.events) for c in topology.CONSUMERS}


def topic_specs(retention_s: int) -> list[TopicSpec]:
    """Every topic the bus needs: events, dead letters and the replay markers.

    `retention_s` plays the JetStream stream's `max_age`: records older than that are
    deleted (the local runtime passes twice the intent TTL, as for the stream).
    """
    retention = {"retention.ms": str(retention_s * 1000), "cleanup.policy": "delete"}
    specs = [TopicSpec(topic(e), PARTITIONS, dict(retention)) for e in topology.EVENT_NAMES]
    specs += [TopicSpec(dlq_topic(e), DLQ_PARTITIONS, dict(retention)) for e in consumed_events()]
    specs.append(
        TopicSpec(
            REPLAYED_TOPIC,
            1,
            # compacted: one marker per dead letter; markers of dead letters deleted by
            # retention are deleted with the same retention
            {"retention.ms": str(retention_s * 1000), "cleanup.policy": "compact,delete"},
        )
    )
    return specs


def _grant(user: str, kind: ResourceKind, names: Iterable[str], *ops: Operation) -> list[Acl]:
    return [Acl(user, kind, name, op) for name in names for op in ops]


def _reads_own(service: str) -> tuple[str, ...]:
    # frontend reads its own events back (topology.read_back_events): its signatures, to
    # tell a repeat (200) from a conflicting signature (409), as the direct get on NATS; and
    # its link requests, to tell a replayed nonce (409), as the duplicate window on NATS.
    return topology.read_back_events(service)


def _service_acls(service: str) -> list[Acl]:
    published = topology.published_events(service)
    consumed = topology.consumed_events(service)
    out = _grant(service, "topic", (topic(e) for e in published), "write", "describe")
    out += _grant(service, "topic", (dlq_topic(e) for e in consumed), "write", "describe")
    if published or consumed:
        out.append(Acl(service, "cluster", CLUSTER, "idempotent_write"))
    out += _grant(service, "topic", (topic(e) for e in consumed), "read", "describe")
    out += _grant(service, "topic", (topic(e) for e in _reads_own(service)), "read")
    group = group_of(service)
    if group is not None:
        out += _grant(service, "group", [group], "read", "describe")
    return out


def _tap_acls() -> list[Acl]:
    names = [topic(e) for e in topology.EVENT_NAMES] + [dlq_topic(e) for e in consumed_events()]
    return _grant(TAP_USER, "topic", names, "read", "describe")


def acls(user: str) -> list[Acl]:
    """The ALLOW rules of one user, sorted (none for the admin: it is the super user)."""
    if user == ADMIN_USER:
        return []
    if user == TAP_USER:
        return sorted(set(_tap_acls()))
    if user not in bus_services():
        raise KeyError(
            f"{user!r} is not a bus user; known: "
            f"{', '.join((ADMIN_USER, TAP_USER, *bus_services()))}"
        )
    return sorted(set(_service_acls(user)))


def kafka_users() -> tuple[str, ...]:
    """Every SCRAM user of the bus: the admin, the tap and each bus service."""
    return (ADMIN_USER, TAP_USER, *bus_services())


def all_acls(users: Iterable[str] | None = None) -> list[Acl]:
    """The rules of `users` (every bus user by default), sorted."""
    chosen = kafka_users() if users is None else tuple(users)
    return sorted({rule for user in chosen for rule in acls(user)})
