"""Edge metrics are labelled from the declared topology, which the services own."""

from __future__ import annotations

import importlib

import pytest
from prometheus_client import REGISTRY

import kdemo.topology
from services.common import topology
from services.common.metrics import edge_labels, observe_edge, record_edge


def test_kdemo_re_exports_the_services_topology() -> None:
    for name in topology.__all__:
        assert getattr(kdemo.topology, name) is getattr(topology, name)
    assert set(kdemo.topology.__all__) == set(topology.__all__)


def test_edge_finds_declared_edges_only() -> None:
    assert topology.edge("gateway", "calc").protocol is topology.Protocol.GRPC
    assert edge_labels(topology.edge("github-app", "github-api")) == (
        "github-app",
        "github-api",
        "HTTPS",
    )
    with pytest.raises(KeyError, match="calc -> gateway"):
        topology.edge("calc", "gateway")


def _count(source: str, target: str, protocol: str) -> float:
    labels = {"from": source, "to": target, "protocol": protocol}
    return REGISTRY.get_sample_value("kdemo_edge_requests_total", labels) or 0.0


def test_observe_and_record_use_the_edges_labels() -> None:
    declared = topology.edge("identity", "postgres")
    before = _count("identity", "postgres", "SQL")
    with observe_edge(declared):
        pass
    record_edge(declared, 0.01)
    assert _count("identity", "postgres", "SQL") == before + 2


@pytest.mark.parametrize(
    "module",
    [
        "services.frontend.app",
        "services.gateway.app",
        "services.github_app.app",
        "services.identity.__main__",
        "services.calc.server",
    ],
)
def test_every_service_names_declared_edges_only(module: str) -> None:
    """The services look their edges up at import: an undeclared one fails here."""
    importlib.import_module(module)
