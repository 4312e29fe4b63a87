"""Prometheus metrics shared by every service.

`kdemo_edge_requests_total{from,to,protocol}` and the latency histogram are
recorded on the client side of every edge a service uses; the labels are the
node names of the declared topology, so the dashboard can light the edge up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

__all__ = [
    "CONTENT_TYPE_LATEST",
    "EDGE_ERRORS",
    "EDGE_LATENCY",
    "EDGE_REQUESTS",
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


@contextmanager
def observe_edge(source: str, target: str, protocol: str) -> Iterator[None]:
    """Count and time one request from `source` to `target` (names as in the topology)."""
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        EDGE_ERRORS.labels(source, target, protocol).inc()
        raise
    finally:
        EDGE_REQUESTS.labels(source, target, protocol).inc()
        EDGE_LATENCY.labels(source, target, protocol).observe(time.perf_counter() - started)


def record_edge(source: str, target: str, protocol: str, seconds: float) -> None:
    """Count one request that was timed by hand (for work that is counted only when it did
    something, such as an outbox poll that found rows)."""
    EDGE_REQUESTS.labels(source, target, protocol).inc()
    EDGE_LATENCY.labels(source, target, protocol).observe(seconds)


def render_metrics() -> bytes:
    return generate_latest()
