"""Per-edge traffic from the services' Prometheus text (`runtime.scrape(service)`).

Core code (no Textual): the Runtime's observed topology and the dashboard both use it.

`kdemo_edge_requests_total{from,to,protocol}` says which edges carried requests;
`kdemo_edge_request_duration_seconds` how long they took. Comparing two scrapes
gives what crossed each edge meanwhile (to light it) and the node's request rate
and mean latency over that interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["EdgeSample", "NodeTraffic", "grown_edges", "node_traffic", "parse_edges"]

EdgeKey = tuple[str, str]


@dataclass(frozen=True)
class EdgeSample:
    """Cumulative counters of one edge, as its client side reports them."""

    requests: float = 0.0
    latency_sum: float = 0.0
    latency_count: float = 0.0


def parse_edges(text: str) -> dict[EdgeKey, EdgeSample]:
    """The edge counters in one scrape (an unparsable scrape raises ValueError)."""
    requests: dict[EdgeKey, float] = {}
    sums: dict[EdgeKey, float] = {}
    counts: dict[EdgeKey, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in ("kdemo_edge_requests", "kdemo_edge_request_duration_seconds"):
            continue
        for sample in family.samples:
            key = (sample.labels.get("from", ""), sample.labels.get("to", ""))
            if sample.name == "kdemo_edge_requests_total":
                requests[key] = requests.get(key, 0.0) + sample.value
            elif sample.name == "kdemo_edge_request_duration_seconds_sum":
                sums[key] = sums.get(key, 0.0) + sample.value
            elif sample.name == "kdemo_edge_request_duration_seconds_count":
                counts[key] = counts.get(key, 0.0) + sample.value
    keys = set(requests) | set(sums) | set(counts)
    return {k: EdgeSample(requests.get(k, 0.0), sums.get(k, 0.0), counts.get(k, 0.0)) for k in keys}


def grown_edges(
    before: Mapping[EdgeKey, EdgeSample], after: Mapping[EdgeKey, EdgeSample]
) -> set[EdgeKey]:
    """Edges whose request counter grew between two scrapes (a restart resets: not growth)."""
    return {
        k for k, sample in after.items() if k in before and sample.requests > before[k].requests
    }


@dataclass(frozen=True)
class NodeTraffic:
    """What the detail pane shows for one node's outgoing edges."""

    rate: float | None = None
    """Requests per second over the last interval (None until two scrapes)."""
    latency_ms: float | None = None
    """Mean latency over the last interval, or over the whole life when idle."""
    total: float = 0.0
    per_edge: dict[str, float] = field(default_factory=dict)
    """Target → requests so far."""


def node_traffic(
    before: Mapping[EdgeKey, EdgeSample] | None,
    after: Mapping[EdgeKey, EdgeSample],
    interval_s: float,
) -> NodeTraffic:
    total = sum(s.requests for s in after.values())
    per_edge = {k[1]: s.requests for k, s in sorted(after.items())}
    count = sum(s.latency_count for s in after.values())
    latency_sum = sum(s.latency_sum for s in after.values())
    if before is None or interval_s <= 0:
        mean = latency_sum / count * 1000 if count else None
        return NodeTraffic(None, mean, total, per_edge)
    d_req = total - sum(s.requests for s in before.values())
    d_count = count - sum(s.latency_count for s in before.values())
    d_sum = latency_sum - sum(s.latency_sum for s in before.values())
    if d_req < 0:  # the service restarted: its counters started over
        return NodeTraffic(None, None, total, per_edge)
    mean = d_sum / d_count if d_count > 0 else latency_sum / count if count else None
    mean = None if mean is None else mean * 1000
    return NodeTraffic(d_req / interval_s, mean, total, per_edge)
