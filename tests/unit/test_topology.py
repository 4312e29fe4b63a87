"""The declared topology is consistent, and everything generated from it is fresh."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kdemo import topology
from services.common import events

ROOT = Path(__file__).resolve().parents[2]


def test_every_edge_joins_declared_nodes() -> None:
    """No edge names a node that the topology does not declare."""
    names = {n.name for n in topology.NODES}
    for edge in topology.EDGES:
        assert edge.source in names, edge
        assert edge.target in names, edge


def test_design_edges_are_all_declared() -> None:
    """The fifteen edges of the design table are exactly the declared ones."""
    expected = {
        ("github", "github-app"),
        ("browser", "frontend"),
        ("browser", "gateway"),
        ("github-app", "postgres"),
        ("github-app", "nats"),
        ("github-app", "github-api"),
        ("frontend", "gateway"),
        ("frontend", "identity"),
        ("frontend", "nats"),
        ("gateway", "nats"),
        ("gateway", "postgres"),
        ("gateway", "calc"),
        ("gateway", "identity"),
        ("identity", "nats"),
        ("identity", "postgres"),
    }
    assert {(e.source, e.target) for e in topology.EDGES} == expected


def test_exposed_and_internal_nodes() -> None:
    """github-app, frontend and gateway are public; calc, identity, nats, postgres internal."""
    assert {n.name for n in topology.runtime_nodes() if n.exposed} == {
        "github-app",
        "frontend",
        "gateway",
    }
    assert {n.name for n in topology.internal_nodes()} == {"calc", "identity", "nats", "postgres"}


@pytest.mark.parametrize("name", topology.EVENT_NAMES)
def test_each_event_has_one_publisher_and_a_schema(name: str) -> None:
    """Every published event has exactly one owner and a JSON Schema for its data."""
    owners = [e.source for e in topology.EDGES if name in e.publishes]
    assert len(owners) == 1
    assert name in events.EVENT_NAMES
    assert (ROOT / "services" / "common" / "schemas" / f"{name}.json").is_file()


def test_event_lists_agree() -> None:
    """The services' event list and the topology's are the same set."""
    assert set(events.EVENT_NAMES) == set(topology.EVENT_NAMES)


def test_consumed_events_are_published_by_someone() -> None:
    """A durable consumer never waits for an event nobody publishes."""
    for consumer in topology.CONSUMERS:
        for name in consumer.events:
            assert topology.event_owner(name) != consumer.service
    assert {c.durable for c in topology.CONSUMERS} == {"gateway", "identity"}


def test_owning_services_have_databases() -> None:
    """Every service with an SQL edge owns exactly one database."""
    sql_users = {e.source for e in topology.EDGES if e.protocol is topology.Protocol.SQL}
    owners = {n.name for n in topology.NODES if n.database}
    assert sql_users == owners == {"github-app", "gateway", "identity"}


def test_readme_diagram_is_generated_from_the_topology() -> None:
    """README.md and docs/topology.md hold the diagram the topology generates today."""
    result = subprocess.run(
        [sys.executable, "scripts/gen_diagram.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_bus_views_differ_only_in_the_bus_node() -> None:
    """The module-level names are the NATS view; the Kafka view renames the bus node and
    its edges' target and protocol, and nothing else."""
    nats = topology.for_bus("nats")
    assert (nats.nodes, nats.edges) == (topology.NODES, topology.EDGES)
    kafka = topology.for_bus("kafka")
    assert kafka.bus_node.name == "kafka"
    assert "nats" not in {n.name for n in kafka.nodes}
    assert len(kafka.edges) == len(topology.EDGES)
    for ours, theirs in zip(kafka.edges, topology.EDGES, strict=True):
        if theirs.target == "nats":
            assert (ours.target, ours.protocol) == ("kafka", topology.Protocol.KAFKA)
            assert (ours.publishes, ours.consumes) == (theirs.publishes, theirs.consumes)
        else:
            assert ours == theirs
    assert kafka.bus_edge("gateway").consumes == topology.edge("gateway", "nats").consumes
    assert "Kafka: pub bounty.recorded" in kafka.mermaid()
    with pytest.raises(ValueError, match="unknown bus"):
        topology.for_bus("rabbitmq")
    assert topology.BUSES[0] == "nats"


def test_kafka_names() -> None:
    """Topics, dead-letter topics and consumer groups every part of the Kafka bus uses."""
    assert topology.topic("bounty.requested") == "kdemo.bounty.requested"
    assert topology.dlq_topic("bounty.requested") == "kdemo.dlq.bounty.requested"
    for consumer in topology.CONSUMERS:
        assert topology.consumer_group(consumer.service) == consumer.durable
    with pytest.raises(KeyError):
        topology.consumer_group("frontend")
