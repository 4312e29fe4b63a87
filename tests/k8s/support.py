"""Rendering the manifests for the tests, and the NetworkPolicy reachability evaluator."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kdemo.runtime.kube.conventions import NAMESPACE
from kdemo.runtime.kube.render import MANIFESTS_DIR, render

Manifest = dict[str, Any]
OVERLAYS = {
    "base": (MANIFESTS_DIR / "base", ()),
    "kind": (MANIFESTS_DIR / "overlays" / "kind", ()),
    "kind+github-egress": (MANIFESTS_DIR / "overlays" / "kind", ("github-egress",)),
    "base+ingress": (MANIFESTS_DIR / "base", ("ingress",)),
    "kind+bus-kafka": (MANIFESTS_DIR / "overlays" / "kind", ("bus-kafka",)),
}
BUS_OF_OVERLAY = {"kind": "nats", "kind+bus-kafka": "kafka"}
"""The overlays the per-bus tests render: the same kind overlay with each bus."""
POD_IP = ipaddress.ip_address("10.244.0.10")
"""A pod address as kind assigns them (pod subnet 10.244.0.0/16)."""
INTERNET_IP = ipaddress.ip_address("140.82.112.5")
"""An address outside every private range (api.github.com's block)."""
EXTERNAL = "external"


@functools.cache
def rendered(overlay: str) -> tuple[Manifest, ...]:
    path, components = OVERLAYS[overlay]
    return tuple(render(path, components))


def of_kind(objects: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


@dataclass(frozen=True)
class Pod:
    name: str
    labels: Mapping[str, str]
    ports: Mapping[str, int]  # port name -> number


def pods(objects: Iterable[Manifest]) -> list[Pod]:
    """One pod per workload, from its pod template."""
    out = []
    for obj in objects:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        template = obj["spec"]["template"]
        ports = {
            p["name"]: p["containerPort"]
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
        }
        out.append(Pod(obj["metadata"]["name"], template["metadata"]["labels"], ports))
    return out


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector semantics (matchLabels and matchExpressions)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _port_ok(rules_ports: list[Manifest] | None, target: Pod, port: str) -> bool:
    if not rules_ports:  # no ports: every port
        return True
    number = target.ports.get(port)
    for p in rules_ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        if p.get("port") in (port, number):
            return True
    return False


def _peer_is_pod(peer: Manifest, pod: Pod) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        inside = POD_IP in ipaddress.ip_network(block["cidr"])
        excepted = any(POD_IP in ipaddress.ip_network(c) for c in block.get("except") or [])
        return inside and not excepted
    if "namespaceSelector" in peer and not selects(
        peer["namespaceSelector"], {"kubernetes.io/metadata.name": NAMESPACE}
    ):
        return False
    return selects(peer.get("podSelector"), pod.labels)


def _peer_is_internet(peer: Manifest) -> bool:
    block = peer.get("ipBlock")
    if block is None:
        return False
    inside = INTERNET_IP in ipaddress.ip_network(block["cidr"])
    return inside and not any(
        INTERNET_IP in ipaddress.ip_network(c) for c in block.get("except") or []
    )


def _allowed(
    policies: list[Manifest], pod: Pod, direction: str, peer_ok: Any, target: Pod | None, port: str
) -> bool:
    """Whether policies of `direction` selecting `pod` let the connection through."""
    kind = "Ingress" if direction == "ingress" else "Egress"
    selecting = [
        p
        for p in policies
        if selects(p["spec"]["podSelector"], pod.labels) and kind in p["spec"]["policyTypes"]
    ]
    if not selecting:
        return True  # not isolated in this direction
    key = "from" if direction == "ingress" else "to"
    for policy in selecting:
        for rule in policy["spec"].get(direction) or []:
            peers = rule.get(key)
            peer_match = peers is None or any(peer_ok(peer) for peer in peers)  # none: any
            ports_match = target is None or _port_ok(rule.get("ports"), target, port)
            if peer_match and ports_match:
                return True
    return False


def reachability(objects: Iterable[Manifest]) -> set[tuple[str, str, str]]:
    """Every (source, target, port) a connection may be opened on; `external` is outside.

    Ports are named for pods, and `tcp/<number>` towards the internet.
    """
    objects = list(objects)
    policies = of_kind(objects, "NetworkPolicy")
    all_pods = pods(objects)
    edges: set[tuple[str, str, str]] = set()
    for target in all_pods:
        for port in target.ports:
            if _allowed(policies, target, "ingress", _peer_is_internet, target, port):
                edges.add((EXTERNAL, target.name, port))
            for source in all_pods:
                if source is target:
                    continue
                out = _allowed(
                    policies, source, "egress", lambda p, t=target: _peer_is_pod(p, t), target, port
                )
                inn = _allowed(
                    policies,
                    target,
                    "ingress",
                    lambda p, s=source: _peer_is_pod(p, s),
                    target,
                    port,
                )
                if out and inn:
                    edges.add((source.name, target.name, port))
    internet = Pod(EXTERNAL, {}, {f"tcp/{n}": n for n in (53, 80, 443, 4222, 5432)})
    for source in all_pods:
        for port in internet.ports:
            if _allowed(policies, source, "egress", _peer_is_internet, internet, port):
                edges.add((source.name, EXTERNAL, port))
    return edges
