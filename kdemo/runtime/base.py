"""The Runtime interface: what the CLI and the dashboard may ask of any runtime.

The CLI and the TUI depend on this module only, never on how a runtime works, so the
local, kind and kubernetes runtimes are interchangeable. Every runtime keeps this contract:

- A method fails only with `KdemoError` (a message and a hint the CLI prints as one line):
  a client library's own exceptions (nats, psycopg, the Kubernetes client, urllib) never
  escape, so callers catch one type and the dashboard needs no blanket handler.
- No method blocks an event loop: the synchronous ones are for threads (the dashboard calls
  them from thread workers), and `bus_tap` does its blocking set-up off the loop.
- `down` stops the stack; what becomes of the data is the runtime's to say in its return
  value: the local runtime keeps it, while a kind cluster or a kubernetes namespace takes
  its volumes with it (they are the cluster's, not this machine's).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DeadLetter",
    "NodeKindName",
    "NodeState",
    "NodeStatus",
    "ObservedEdge",
    "ObservedTopology",
    "Progress",
    "Runtime",
    "TapEvent",
    "node_kind",
    "query_refused",
]

NodeState = Literal["ready", "starting", "down", "restarting"]
NodeKindName = Literal["service", "bus", "database"]
_RUNTIME_KINDS: dict[str, NodeKindName] = {
    "service": "service",
    "bus": "bus",
    "database": "database",
}


def node_kind(kind: str) -> NodeKindName:
    """A node's topology kind (`topology.NodeKind`) as `status` reports it."""
    try:
        return _RUNTIME_KINDS[kind]
    except KeyError:
        raise ValueError(f"{kind!r} is not the kind of a node a runtime runs") from None


Progress = Callable[[str], None]
"""Called with a short sentence naming what the runtime is doing or waiting for."""


@dataclass
class NodeStatus:
    """One row of `kdemo status`: named as in the topology, URL without credentials."""

    name: str
    kind: NodeKindName
    url: str
    ready: bool
    state: NodeState
    uptime_s: float
    restarts: int
    pid: int | None = None
    pods: list[dict[str, Any]] | None = None

    @property
    def uptime_text(self) -> str:
        """The uptime as people read it: 42s, 3m07s, 2h05m."""
        s = int(self.uptime_s)
        if s < 60:
            return f"{s}s"
        if s < 3600:
            return f"{s // 60}m{s % 60:02d}s"
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "ready": self.ready,
            "state": self.state,
            "uptime_s": round(self.uptime_s, 3),
            "restarts": self.restarts,
        }
        if self.pods is not None:
            out["pods"] = self.pods
        else:
            out["pid"] = self.pid
        return out


@dataclass
class TapEvent:
    """One message seen on the bus (read-only tap)."""

    subject: str
    seq: int
    time: float
    headers: dict[str, str]
    event: dict[str, Any] | None
    """The parsed CloudEvent, or None when the payload is not JSON."""
    raw: bytes = field(repr=False, default=b"")
    pending: int | None = None
    """Messages in the stream after this one when it was delivered (None when unknown):
    0 means a reader that started with `deliver_all` has caught up."""

    @property
    def dead_lettered(self) -> bool:
        return self.subject.startswith("kdemo.dlq.")


@dataclass
class DeadLetter:
    seq: int
    subject: str
    original_subject: str
    consumer: str
    reason: str
    event_id: str
    event_type: str
    time: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ObservedEdge:
    """Traffic one edge carried so far, as its client side counts it."""

    source: str
    target: str
    requests: float
    mean_latency_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ObservedTopology:
    """The stack as it is now: every node's status and the traffic on each edge."""

    nodes: list[NodeStatus]
    edges: list[ObservedEdge]
    unobserved: list[str]
    """Services whose metrics could not be read (down, or not answering)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": [n.to_json() for n in self.nodes],
            "edges": [e.to_json() for e in self.edges],
            "unobserved": self.unobserved,
        }


class Runtime(abc.ABC):
    """Brings the stack up and down and reports on it."""

    name: str

    @abc.abstractmethod
    def up(self, progress: Progress) -> dict[str, str]:
        """Start everything (a no-op when it already runs); returns the public URLs."""

    @abc.abstractmethod
    def down(self, *, purge: bool = False, progress: Progress | None = None) -> str:
        """Stop everything; `purge` deletes data and secrets too.

        Returns what became of the data, e.g. `data kept`: only the runtime knows whether
        stopping it deletes them (a cluster or a namespace takes its volumes with it).
        """

    def bus(self) -> str:
        """The stack's event bus: `nats` or `kafka` (`kdemo up --bus`)."""
        return "nats"

    @abc.abstractmethod
    def is_up(self) -> bool:
        """True when the stack has been brought up and not down since."""

    @abc.abstractmethod
    def status(self) -> list[NodeStatus]:
        """One row per runtime node (services, bus, database), in topology order."""

    @abc.abstractmethod
    def logs(self, node: str, *, follow: bool = False, lines: int = 200) -> Iterator[str]:
        """The node's log lines, oldest first; `follow` keeps yielding new ones."""

    @abc.abstractmethod
    def kill(self, node: str) -> str:
        """Kill the node (SIGKILL, or its pods deleted at once); the runtime brings it back.

        Returns what was killed, e.g. `pid 4242` or `pod gateway-5d9c-x2x7q`.
        """

    # Faults for `kdemo chaos`: a runtime that cannot inject one says so, and chaos checks
    # before it starts rather than halfway through a run.
    def restart(self, node: str) -> str:
        """Stop the node cleanly (SIGTERM, or its pods deleted with their grace period);
        the runtime brings it back. Returns what was restarted."""
        raise self._unsupported("a clean restart")

    def pause(self, node: str) -> str:
        """Freeze the node (SIGSTOP, or its containers frozen) until `resume`."""
        raise self._unsupported("pausing a node")

    def resume(self, node: str) -> str:
        """Let a paused node run again (SIGCONT)."""
        raise self._unsupported("pausing a node")

    def query(self, database: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows from one service's database (`github_app`, `ledger`, `identity`), read-only:
        the chaos audit reads the services' own tables, not what they answered."""
        raise self._unsupported("reading the services' databases")

    def _unsupported(self, what: str) -> Exception:
        from kdemo.errors import KdemoError  # late: keeps this module free of CLI concerns

        return KdemoError(
            f"the {self.name} runtime does not support {what}",
            "run `kdemo chaos` on the local or kind runtime, or leave that fault out",
        )

    @abc.abstractmethod
    def public_urls(self) -> dict[str, str]:
        """Public base URLs of the exposed services: frontend, gateway, github-app."""

    @abc.abstractmethod
    def webhook_secret(self) -> str:
        """The GitHub webhook secret the stack verifies deliveries with."""

    @abc.abstractmethod
    def bus_tap(self, *, deliver_all: bool = True) -> AsyncIterator[TapEvent]:
        """A read-only stream of the bus's messages (ordered consumer, tap user)."""

    @abc.abstractmethod
    def scrape(self, service: str) -> str:
        """The service's Prometheus metrics, as text."""

    @abc.abstractmethod
    def dlq_list(self) -> list[DeadLetter]:
        """Dead-lettered events still on the bus."""

    def dlq_count(self) -> int:
        """How many dead letters `dlq_list` would return (`status` asks on every call)."""
        return len(self.dlq_list())

    @abc.abstractmethod
    def dlq_replay(self, seqs: list[int] | None = None) -> int:
        """Republish dead letters (all when `seqs` is None) to their original subjects."""

    def observed_topology(self) -> ObservedTopology:
        """Status of every node plus the edge counters every service reports.

        Built from `status()` and `scrape()`, so every runtime has it; a service that
        does not answer is listed in `unobserved` rather than failing the whole view.
        """
        from kdemo.errors import KdemoError  # late: keeps this module free of CLI concerns
        from kdemo.observe import parse_edges

        nodes = self.status()
        edges: list[ObservedEdge] = []
        unobserved: list[str] = []
        for node in nodes:
            if node.kind != "service":
                continue
            try:
                samples = parse_edges(self.scrape(node.name))
            except (KdemoError, ValueError):
                unobserved.append(node.name)
                continue
            for (source, target), sample in sorted(samples.items()):
                mean = (
                    sample.latency_sum / sample.latency_count * 1000
                    if sample.latency_count
                    else None
                )
                edges.append(ObservedEdge(source, target, sample.requests, mean))
        return ObservedTopology(nodes, edges, unobserved)


def query_refused(database: str, exc: Exception) -> Exception:
    """The error `Runtime.query` raises when the database refused the statement itself."""
    from kdemo.errors import UsageError  # late: keeps this module free of CLI concerns

    return UsageError(
        f"the {database} database refused the query: {exc}".strip(),
        "check the SQL against the service's migrations (services/*/migrations)",
    )
