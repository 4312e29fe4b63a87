"""The NetworkPolicies proven with real traffic: from every pod, a TCP connection to every
other pod's every port. What connects must be exactly the topology's edges inside the cluster.

The pods run kdemo's images (the services' one, or the Kafka broker's: both have Python),
so each probe is a small Python program run in the pod through the Kubernetes API (exec). A
port that is blocked times out or is refused; a port that is allowed and listening connects.
The nodes and edges are those of the stack's bus (test_lifecycle.py runs this on Kafka too).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.stream import stream

from kdemo.runtime.buses import runtime_node_names, view
from kdemo.runtime.kube.conventions import NAMESPACE, container_ports, edge_port
from kdemo.testing import KindStack

pytestmark = [pytest.mark.kind, pytest.mark.timeout(600)]

PROBE = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
targets = json.loads(sys.argv[1])
def probe(target):
    name, ip, port = target
    try:
        socket.create_connection((ip, port), timeout=3).close()
        return [name, port, True]
    except OSError:
        return [name, port, False]
with ThreadPoolExecutor(len(targets)) as pool:
    print(json.dumps(list(pool.map(probe, targets))))
"""


def declared_inside(bus: str) -> set[tuple[str, str, int]]:
    """(source, target, port) of every edge whose two ends are pods, on `bus`."""
    inside = runtime_node_names(bus)
    return {
        (e.source, e.target, edge_port(e).port)
        for e in view(bus).edges
        if e.source in inside and e.target in inside
    }


def _pods(stack: KindStack) -> dict[str, Any]:
    inside = runtime_node_names(stack.runtime.bus())
    pods = stack.runtime.core().list_namespaced_pod(NAMESPACE).items
    found = {}
    for pod in pods:
        name = pod.metadata.labels.get("app.kubernetes.io/name")
        if name in inside and pod.status.phase == "Running" and not pod.metadata.deletion_timestamp:
            found[name] = pod
    assert sorted(found) == sorted(inside), sorted(found)
    return found


def _probe(stack: KindStack, pod: Any, targets: list[tuple[str, str, int]]) -> list[Any]:
    client = stream(
        stack.runtime.core().connect_get_namespaced_pod_exec,
        pod.metadata.name,
        NAMESPACE,
        command=["python3", "-c", PROBE, json.dumps(targets)],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,  # so the websocket can be closed here, not left to the GC
    )
    try:
        client.run_forever(timeout=60)
        out = client.read_stdout()
        errors = client.read_stderr()
    finally:
        client.close()
        client.sock.shutdown()  # websocket-client skips this when the server closed first
    assert out.strip(), errors
    result: list[Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_only_declared_edges_connect(kind_stack: KindStack) -> None:
    """Every pod tries every other pod's ports: the connections made are the declared edges
    (frontend → postgres, calc → nats, ... are refused)."""
    assert_only_declared_edges_connect(kind_stack)


def assert_only_declared_edges_connect(kind_stack: KindStack) -> None:
    pods = _pods(kind_stack)
    connected: set[tuple[str, str, int]] = set()
    tried: set[tuple[str, str, int]] = set()
    for source, pod in pods.items():
        targets = [
            (name, other.status.pod_ip, port.port)
            for name, other in pods.items()
            if name != source
            for port in container_ports(name)
        ]
        for target, port, ok in _probe(kind_stack, pod, targets):
            tried.add((source, target, port))
            if ok:
                connected.add((source, target, port))
    wanted = declared_inside(kind_stack.runtime.bus())
    assert wanted <= tried, "the probe missed declared edges"
    assert connected - wanted == set(), "connections the topology does not declare"
    assert wanted - connected == set(), "declared connections that were refused"
