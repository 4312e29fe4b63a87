"""The declared topology of kdemo, re-exported from `services.common.topology`.

The data (nodes, edges, what each service publishes and consumes) lives with the
services, which label their edge metrics from it and whose image has no `kdemo`
package. kdemo's runtimes, dashboard and generators import it from here.
"""

from __future__ import annotations

from services.common.topology import (
    CONSUMERS,
    EDGES,
    EVENT_NAMES,
    NODES,
    STREAM_NAME,
    STREAM_SUBJECTS,
    Consumer,
    Edge,
    Node,
    NodeKind,
    Protocol,
    consumed_events,
    edge,
    edges_from,
    edges_to,
    event_owner,
    internal_nodes,
    mermaid,
    node,
    published_events,
    runtime_nodes,
    service_nodes,
)

__all__ = [
    "CONSUMERS",
    "EDGES",
    "EVENT_NAMES",
    "NODES",
    "STREAM_NAME",
    "STREAM_SUBJECTS",
    "Consumer",
    "Edge",
    "Node",
    "NodeKind",
    "Protocol",
    "consumed_events",
    "edge",
    "edges_from",
    "edges_to",
    "event_owner",
    "internal_nodes",
    "mermaid",
    "node",
    "published_events",
    "runtime_nodes",
    "service_nodes",
]
