"""What the supervisor runs for each node: command, environment, user, probe, stop signal."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kdemo import topology
from kdemo.runtime.buses import BUSES, DEFAULT_BUS, node_of, runtime_nodes
from kdemo.runtime.local.env import service_env, service_module
from kdemo.runtime.local.nats import NatsServer, nats_server
from kdemo.runtime.local.procs import MARKER_ENV
from kdemo.runtime.local.state import data_dir, stack_id
from kdemo.runtime.ports import HOST, grpc_services
from kdemo.runtime.secrets import Secrets
from kdemo.runtime.stackfile import StackRecord

if TYPE_CHECKING:
    # Imported where used: `status` on a stopped stack needs neither psycopg nor the broker.
    from kdemo.runtime.kafkabroker import KafkaBroker
    from kdemo.runtime.local.postgres import PgCluster

__all__ = [
    "NodeSpec",
    "http_ready",
    "kafka_of",
    "kafka_root",
    "node_specs",
    "node_url",
    "probe_port",
    "stages",
    "wanted_nodes",
]


@dataclass
class NodeSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    probe: Callable[[], bool]
    cwd: Path | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    uid: int | None = None
    """Set when the node runs as another user (postgres, when we are root)."""
    gid: int | None = None


def stages(bus: str = DEFAULT_BUS) -> list[list[str]]:
    """Start order: database and bus together, then every service at once.

    Services wait for their dependencies themselves (they must anyway, since any
    node may restart at any time), so starting them together overlaps their slow
    imports with the database's start-up; stopping runs the stages in reverse.
    """
    nodes = runtime_nodes(bus)
    return [
        [n.name for n in nodes if n.kind is not topology.NodeKind.SERVICE],
        [n.name for n in nodes if n.kind is topology.NodeKind.SERVICE],
    ]


def probe_port(node: str, ports: Mapping[str, int]) -> int:
    """The HTTP port that serves `/readyz` and `/metrics` for a service."""
    return ports[f"{node}-metrics"] if node in grpc_services() else ports[node]


def node_url(node: str, ports: Mapping[str, int]) -> str:
    """The node's address as `status` shows it: never with credentials."""
    spec = node_of(node)
    if spec.kind is topology.NodeKind.DATABASE:
        return f"postgresql://{HOST}:{ports[node]}"
    if spec.kind is topology.NodeKind.BUS:
        return f"{node}://{HOST}:{ports[node]}"  # nats://, kafka:// (SASL/SCRAM, no TLS)
    scheme = "grpc" if node in grpc_services() else "http"
    return f"{scheme}://{HOST}:{ports[node]}"


def http_ready(port: int, timeout: float = 1.0) -> bool:
    # Late: http.client and ssl, which `status` on a stack that is not running does not need.
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=timeout) as resp:
            return int(resp.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def postgres_of(state_dir: Path, stack: StackRecord, secrets: Secrets) -> PgCluster:
    from kdemo.runtime.local.postgres import pg_cluster

    root = stack.postgres_dir  # recorded at the first `up`
    return pg_cluster(
        state_dir,
        stack.ports["postgres"],
        secrets.postgres_password,
        Path(root) if root else None,
    )


def nats_of(state_dir: Path, stack: StackRecord, secrets: Secrets) -> NatsServer:
    root = stack.nats_dir  # recorded at the first `up`
    return nats_server(
        state_dir,
        stack.ports["nats"],
        stack.ports["nats-monitor"],
        secrets.nats_passwords,
        Path(root) if root else None,
    )


def kafka_root(
    state_dir: Path, kept: str | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """The broker's directory for the stack (see `data_dir`); by default in the state
    directory."""
    return data_dir(state_dir, "kafka", kept, state_dir / "kafka", env)


def kafka_of(state_dir: Path, stack: StackRecord, secrets: Secrets) -> KafkaBroker:
    """The stack's broker, on the cached jars (`up` fetched them) and this machine's Java.

    Neither fetches nor runs anything: `status` builds the specs too, and asking Java its
    version (`find_java`) costs a JVM start. `up` checks both before the supervisor starts.
    """
    from kdemo.runtime.kafkabroker import KafkaBroker, default_cache_dir, locate_java

    root = stack.kafka_dir  # recorded at the first `up` on Kafka
    return KafkaBroker(
        locate_java() or Path("java"),
        default_cache_dir(),
        Path(root) if root else kafka_root(state_dir, env={}),
        stack.ports["kafka"],
        stack.ports["kafka-controller"],
        dict(secrets.kafka_passwords),
    )


def node_specs(
    state_dir: Path, stack: StackRecord, secrets: Secrets, settings: Mapping[str, str]
) -> dict[str, NodeSpec]:
    """One spec per node the stack runs (`stack.nodes`, default all), by name.

    `stack.commands` may replace a service's command (argv list), e.g. to run a
    development build; the environment stays the one the service would get.
    """
    ports = stack.ports
    marker = {MARKER_ENV: stack_id(state_dir)}
    wanted = wanted_nodes(stack)
    commands: Mapping[str, list[str]] = stack.commands or {}
    specs: dict[str, NodeSpec] = {}
    if "postgres" in wanted:
        pg = postgres_of(state_dir, stack, secrets)
        specs["postgres"] = NodeSpec(
            "postgres",
            pg.argv(),
            {**pg.env(), **marker},
            pg.ready,
            cwd=pg.root,
            stop_signal=signal.SIGINT,
            uid=pg.uid,
            gid=pg.gid,
        )
    if "nats" in wanted:
        bus = nats_of(state_dir, stack, secrets)
        specs["nats"] = NodeSpec("nats", bus.argv(), dict(marker), bus.ready, cwd=bus.root)
    if "kafka" in wanted:
        broker = kafka_of(state_dir, stack, secrets)
        specs["kafka"] = NodeSpec(
            "kafka", broker.broker_command(), dict(marker), broker.ready, cwd=broker.root
        )
    base_env = {
        k: v
        for k, v in settings.items()
        if k in ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TZ")
    }
    for n in topology.service_nodes():
        if n.name not in wanted:
            continue
        port = probe_port(n.name, ports)
        argv = list(commands.get(n.name) or [sys.executable, "-m", service_module(n.name)])
        env = {
            **base_env,
            **service_env(n.name, ports=ports, secrets=secrets, settings=settings, bus=stack.bus),
            **marker,
            "PYTHONUNBUFFERED": "1",
        }
        specs[n.name] = NodeSpec(n.name, argv, env, _http_probe(port), cwd=state_dir)
    return specs


def wanted_nodes(stack: StackRecord) -> list[str]:
    """The nodes the stack runs, in topology order: `stack.nodes` (default all) on its bus.

    A node list recorded with the bus as `nats` (from before `--bus`, or by tests) names
    the stack's bus, whichever it is."""
    names = [n.name for n in runtime_nodes(stack.bus)]
    if not stack.nodes:
        return names
    chosen = {stack.bus if n in BUSES else n for n in stack.nodes}
    return [n for n in names if n in chosen]


def _http_probe(port: int) -> Callable[[], bool]:
    return lambda: http_ready(port)
