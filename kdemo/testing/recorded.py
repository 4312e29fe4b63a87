"""A recorded runtime: a fixed story behind the Runtime interface, for snapshots and benchmarks.

Nothing runs: `status()` answers recorded rows, `bus_tap()` replays recorded
CloudEvents (then, optionally, generates a steady load), `scrape()` answers
recorded Prometheus text. Times are fixed, so screenshots are stable.

    rt = RecordedRuntime.demo()                       # the real topology, one story
    nodes, edges = synthetic_topology(200)            # a large graph for the benchmark
    rt = RecordedRuntime.synthetic(nodes, pods=1000, tap_rate=500, tap_count=5000)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kdemo import topology
from kdemo.errors import KdemoError, StackNotUp, UsageError
from kdemo.runtime.base import DeadLetter, NodeStatus, Progress, Runtime, TapEvent, node_kind
from kdemo.topology import Edge, Node, NodeKind, Protocol

__all__ = ["FIXED_NOW", "RecordedRuntime", "cloud_event", "synthetic_topology"]

FIXED_NOW = 1767225600.0
"""2026-01-01T00:00:00Z: the recorded story ends here."""

_INTENT_A = "0x" + "a1" * 32
_INTENT_B = "0x" + "b2" * 32
_WALLET = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def cloud_event(name: str, key: str, data: dict[str, Any], at: float, *, seq: int) -> TapEvent:
    """A TapEvent carrying a CloudEvent shaped as the services publish it."""
    owner = topology.event_owner(name)
    event = {
        "specversion": "1.0",
        "id": f"{name}:{key}",
        "source": f"/kdemo/{owner}",
        "type": f"dev.kdemo.{name}.v1",
        "subject": key.split(".")[0],
        "time": _iso(at),
        "datacontenttype": "application/json",
        "data": data,
    }
    return TapEvent(
        subject=f"kdemo.{name}.{key}",
        seq=seq,
        time=at,
        headers={"Nats-Msg-Id": f"{name}:{key}"},
        event=event,
    )


def _story(now: float) -> list[TapEvent]:
    """Two bounties (one all the way to attributed, one waiting) and a dead letter."""
    t0 = now - 300
    requested_a = {
        "intent_id": _INTENT_A,
        "repository": "octo/demo",
        "number": 7,
        "denomination": "USDC",
        "amount": "50",
        "author": {"id": 1001, "login": "alice"},
        "signing_url": "http://127.0.0.1:8080/sign?t=recorded-a",
        "created_at": _iso(t0 - 0.08),
    }
    requested_b = {
        **requested_a,
        "intent_id": _INTENT_B,
        "number": 9,
        "amount": "120",
        "author": {"id": 1002, "login": "bob"},
        "signing_url": "http://127.0.0.1:8080/sign?t=recorded-b",
        "created_at": _iso(now - 42.1),
    }
    signed = {"intent_id": _INTENT_A, "address": _WALLET}
    recorded = {**signed, "state": "signed", "repository": "octo/demo", "number": 7}
    linked = {"code": "x" * 28, "address": _WALLET, "github_id": 1001, "login": "alice"}
    events = [
        cloud_event("bounty.requested", _INTENT_A, requested_a, t0, seq=1),
        cloud_event("bounty.signed", f"{_INTENT_A}.{_WALLET}", signed, t0 + 21.4, seq=2),
        cloud_event("bounty.recorded", f"{_INTENT_A}.{_WALLET}", recorded, t0 + 21.52, seq=3),
        cloud_event("identity.linked", "x" * 28, linked, t0 + 95.0, seq=4),
        cloud_event("bounty.requested", _INTENT_B, requested_b, now - 42.0, seq=5),
    ]
    dead_key = f"{_INTENT_B}.0xdead"
    dead = cloud_event("bounty.signed", dead_key, {"intent_id": _INTENT_B}, now - 9, seq=6)
    dead.subject = "kdemo.dlq." + dead.subject.removeprefix("kdemo.")
    dead.headers["Kdemo-Dlq-Reason"] = "signature does not recover to the address"
    events.append(dead)
    return events


def _metrics(service: str, scale: float) -> str:
    lines = [
        "# TYPE kdemo_edge_requests_total counter",
        "# TYPE kdemo_edge_request_duration_seconds histogram",
    ]
    for e in topology.edges_from(service):
        labels = f'from="{e.source}",to="{e.target}",protocol="{e.protocol.value}"'
        count = round(12 * scale)
        lines.append(f"kdemo_edge_requests_total{{{labels}}} {count}")
        lines.append(f'kdemo_edge_request_duration_seconds_bucket{{{labels},le="+Inf"}} {count}')
        lines.append(f"kdemo_edge_request_duration_seconds_sum{{{labels}}} {count * 0.0042}")
        lines.append(f"kdemo_edge_request_duration_seconds_count{{{labels}}} {count}")
    return "\n".join(lines) + "\n"


def synthetic_topology(services: int) -> tuple[tuple[Node, ...], tuple[Edge, ...]]:
    """A large topology shaped like the real one: layers of services, a bus, a database."""
    nodes: list[Node] = [Node("clients", NodeKind.EXTERNAL)]
    edges: list[Edge] = []
    for i in range(services):
        nodes.append(Node(f"svc-{i:03d}", NodeKind.SERVICE))
    nodes += [Node("nats", NodeKind.BUS), Node("postgres", NodeKind.DATABASE)]
    for i in range(services):
        name = f"svc-{i:03d}"
        if i < 10:
            edges.append(Edge("clients", name, Protocol.HTTP, "public API"))
        if i >= 10:  # each service is called by one in the previous layer of ten
            edges.append(Edge(f"svc-{i - 10:03d}", name, Protocol.GRPC, "call"))
        edges.append(Edge(name, "nats", Protocol.NATS, "events", publishes=(f"s{i}.done",)))
        if i % 2 == 0:
            edges.append(Edge(name, "postgres", Protocol.SQL, "rows"))
    return tuple(nodes), tuple(edges)


class RecordedRuntime(Runtime):
    """Answers from a recording; `kill` and `up` change the recording the way a runtime would."""

    name = "recorded"

    def __init__(
        self,
        rows: Sequence[NodeStatus],
        events: Sequence[TapEvent] = (),
        *,
        metrics: dict[str, str] | None = None,
        logs: dict[str, list[str]] | None = None,
        urls: dict[str, str] | None = None,
        up: bool = True,
        tap_rate: float = 0.0,
        tap_count: int = 0,
    ) -> None:
        self._rows = {r.name: r for r in rows}
        self._events = list(events)
        self._metrics = metrics or {}
        self._logs = logs or {}
        self._urls = urls or {}
        self._up = up
        self.tap_rate = tap_rate
        """Generated events per second after the recording (0: none)."""
        self.tap_count = tap_count
        self.killed: list[str] = []

    @classmethod
    def demo(cls, now: float = FIXED_NOW, *, up: bool = True) -> RecordedRuntime:
        """The real topology, every node ready but one restarting, and a short story."""
        rows = []
        for i, n in enumerate(topology.runtime_nodes()):
            rows.append(
                NodeStatus(
                    name=n.name,
                    kind=node_kind(n.kind),
                    url=f"http://127.0.0.1:{41000 + i}",
                    ready=n.name != "identity",
                    state="restarting" if n.name == "identity" else "ready",
                    uptime_s=0.0 if n.name == "identity" else 754.0 + i,
                    restarts=1 if n.name == "identity" else 0,
                    pid=None if n.name == "identity" else 4100 + i,
                )
            )
        metrics = {s.name: _metrics(s.name, 1.0) for s in topology.service_nodes()}
        logs = {
            n.name: [
                f'{{"level": "info", "service": "{n.name}", "message": "started"}}',
                f'{{"level": "info", "service": "{n.name}", "message": "ready"}}',
            ]
            for n in topology.runtime_nodes()
        }
        urls = {
            "frontend": "http://127.0.0.1:41004",
            "gateway": "http://127.0.0.1:41005",
            "github-app": "http://127.0.0.1:41003",
        }
        return cls(rows, _story(now), metrics=metrics, logs=logs, urls=urls, up=up)

    @classmethod
    def synthetic(
        cls,
        nodes: Sequence[Node],
        *,
        pods: int,
        tap_rate: float = 0.0,
        tap_count: int = 0,
    ) -> RecordedRuntime:
        """Every non-external node ready, `pods` pods spread over the services."""
        running = [n for n in nodes if n.kind is not NodeKind.EXTERNAL]
        services = [n for n in running if n.kind is NodeKind.SERVICE] or running
        per = {n.name: pods // len(services) for n in services}
        for n in services[: pods % len(services)]:
            per[n.name] += 1
        rows = [
            NodeStatus(
                name=n.name,
                kind=node_kind(n.kind),
                url=f"http://{n.name}.kdemo.svc:8080",
                ready=True,
                state="ready",
                uptime_s=3600.0,
                restarts=0,
                pods=[
                    {"name": f"{n.name}-{j}", "ready": True, "restarts": 0}
                    for j in range(per.get(n.name, 1))
                ],
            )
            for n in running
        ]
        return cls(rows, (), tap_rate=tap_rate, tap_count=tap_count)

    # -- the interface ---------------------------------------------------------------------

    def up(self, progress: Progress) -> dict[str, str]:
        progress("replaying the recording")
        self._up = True
        return dict(self._urls)

    def down(self, *, purge: bool = False, progress: Progress | None = None) -> str:
        self._up = False
        return "data kept"

    def is_up(self) -> bool:
        return self._up

    def status(self) -> list[NodeStatus]:
        if not self._up:
            return [
                replace(r, ready=False, state="down", uptime_s=0.0, pid=None)
                for r in self._rows.values()
            ]
        return list(self._rows.values())

    def logs(self, node: str, *, follow: bool = False, lines: int = 200) -> Iterator[str]:
        self._check(node)
        yield from self._logs.get(node, [])[-lines:]

    def kill(self, node: str) -> str:
        self._check(node)
        if not self._up:
            raise StackNotUp()
        row = self._rows[node]
        self._rows[node] = replace(row, restarts=row.restarts + 1, uptime_s=0.0)
        self.killed.append(node)
        return f"pid {row.pid}" if row.pid is not None else f"node {node}"

    def public_urls(self) -> dict[str, str]:
        return dict(self._urls)

    def webhook_secret(self) -> str:
        return "recorded-webhook-secret"

    async def bus_tap(self, *, deliver_all: bool = True) -> AsyncIterator[TapEvent]:
        if not self._up:
            raise KdemoError("the bus does not answer (recording: stack down)", "bring it up")
        seq = 0
        for event in self._events if deliver_all else ():
            seq = event.seq
            yield event
        if self.tap_rate > 0:
            interval = 1.0 / self.tap_rate
            start = time.perf_counter()
            for i in range(self.tap_count):
                # Paced against the start, so a slow consumer shows as lag, not as a lower rate.
                delay = start + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                seq += 1
                key = f"0x{i:064x}"
                yield cloud_event(
                    "bounty.requested",
                    key,
                    {"intent_id": key, "repository": "bench/load", "number": i + 1},
                    time.time(),
                    seq=seq,
                )
        await asyncio.Event().wait()  # a live tap never ends by itself

    def scrape(self, service: str) -> str:
        if service not in self._metrics:
            raise UsageError(f"{service!r} is not a recorded service", "use one of the topology's")
        return self._metrics[service]

    def dlq_list(self) -> list[DeadLetter]:
        return [
            DeadLetter(
                seq=e.seq,
                subject=e.subject,
                original_subject="kdemo." + e.subject.removeprefix("kdemo.dlq."),
                consumer="gateway",
                reason=e.headers.get("Kdemo-Dlq-Reason", ""),
                event_id=str((e.event or {}).get("id", "")),
                event_type=str((e.event or {}).get("type", "")),
                time=e.time,
            )
            for e in self._events
            if e.dead_lettered
        ]

    def dlq_replay(self, seqs: list[int] | None = None) -> int:
        return 0

    def _check(self, node: str) -> None:
        if node not in self._rows:
            raise UsageError(f"unknown node {node!r}", f"use one of: {', '.join(self._rows)}")
