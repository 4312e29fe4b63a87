"""Ports on 127.0.0.1: chosen once, kept in stack.json, overridable (`KDEMO_<NAME>_PORT`).

The local runtime listens on all of them; kind maps its exposed services' NodePorts to the
same host ports, so a stack keeps its URLs from one `up` to the next.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Mapping

from kdemo import topology
from kdemo.errors import PortInUse, UsageError
from kdemo.runtime.buses import DEFAULT_BUS, runtime_nodes

__all__ = [
    "HOST",
    "allocate_ports",
    "check_ports_free",
    "grpc_services",
    "port_env_var",
    "port_is_free",
    "port_names",
    "port_owner",
]

HOST = "127.0.0.1"


def grpc_services() -> tuple[str, ...]:
    """Services reached over gRPC: they serve HTTP (metrics, probes) on a second port."""
    return tuple(
        dict.fromkeys(e.target for e in topology.EDGES if e.protocol is topology.Protocol.GRPC)
    )


_BUS_EXTRA = {"nats": "monitor", "kafka": "controller"}
"""The bus's second port: nats-server's monitoring, the KRaft controller's listener."""


def port_names(bus: str = DEFAULT_BUS) -> tuple[str, ...]:
    """Every port a stack on `bus` listens on, keyed like the node (`calc-metrics`,
    `nats-monitor`, `kafka-controller` for extra ones)."""
    names: list[str] = []
    for n in runtime_nodes(bus):
        names.append(n.name)
        if n.name in grpc_services():
            names.append(f"{n.name}-metrics")
        if n.kind is topology.NodeKind.BUS:
            names.append(f"{n.name}-{_BUS_EXTRA[n.name]}")
    return tuple(names)


def port_owner(name: str) -> str:
    """The node a port belongs to (`calc-metrics` -> `calc`)."""
    for suffix in ("-metrics", "-monitor", "-controller"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def port_env_var(name: str) -> str:
    """`github-app` -> `KDEMO_GITHUB_APP_PORT`, `calc-metrics` -> `KDEMO_CALC_METRICS_PORT`."""
    return f"KDEMO_{name.upper().replace('-', '_')}_PORT"


def _parse_override(var: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise UsageError(
            f"{var}={raw!r} is not a port number",
            f"set {var} to an integer between 1 and 65535, or unset it",
        )
    return port


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:`port` (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR, as every server here sets it: only a live listener makes bind fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def allocate_ports(
    kept: Mapping[str, int] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    bus: str = DEFAULT_BUS,
) -> dict[str, int]:
    """Ports for every name of a stack on `bus`: the environment's override, else the kept
    one, else a free one. Kept ports of names this stack does not use (the other bus's, kept
    from a run on it) are neither returned nor handed out again."""
    env = os.environ if env is None else env
    kept = kept or {}
    names = port_names(bus)
    chosen: dict[str, int] = {}
    for name in names:
        var = port_env_var(name)
        if env.get(var):
            chosen[name] = _parse_override(var, env[var])
        elif name in kept:
            chosen[name] = int(kept[name])
    seen: dict[int, str] = {}
    for name, port in chosen.items():
        if port in seen:
            raise UsageError(
                f"port {port} is given to both {seen[port]} and {name}",
                f"give {port_env_var(name)} another value",
            )
        seen[port] = name
    with contextlib.ExitStack() as stack:
        # Hold every probe socket until all are picked, so no port is handed out twice.
        for name in names:
            if name in chosen:
                continue
            while True:
                sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                sock.bind((HOST, 0))
                port = int(sock.getsockname()[1])
                if port not in seen and port not in kept.values():
                    break
            chosen[name] = port
            seen[port] = name
    return {name: chosen[name] for name in names}


def check_ports_free(ports: Mapping[str, int]) -> None:
    """Raise `PortInUse` for the first port some other process listens on."""
    for name, port in ports.items():
        if not port_is_free(port):
            raise PortInUse(port, port_owner(name), port_env_var(name))
