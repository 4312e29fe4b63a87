"""The declared topology of kdemo: the single source of truth.

Every node and every edge of the demo is listed here once. The dashboard, the
README diagram, the NATS users' permissions, the JetStream stream and durable
consumers, the Kubernetes NetworkPolicies, the smoke test and the services' own
edge metrics all derive from this module; nothing else lists these edges by hand.

It lives with the services because they label their metrics from it and their image
holds no `kdemo` package; `kdemo.topology` re-exports it (kdemo depends on the
services, never the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from typing import Final, Literal

__all__ = [
    "BUSES",
    "CONSUMERS",
    "DLQ_PREFIX",
    "EDGES",
    "EVENT_NAMES",
    "NODES",
    "STREAM_NAME",
    "STREAM_SUBJECTS",
    "TOPIC_PREFIX",
    "BusName",
    "Consumer",
    "Edge",
    "Node",
    "NodeKind",
    "Protocol",
    "Topology",
    "consumed_events",
    "consumer_group",
    "dlq_topic",
    "edge",
    "edges_from",
    "edges_to",
    "event_owner",
    "for_bus",
    "internal_nodes",
    "mermaid",
    "node",
    "published_events",
    "read_back_events",
    "runtime_nodes",
    "service_nodes",
    "topic",
]


class NodeKind(StrEnum):
    SERVICE = "service"
    BUS = "bus"
    DATABASE = "database"
    EXTERNAL = "external"


class Protocol(StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    GRPC = "gRPC"
    NATS = "NATS"
    KAFKA = "Kafka"
    SQL = "SQL"


@dataclass(frozen=True)
class Node:
    """One box of the diagram: a service, the bus, the database or an external actor."""

    name: str
    kind: NodeKind
    exposed: bool = False
    """Reachable from outside the stack (a public URL is handed to it)."""
    database: str | None = None
    """The database this service owns, if any (one database and one role each)."""
    description: str = ""


@dataclass(frozen=True)
class Edge:
    """One allowed connection: `source` opens it towards `target`."""

    source: str
    target: str
    protocol: Protocol
    what: str
    publishes: tuple[str, ...] = ()
    """Event names this edge publishes (NATS edges only)."""
    consumes: tuple[str, ...] = ()
    """Event names this edge consumes through the source's durable consumer."""
    optional: bool = False
    """Present only when configured (the GitHub API egress)."""
    rpcs: tuple[str, ...] = field(default=())


NODES: Final[tuple[Node, ...]] = (
    Node("github", NodeKind.EXTERNAL, description="GitHub delivering webhooks"),
    Node("browser", NodeKind.EXTERNAL, description="a funder's browser wallet, or the CLI"),
    Node("github-api", NodeKind.EXTERNAL, description="GitHub REST API (optional)"),
    Node(
        "github-app",
        NodeKind.SERVICE,
        exposed=True,
        database="github_app",
        description="verifies webhooks, finds bounties, records intents",
    ),
    Node("frontend", NodeKind.SERVICE, exposed=True, description="signing and identity-link pages"),
    Node(
        "gateway",
        NodeKind.SERVICE,
        exposed=True,
        database="ledger",
        description="the ledger and the public bounty API",
    ),
    Node("calc", NodeKind.SERVICE, description="exact amounts, fees and totals (gRPC)"),
    Node(
        "identity",
        NodeKind.SERVICE,
        database="identity",
        description="links wallets to GitHub accounts (gRPC)",
    ),
    Node("nats", NodeKind.BUS, description="NATS JetStream: the event bus"),
    Node("postgres", NodeKind.DATABASE, description="PostgreSQL: one database per owner"),
)

EDGES: Final[tuple[Edge, ...]] = (
    Edge("github", "github-app", Protocol.HTTP, "POST /webhook"),
    Edge("browser", "frontend", Protocol.HTTP, "pages, signature and link posts"),
    Edge("browser", "gateway", Protocol.HTTP, "public bounty API"),
    Edge(
        "github-app", "postgres", Protocol.SQL, "database github_app: deliveries, intents, outbox"
    ),
    Edge(
        "github-app",
        "nats",
        Protocol.NATS,
        "publishes bounty.requested, identity.link_confirmed",
        publishes=("bounty.requested", "identity.link_confirmed"),
    ),
    Edge(
        "github-app",
        "github-api",
        Protocol.HTTPS,
        "reply comments, only when a token is set",
        optional=True,
    ),
    Edge("frontend", "gateway", Protocol.HTTP, "intent status and totals for the signing page"),
    Edge("frontend", "identity", Protocol.GRPC, "LinkStatus(code)", rpcs=("LinkStatus",)),
    Edge(
        "frontend",
        "nats",
        Protocol.NATS,
        "publishes bounty.signed, identity.link_requested",
        publishes=("bounty.signed", "identity.link_requested"),
    ),
    Edge(
        "gateway",
        "nats",
        Protocol.NATS,
        "consumes bounty.requested, bounty.signed; publishes bounty.recorded",
        publishes=("bounty.recorded",),
        consumes=("bounty.requested", "bounty.signed"),
    ),
    Edge("gateway", "postgres", Protocol.SQL, "database ledger (with outbox)"),
    Edge("gateway", "calc", Protocol.GRPC, "Quote, Summarize", rpcs=("Quote", "Summarize")),
    Edge(
        "gateway",
        "identity",
        Protocol.GRPC,
        "Lookup addresses -> GitHub accounts",
        rpcs=("Lookup",),
    ),
    Edge(
        "identity",
        "nats",
        Protocol.NATS,
        "consumes identity.link_requested, identity.link_confirmed; "
        "publishes identity.linked or identity.link_refused",
        publishes=("identity.linked", "identity.link_refused"),
        consumes=("identity.link_requested", "identity.link_confirmed"),
    ),
    Edge("identity", "postgres", Protocol.SQL, "database identity"),
)

STREAM_NAME: Final = "KDEMO"
STREAM_SUBJECTS: Final = ("kdemo.>",)


@dataclass(frozen=True)
class Consumer:
    """A durable pull consumer on the one stream, owned by one service."""

    durable: str
    service: str
    events: tuple[str, ...]

    @property
    def filter_subjects(self) -> tuple[str, ...]:
        return tuple(f"kdemo.{name}.>" for name in self.events)


def _consumers() -> tuple[Consumer, ...]:
    return tuple(
        Consumer(durable=edge.source, service=edge.source, events=edge.consumes)
        for edge in EDGES
        if edge.consumes
    )


CONSUMERS: Final[tuple[Consumer, ...]] = _consumers()
_EDGE_BY_ENDS: Final[dict[tuple[str, str], Edge]] = {(e.source, e.target): e for e in EDGES}

EVENT_NAMES: Final[tuple[str, ...]] = tuple(
    sorted({name for edge in EDGES for name in edge.publishes})
)


def node(name: str) -> Node:
    for candidate in NODES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def service_nodes() -> tuple[Node, ...]:
    """The five Python services."""
    return tuple(n for n in NODES if n.kind is NodeKind.SERVICE)


def runtime_nodes() -> tuple[Node, ...]:
    """Everything a runtime runs: services, the bus and the database."""
    return tuple(n for n in NODES if n.kind is not NodeKind.EXTERNAL)


def internal_nodes() -> tuple[Node, ...]:
    return tuple(n for n in runtime_nodes() if not n.exposed)


def edges_from(name: str) -> tuple[Edge, ...]:
    return tuple(e for e in EDGES if e.source == name)


def edges_to(name: str) -> tuple[Edge, ...]:
    return tuple(e for e in EDGES if e.target == name)


def edge(source: str, target: str) -> Edge:
    """The declared edge `source` → `target`; a KeyError names an undeclared one."""
    try:
        return _EDGE_BY_ENDS[(source, target)]
    except KeyError:
        raise KeyError(f"no edge {source} -> {target} in the declared topology") from None


def published_events(service: str) -> tuple[str, ...]:
    return tuple(n for e in edges_from(service) for n in e.publishes)


def consumed_events(service: str) -> tuple[str, ...]:
    return tuple(n for e in edges_from(service) for n in e.consumes)


def event_owner(event_name: str) -> str:
    """The one service allowed to publish `event_name`."""
    for edge in EDGES:
        if event_name in edge.publishes:
            return edge.source
    raise KeyError(event_name)


def mermaid() -> str:
    """The topology as a Mermaid flowchart (the README diagram is generated from this)."""
    return _mermaid(NODES, EDGES)


def _mermaid(nodes: tuple[Node, ...], edges: tuple[Edge, ...]) -> str:
    lines = ["flowchart LR"]
    shapes = {
        NodeKind.EXTERNAL: ("([", "])"),
        NodeKind.SERVICE: ("[", "]"),
        NodeKind.BUS: ("{{", "}}"),
        NodeKind.DATABASE: ("[(", ")]"),
    }
    for n in nodes:
        left, right = shapes[n.kind]
        label = n.name + (" (public)" if n.exposed else "")
        lines.append(f'    {_mermaid_id(n.name)}{left}"{label}"{right}')
    for e in edges:
        arrow = "-.->" if e.optional else "-->"
        label = e.protocol.value
        if e.publishes or e.consumes:
            parts = [f"pub {', '.join(e.publishes)}"] if e.publishes else []
            parts += [f"sub {', '.join(e.consumes)}"] if e.consumes else []
            label = f"{e.protocol.value}: " + "; ".join(parts)
        elif e.rpcs:
            label = "gRPC: " + ", ".join(e.rpcs)
        lines.append(f'    {_mermaid_id(e.source)} {arrow}|"{label}"| {_mermaid_id(e.target)}')
    return "\n".join(lines) + "\n"


def _mermaid_id(name: str) -> str:
    return name.replace("-", "_")


# -- the bus: NATS JetStream (the module-level names above) or Kafka ------------------------

BusName = Literal["nats", "kafka"]
BUSES: Final[tuple[BusName, ...]] = ("nats", "kafka")
"""The buses a stack may run (`KDEMO_BUS`); the first is the default. The module-level
NODES, EDGES, `edge`, ... are the NATS view; `for_bus("kafka")` is the same topology with
the bus node named `kafka` and its edges speaking Kafka."""

_BUS_NODES: Final[dict[str, Node]] = {
    "nats": node("nats"),
    "kafka": Node("kafka", NodeKind.BUS, description="Apache Kafka (KRaft): the event bus"),
}
_BUS_PROTOCOLS: Final[dict[str, Protocol]] = {"nats": Protocol.NATS, "kafka": Protocol.KAFKA}

TOPIC_PREFIX: Final = "kdemo."
DLQ_PREFIX: Final = "kdemo.dlq."


def topic(event: str) -> str:
    """The Kafka topic of an event: `bounty.requested` → `kdemo.bounty.requested`."""
    return TOPIC_PREFIX + event


def dlq_topic(event: str) -> str:
    """Its dead-letter topic: `bounty.requested` → `kdemo.dlq.bounty.requested`."""
    return DLQ_PREFIX + event


def consumer_group(service: str) -> str:
    """The Kafka consumer group of a consuming service: its JetStream durable's name
    (KeyError for a service that consumes nothing)."""
    for consumer in CONSUMERS:
        if consumer.service == service:
            return consumer.durable
    raise KeyError(f"{service!r} consumes no events in the declared topology")


def read_back_events(service: str) -> tuple[str, ...]:
    """The events `service` reads back from the bus after publishing them: a service without
    a database (frontend) publishes directly, not through an outbox, and tells a repeated
    post (same event id) from a new one by the bus. NATS answers that in the publish (the
    stream's duplicate window) and a direct get; Kafka only by reading the topic, so these
    are the topics such a service may read (kafkaconfig's ACLs) and keeps an index of."""
    if node(service).database is not None:
        return ()
    return published_events(service)


@dataclass(frozen=True)
class Topology:
    """The whole topology as seen with one bus: the same nodes and edges, the bus node
    (and the edges' target and protocol) named for `bus`."""

    bus: BusName
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    @property
    def bus_node(self) -> Node:
        return self.node(self.bus)

    def node(self, name: str) -> Node:
        for candidate in self.nodes:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def edge(self, source: str, target: str) -> Edge:
        """The declared edge `source` → `target`; a KeyError names an undeclared one."""
        for candidate in self.edges:
            if (candidate.source, candidate.target) == (source, target):
                return candidate
        raise KeyError(f"no edge {source} -> {target} in the declared topology ({self.bus})")

    def bus_edge(self, service: str) -> Edge:
        """The `service` → bus edge (publishes, consumes, dead letters are counted on it)."""
        return self.edge(service, self.bus)

    def edges_from(self, name: str) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if e.source == name)

    def edges_to(self, name: str) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if e.target == name)

    def runtime_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind is not NodeKind.EXTERNAL)

    def mermaid(self) -> str:
        """This view as a Mermaid flowchart (the README diagram is the NATS one)."""
        return _mermaid(self.nodes, self.edges)


@cache
def for_bus(bus: str) -> Topology:
    """The topology with `bus` as its event bus (ValueError for one not in BUSES)."""
    if bus not in BUSES:
        raise ValueError(f"unknown bus {bus!r}; choose one of {', '.join(BUSES)}")
    name: BusName = "kafka" if bus == "kafka" else "nats"
    bus_node = _BUS_NODES[name]
    nodes = tuple(bus_node if n.kind is NodeKind.BUS else n for n in NODES)
    edges = tuple(
        replace(e, target=name, protocol=_BUS_PROTOCOLS[name]) if e.target == "nats" else e
        for e in EDGES
    )
    return Topology(bus=name, nodes=nodes, edges=edges)
