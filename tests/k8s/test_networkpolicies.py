"""The NetworkPolicies: generated from the topology, and proven to allow exactly its edges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kdemo.runtime.buses import DEFAULT_BUS, runtime_node_names, view
from kdemo.runtime.kube.conventions import edge_port
from kdemo.runtime.kube.netpol import DNS_PORT
from tests.k8s.support import EXTERNAL, of_kind, reachability, rendered, selects

ROOT = Path(__file__).resolve().parents[2]


def declared(include_optional: bool, bus: str = DEFAULT_BUS) -> set[tuple[str, str, str]]:
    """The topology's edges on `bus` as (source, target, port); actors outside the cluster as
    `external`."""
    out = set()
    inside = set(runtime_node_names(bus))
    for e in view(bus).edges:
        if e.optional and not include_optional:
            continue
        source = e.source if e.source in inside else EXTERNAL
        target = e.target if e.target in inside else EXTERNAL
        port = edge_port(e)
        out.add((source, target, port.name if target != EXTERNAL else f"tcp/{port.port}"))
    return out


def test_committed_policies_match_the_topology() -> None:
    """`gen_networkpolicies.py --check` passes: the committed files are what the topology says."""
    done = subprocess.run(
        [sys.executable, "scripts/gen_networkpolicies.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("overlay", "optional", "bus"),
    [
        ("base", False, "nats"),
        ("kind", False, "nats"),
        ("kind+github-egress", True, "nats"),
        ("kind+bus-kafka", False, "kafka"),
    ],
)
def test_reachability_equals_the_declared_topology(overlay: str, optional: bool, bus: str) -> None:
    """Who may connect to whom, computed from the rendered policies, is exactly the topology
    of the overlay's bus (on Kafka: no nats pod, no policy naming it, the broker's edges)."""
    allowed = reachability(rendered(overlay))
    wanted = declared(optional, bus)
    assert allowed - wanted == set(), "connections the topology does not declare"
    assert wanted - allowed == set(), "declared connections the policies block"


@pytest.mark.parametrize(
    ("source", "target", "port"),
    [
        ("frontend", "postgres", "postgres"),
        ("frontend", "calc", "grpc"),
        ("calc", "nats", "client"),
        ("github-app", "gateway", "http"),
        (EXTERNAL, "calc", "grpc"),
        (EXTERNAL, "postgres", "postgres"),
        (EXTERNAL, "nats", "client"),
        ("gateway", EXTERNAL, "tcp/443"),
    ],
)
def test_undeclared_connections_are_impossible(source: str, target: str, port: str) -> None:
    """Connections the topology does not declare are blocked, even with every component on."""
    assert (source, target, port) not in reachability(rendered("kind+github-egress"))


def test_github_api_egress_exists_only_with_its_component() -> None:
    """github-app reaches the internet on 443 only when the github-egress component is on."""
    assert ("github-app", EXTERNAL, "tcp/443") not in reachability(rendered("kind"))
    assert ("github-app", EXTERNAL, "tcp/443") in reachability(rendered("kind+github-egress"))


def test_every_pod_is_isolated_both_ways() -> None:
    """A default-deny policy selects every pod for ingress and egress."""
    deny = [
        p
        for p in of_kind(rendered("kind"), "NetworkPolicy")
        if p["spec"]["podSelector"] == {}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny
    assert set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}


@pytest.mark.parametrize("service", ["frontend", "gateway", "github-app", "identity"])
def test_services_may_resolve_names(service: str) -> None:
    """Every service that calls a peer by name may reach kube-dns on port 53, UDP and TCP."""
    for policy in of_kind(rendered("kind"), "NetworkPolicy"):
        spec = policy["spec"]
        if not selects(spec["podSelector"], {"app.kubernetes.io/name": service}):
            continue
        for rule in spec.get("egress") or []:
            to_dns = any(
                selects(peer.get("podSelector"), {"k8s-app": "kube-dns"})
                and selects(
                    peer.get("namespaceSelector"), {"kubernetes.io/metadata.name": "kube-system"}
                )
                for peer in rule.get("to", [])
            )
            protocols = {p["protocol"] for p in rule.get("ports", []) if p["port"] == DNS_PORT}
            if to_dns and protocols == {"UDP", "TCP"}:
                return
    pytest.fail(f"{service} has no DNS egress")


@pytest.mark.parametrize("dropped", ["default-deny", "egress-gateway-to-calc"])
def test_the_proof_notices_a_missing_policy(dropped: str) -> None:
    """Without default-deny the graph gains edges; without an allow it loses one."""
    objects = [o for o in rendered("kind") if o["metadata"]["name"] != dropped]
    assert reachability(objects) != declared(False)
