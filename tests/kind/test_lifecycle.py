"""Run last (see conftest.py): another runtime on the same cluster, a cluster kdemo did not
create, `down` then `up` again, and last the stack on Kafka (which the session ends with)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from kdemo.runtime.kube import KindRuntime
from kdemo.runtime.kube.conventions import NAMESPACE
from kdemo.runtime.kube.portforward import port_forward
from kdemo.runtime.stackfile import load_stack
from kdemo.testing import KindStack, run_kdemo
from tests.kind.conftest import wait_for
from tests.kind.test_policies import assert_only_declared_edges_connect

pytestmark = [pytest.mark.kind, pytest.mark.timeout(1800)]


@pytest.fixture(autouse=True)
def _only_our_cluster(kind_stack: KindStack) -> None:
    """These tests take the stack down: never on a cluster this session did not create."""
    if not kind_stack.cluster.created:
        pytest.skip(f"the cluster {kind_stack.cluster.name} existed before the session: kept")


PUBLIC = ("frontend", "gateway", "github-app")
"""The public services: each serves HTTP on its Service's port 8080."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kind(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kind", *args], capture_output=True, text=True, timeout=600, check=False)


def _clusters() -> list[str]:
    return _kind("get", "clusters").stdout.split()


def test_the_kubernetes_runtime_on_the_same_cluster(kind_stack: KindStack, tmp_path: Path) -> None:
    """`kdemo up --runtime kubernetes --context kind-…` as an existing-cluster user: the image
    already on the node (no registry), public URLs given (port-forwards), smoke passes, down
    deletes the namespace."""
    recorded = load_stack(kind_stack.state_dir)
    assert recorded is not None
    assert recorded.image is not None
    image = recorded.image
    loaded = _kind("load", "docker-image", "--name", kind_stack.cluster.name, image)
    assert loaded.returncode == 0, loaded.stderr
    ports = {name: _free_port() for name in PUBLIC}
    env = {
        **os.environ,
        "KDEMO_STATE_DIR": str(tmp_path),
        **{
            f"KDEMO_PUBLIC_URL_{name.upper().replace('-', '_')}": f"http://127.0.0.1:{port}"
            for name, port in ports.items()
        },
    }
    up = run_kdemo(
        "up", "--runtime", "kubernetes", "--context", kind_stack.cluster.context, env=env,
        timeout=900,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert "no --registry" in up.stderr

    def one_pod_each() -> bool:  # the new URLs restarted the services: let the old pods go
        pods = kind_stack.runtime.core().list_namespaced_pod(NAMESPACE).items
        names = [p.metadata.labels.get("app.kubernetes.io/name") for p in pods]
        return all(names.count(name) == 1 for name in PUBLIC)

    wait_for(one_pod_each, "the services' old pods to terminate")
    with contextlib.ExitStack() as forwards:
        for name, port in ports.items():  # as a user would: kubectl port-forward
            forwards.enter_context(
                port_forward(
                    context=kind_stack.cluster.context,
                    namespace=NAMESPACE,
                    target=f"svc/{name}",
                    remote_port=8080,
                    local_port=port,
                )
            )
        status = json.loads(run_kdemo("status", "-o", "json", env=env).stdout)
        assert status["runtime"] == "kubernetes"
        assert all(row["ready"] for row in status["services"]), status
        smoke = run_kdemo("smoke", env=env)
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    down = run_kdemo("down", env=env)
    assert down.returncode == 0, down.stderr
    namespaces = kind_stack.runtime.core().list_namespace().items
    assert NAMESPACE not in [ns.metadata.name for ns in namespaces]
    assert kind_stack.cluster.name in _clusters()  # an existing cluster is never deleted


def test_a_cluster_kdemo_did_not_create_is_refused(kind_stack: KindStack, tmp_path: Path) -> None:
    """`up` into, and `down` of, a kind cluster of the same name that kdemo did not create
    are refused (exit 2), and the cluster is left alone."""
    foreign = f"{kind_stack.cluster.name}-foreign"
    argv = ["create", "cluster", "--name", foreign, "--wait", "120s"]
    if os.environ.get("KDEMO_KIND_NODE_IMAGE"):
        argv += ["--image", os.environ["KDEMO_KIND_NODE_IMAGE"]]
    created = _kind(*argv)
    assert created.returncode == 0, created.stderr
    try:
        env = {**os.environ, "KDEMO_STATE_DIR": str(tmp_path), "KDEMO_KIND_CLUSTER": foreign}
        up = run_kdemo("up", "--runtime", "kind", env=env, timeout=900)
        assert up.returncode == 2, up.stderr
        assert f"a kind cluster named {foreign} exists and was not created by kdemo" in up.stderr
        (tmp_path / "stack.json").write_text(
            json.dumps({"runtime": "kind", "cluster": foreign, "context": f"kind-{foreign}"})
        )
        down = run_kdemo("down", env=env)
        assert down.returncode == 2, down.stderr
        assert "was not created by kdemo" in down.stderr
        assert foreign in _clusters()
    finally:
        _kind("delete", "cluster", "--name", foreign)


def _docker_names() -> set[str]:
    done = subprocess.run(
        ["docker", "ps", "--all", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(done.stdout.split())


def test_down_removes_the_cluster_and_up_brings_it_back(kind_stack: KindStack) -> None:
    """`down` deletes kdemo's cluster and nothing else; `up` then starts from nothing and the
    flow works again."""
    name = kind_stack.cluster.name
    before = _docker_names()
    down = kind_stack.kdemo("down")
    assert down.returncode == 0, down.stderr
    assert "the kind cluster is deleted" in down.stderr
    assert name not in _clusters()
    ours = {c for c in before if c.startswith(f"{name}-")}
    assert ours  # the node container(s) of the cluster
    assert _docker_names().isdisjoint(ours)
    assert before - ours <= _docker_names()  # every other container is still there
    assert not (kind_stack.state_dir / "stack.json").exists()
    up = kind_stack.kdemo("up", "--runtime", "kind", timeout=1800)
    assert up.returncode == 0, up.stderr
    assert f"creating the kind cluster {name}" in up.stderr
    wait_for(
        lambda: kind_stack.kdemo("smoke").returncode == 0, "smoke on the new cluster", timeout=120
    )


def _tapped_event_ids(kind_stack: KindStack, wanted: int, timeout: float = 60.0) -> set[str]:
    """The ids of the events the dashboard's tap reads from the start (through the broker's
    port-forward), once it has read `wanted` of them."""

    async def read() -> set[str]:
        seen: set[str] = set()
        async with asyncio.timeout(timeout):
            async for event in kind_stack.runtime.bus_tap(deliver_all=True):
                seen.add(str((event.event or {}).get("id")))
                if len(seen) >= wanted:
                    return seen
        return seen

    return asyncio.run(read())


def test_the_stack_on_kafka(kind_stack: KindStack) -> None:
    """`up --bus kafka` on kind: refused while the stack runs NATS; after `down` the broker
    runs in the cluster from the image kdemo built, the smoke test passes, only the Kafka
    topology's edges connect, the tap reads the flow's events, and a killed broker comes
    back with the flow still working."""
    refused = kind_stack.kdemo("up", "--runtime", "kind", "--bus", "kafka")
    assert refused.returncode == 2, refused.stderr
    assert "runs on nats, not kafka" in " ".join(refused.stderr.split())
    down = kind_stack.kdemo("down")
    assert down.returncode == 0, down.stderr
    up = kind_stack.kdemo("up", "--runtime", "kind", "--bus", "kafka", timeout=1800)
    assert up.returncode == 0, up.stderr
    assert "creating the topics, the SCRAM users and the ACLs" in up.stderr
    # The cluster is a new one (its API on another port): a runtime that has not met the old.
    kind_stack = dataclasses.replace(
        kind_stack, runtime=KindRuntime(kind_stack.state_dir, cluster=kind_stack.cluster.name)
    )
    status = json.loads(kind_stack.kdemo("status", "-o", "json").stdout)
    assert status["bus"] == "kafka", status
    rows = {row["name"]: row for row in status["services"]}
    assert "nats" not in rows
    assert rows["kafka"]["kind"] == "bus"
    assert rows["kafka"]["ready"] is True
    image = kind_stack.runtime.core().read_namespaced_pod("kafka-0", NAMESPACE).spec.containers[0]
    assert str(image.image).startswith("kdemo-kafka:")
    assert image.image_pull_policy == "IfNotPresent"

    smoke = kind_stack.kdemo("smoke")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert_only_declared_edges_connect(kind_stack)
    # One flow: bounty.requested, .signed, .recorded and identity's three link events.
    assert len(_tapped_event_ids(kind_stack, wanted=6)) == 6
    dead = kind_stack.kdemo("dlq", "list")
    assert dead.returncode == 0, dead.stderr

    killed = kind_stack.kdemo("kill", "kafka")
    assert killed.returncode == 0, killed.stderr
    wait_for(
        lambda: kind_stack.kdemo("smoke").returncode == 0, "smoke after the broker was killed",
        timeout=240,
    )  # fmt: skip
