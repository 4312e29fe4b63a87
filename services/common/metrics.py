"""Prometheus metrics shared by every service.

`kdemo_edge_requests_total{from,to,protocol}` and the latency histogram are
recorded on the client side of every edge a service uses. The labels come from an
`Edge` of the declared topology (`services.common.topology.edge(source, target)`), never
from strings typed at the call site, so the dashboard can light the edge up and an
undeclared edge fails where it is looked up (at import, for the module-level ones).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from .topology import Edge

__all__ = [
    "CONTENT_TYPE_LATEST",
    "EDGE_ERRORS",
    "EDGE_LATENCY",
    "EDGE_REQUESTS",
    "edge_labels",
    "observe_edge",
    "record_edge",
    "render_metrics",
]

EDGE_REQUESTS = Counter(
    "kdemo_edge_requests",
    "Requests made on an edge of the topology, counted by its client side.",
    ["from", "to", "protocol"],
)
EDGE_ERRORS = Counter(
    "kdemo_edge_errors",
    "Requests on an edge of the topology that failed, counted by its client side.",
    ["from", "to", "protocol"],
)
EDGE_LATENCY = Histogram(
    "kdemo_edge_request_duration_seconds",
    "Latency of requests on an edge of the topology, measured by its client side.",
    ["from", "to", "protocol"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


def edge_labels(edge: Edge) -> tuple[str, str, str]:
    """The metric labels (from, to, protocol) of a declared edge."""
    return (edge.source, edge.target, edge.protocol.value)


@contextmanager
def observe_edge(edge: Edge) -> Iterator[None]:
    """Count and time one request on `edge`."""
    labels = edge_labels(edge)
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        EDGE_ERRORS.labels(*labels).inc()
        raise
    finally:
        EDGE_REQUESTS.labels(*labels).inc()
        EDGE_LATENCY.labels(*labels).observe(time.perf_counter() - started)


def record_edge(edge: Edge, seconds: float) -> None:
    """Count one request that was timed by hand (for work that is counted only when it did
    something, such as an outbox poll that found rows)."""
    labels = edge_labels(edge)
    EDGE_REQUESTS.labels(*labels).inc()
    EDGE_LATENCY.labels(*labels).observe(seconds)


def render_metrics() -> bytes:
    return generate_latest()
