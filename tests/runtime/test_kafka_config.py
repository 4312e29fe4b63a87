"""Kafka topics, groups and ACLs derived from the topology (kdemo.runtime.kafkaconfig)."""

from __future__ import annotations

import pytest

from kdemo import topology
from kdemo.runtime import kafkaadmin, kafkaconfig
from kdemo.runtime.kafkaconfig import Acl


def _can(user: str, kind: str, name: str, operation: str) -> bool:
    return Acl(user, kind, name, operation) in kafkaconfig.acls(user)  # type: ignore[arg-type]


def test_topic_names_come_from_event_names() -> None:
    assert kafkaconfig.topic("bounty.requested") == "kdemo.bounty.requested"
    assert kafkaconfig.dlq_topic("bounty.requested") == "kdemo.dlq.bounty.requested"
    assert kafkaconfig.event_of_topic("kdemo.dlq.identity.linked") == "identity.linked"
    assert kafkaconfig.event_of_topic("kdemo.bounty.signed") == "bounty.signed"
    with pytest.raises(KeyError):
        kafkaconfig.event_of_topic(kafkaconfig.REPLAYED_TOPIC)


def test_topic_specs() -> None:
    specs = {s.name: s for s in kafkaconfig.topic_specs(retention_s=3600)}
    for event in topology.EVENT_NAMES:
        assert specs[f"kdemo.{event}"].partitions == kafkaconfig.PARTITIONS == 3
        assert specs[f"kdemo.{event}"].config["retention.ms"] == "3600000"
    consumed = {e for c in topology.CONSUMERS for e in c.events}
    dlq = {n for n in specs if n.startswith(kafkaconfig.DLQ_PREFIX)}
    assert dlq == {f"kdemo.dlq.{e}" for e in consumed}
    assert all(specs[n].partitions == 1 for n in dlq)
    replayed = specs[kafkaconfig.REPLAYED_TOPIC]
    assert "compact" in replayed.config["cleanup.policy"]
    assert not kafkaconfig.REPLAYED_TOPIC.startswith(kafkaconfig.DLQ_PREFIX)


def test_groups_are_the_durables() -> None:
    assert kafkaconfig.groups() == {
        "gateway": ("kdemo.bounty.requested", "kdemo.bounty.signed"),
        "identity": ("kdemo.identity.link_requested", "kdemo.identity.link_confirmed"),
    }
    assert kafkaconfig.group_of("frontend") is None


def test_gateway_writes_its_own_event_only() -> None:
    assert _can("gateway", "topic", "kdemo.bounty.recorded", "write")
    assert not _can("gateway", "topic", "kdemo.bounty.signed", "write")
    assert not _can("gateway", "topic", "kdemo.bounty.requested", "write")
    assert _can("gateway", "topic", "kdemo.dlq.bounty.requested", "write")
    assert _can("gateway", "topic", "kdemo.dlq.bounty.signed", "write")
    assert not _can("gateway", "topic", "kdemo.dlq.identity.link_requested", "write")
    assert _can("gateway", "cluster", kafkaconfig.CLUSTER, "idempotent_write")


def test_gateway_reads_what_it_consumes_with_its_own_group() -> None:
    assert _can("gateway", "topic", "kdemo.bounty.requested", "read")
    assert _can("gateway", "topic", "kdemo.bounty.signed", "read")
    assert not _can("gateway", "topic", "kdemo.bounty.recorded", "read")
    assert not _can("gateway", "topic", "kdemo.dlq.bounty.requested", "read")
    groups = {a.name for a in kafkaconfig.acls("gateway") if a.kind == "group"}
    assert groups == {"gateway"}


def test_every_event_is_written_by_its_owner_alone() -> None:
    for event in topology.EVENT_NAMES:
        writers = {
            a.user
            for a in kafkaconfig.all_acls()
            if a.name == kafkaconfig.topic(event) and a.operation == "write"
        }
        assert writers == {topology.event_owner(event)}, event


def test_dead_letters_are_written_by_their_consumers_alone() -> None:
    for event in kafkaconfig.consumed_events():
        writers = {
            a.user
            for a in kafkaconfig.all_acls()
            if a.name == kafkaconfig.dlq_topic(event) and a.operation == "write"
        }
        consumers = {c.service for c in topology.CONSUMERS if event in c.events}
        assert writers == consumers, event


READS: dict[str, set[str]] = {
    "github-app": set(),  # it only publishes (from its outbox)
    # its signatures and link requests, read back to tell a repeat from a conflict
    "frontend": {"kdemo.bounty.signed", "kdemo.identity.link_requested"},
    "gateway": {"kdemo.bounty.requested", "kdemo.bounty.signed"},
    "identity": {"kdemo.identity.link_requested", "kdemo.identity.link_confirmed"},
}
"""What each service may read, written out from what it does (docs/architecture.md), not
from the topology the rules are derived from."""


def test_services_read_only_what_they_consume_or_read_back() -> None:
    assert set(kafkaconfig.bus_services()) == set(READS)
    for service, topics in READS.items():
        read = {a.name for a in kafkaconfig.acls(service) if a.operation == "read"}
        groups = {a.name for a in kafkaconfig.acls(service) if a.kind == "group"}
        assert read - groups == topics, service
        described = {a.name for a in kafkaconfig.acls(service) if a.operation == "describe"}
        assert topics <= described, service


def test_only_consumers_have_a_group() -> None:
    for service in kafkaconfig.bus_services():
        groups = {a.name for a in kafkaconfig.acls(service) if a.kind == "group"}
        assert groups == ({service} if topology.consumed_events(service) else set()), service


def test_tap_reads_every_topic_and_owns_no_group() -> None:
    rules = kafkaconfig.acls("tap")
    assert {a.operation for a in rules} == {"read", "describe"}
    assert {a.kind for a in rules} == {"topic"}
    names = {a.name for a in rules}
    assert {kafkaconfig.topic(e) for e in topology.EVENT_NAMES} <= names
    assert {kafkaconfig.dlq_topic(e) for e in kafkaconfig.consumed_events()} <= names
    assert kafkaconfig.REPLAYED_TOPIC not in names


def test_admin_needs_no_acl_and_strangers_are_refused() -> None:
    assert kafkaconfig.acls("admin") == []
    with pytest.raises(KeyError, match="not a bus user"):
        kafkaconfig.acls("calc")
    assert kafkaconfig.kafka_users() == ("admin", "tap", *kafkaconfig.bus_services())


def test_dead_letter_numbers_round_trip() -> None:
    for event in kafkaconfig.consumed_events():
        for offset in (0, 1, 9, 12345):
            seq = kafkaadmin._seq(kafkaconfig.dlq_topic(event), offset)
            assert kafkaadmin._address(seq) == (kafkaconfig.dlq_topic(event), offset)
    assert kafkaadmin._address(10) is None  # slot 0 names no topic
