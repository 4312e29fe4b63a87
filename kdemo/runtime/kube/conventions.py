"""Where things live on a cluster: namespace, names, labels and ports, from the topology.

The manifests in `manifests/` use exactly these names and ports; the NetworkPolicy
generator, the runtime and the tests read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from kdemo import topology
from kdemo.runtime.buses import node_of

__all__ = [
    "CONFIG_URLS",
    "FIELD_MANAGER",
    "IMAGE_NAME",
    "NAMESPACE",
    "NODE_PORTS",
    "PART_OF",
    "SECRET_NAME",
    "SETTINGS_SECRET",
    "ContainerPort",
    "container_ports",
    "edge_port",
    "labels",
    "metrics_port",
    "peer_address",
    "workload_kind",
]

NAMESPACE: Final = "kdemo"
PART_OF: Final = "kdemo"
FIELD_MANAGER: Final = "kdemo"
IMAGE_NAME: Final = "kdemo"
SECRET_NAME: Final = "kdemo-secrets"  # noqa: S105 - the Secret's name, not a secret
SETTINGS_SECRET: Final = "kdemo-settings"  # noqa: S105 - the Secret's name, not a secret
CONFIG_URLS: Final = "kdemo-urls"

NODE_PORTS: Final[dict[str, int]] = {"frontend": 30080, "gateway": 30081, "github-app": 30082}
"""kind: the NodePort of each exposed service (mapped to a 127.0.0.1 host port)."""


@dataclass(frozen=True)
class ContainerPort:
    name: str
    port: int
    protocol: str = "TCP"


_HTTP = ContainerPort("http", 8080)
_GRPC = ContainerPort("grpc", 50051)
_METRICS = ContainerPort("metrics", 9090)
_PORTS: Final[dict[topology.Protocol, ContainerPort]] = {
    topology.Protocol.HTTP: _HTTP,
    topology.Protocol.GRPC: _GRPC,
    topology.Protocol.NATS: ContainerPort("client", 4222),
    topology.Protocol.KAFKA: ContainerPort("client", 9092),
    topology.Protocol.SQL: ContainerPort("postgres", 5432),
}


def _grpc_services() -> tuple[str, ...]:
    return tuple(
        dict.fromkeys(e.target for e in topology.EDGES if e.protocol is topology.Protocol.GRPC)
    )


def container_ports(node: str) -> tuple[ContainerPort, ...]:
    """The named ports `node`'s container listens on (first: the one its peers use)."""
    spec = node_of(node)
    if node == "kafka":
        return (_PORTS[topology.Protocol.KAFKA],)
    if spec.kind is topology.NodeKind.BUS:
        return (_PORTS[topology.Protocol.NATS], ContainerPort("monitor", 8222))
    if spec.kind is topology.NodeKind.DATABASE:
        return (_PORTS[topology.Protocol.SQL],)
    if spec.kind is not topology.NodeKind.SERVICE:
        raise KeyError(f"{node!r} runs outside the cluster")
    if node in _grpc_services():
        return (_GRPC, _METRICS)
    return (_HTTP,)


def edge_port(edge: topology.Edge) -> ContainerPort:
    """The target port an edge connects to."""
    if edge.protocol is topology.Protocol.HTTPS:
        return ContainerPort("https", 443)
    return _PORTS[edge.protocol]


def metrics_port(node: str) -> ContainerPort:
    """The port serving `/metrics`, `/healthz` and `/readyz` of a service."""
    return _METRICS if node in _grpc_services() else _HTTP


def peer_address(node: str) -> str:
    """`host:port` of a node inside the namespace (its Service name and first port)."""
    return f"{node}:{container_ports(node)[0].port}"


def labels(node: str) -> dict[str, str]:
    """The recommended labels of `node`'s objects; selectors use only the name."""
    return {
        "app.kubernetes.io/name": node,
        "app.kubernetes.io/component": node_of(node).kind.value,
        "app.kubernetes.io/part-of": PART_OF,
    }


def workload_kind(node: str) -> str:
    """Deployment for services; StatefulSet for the bus and the database (they keep data)."""
    return "Deployment" if node_of(node).kind is topology.NodeKind.SERVICE else "StatefulSet"
