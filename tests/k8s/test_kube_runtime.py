"""The cluster runtime's logic that needs no API server: order, rollouts, status, secrets.

What talks to an API server (apply, waiting, logs, port-forwarding) is exercised by the
kind-marked tests; a real API server in the suite is left to a follow-up.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from typer.testing import CliRunner

from kdemo import topology
from kdemo.cli import app
from kdemo.errors import KdemoError, UsageError
from kdemo.runtime import get_runtime
from kdemo.runtime.kube import KindRuntime, KubeRuntime
from kdemo.runtime.kube.apply import plan, rollout_done
from kdemo.runtime.kube.conventions import NODE_PORTS
from kdemo.runtime.kube.kind import host_ports_from_labels, kind_config
from kdemo.runtime.kube.portforward import parse_forwarding_line, port_forward_argv
from kdemo.runtime.kube.render import set_image
from kdemo.runtime.kube.secrets import (
    nats_config_secret,
    secret_data,
    secrets_from_data,
    settings_secret,
    urls_configmap,
)
from kdemo.runtime.kube.status import node_status, pod_state
from kdemo.runtime.kube.tools import KIND_MIN_VERSION, parse_kind_version
from kdemo.runtime.natsconfig import nats_permissions
from kdemo.runtime.secrets import new_secrets
from tests.k8s.support import rendered

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_plan_orders_namespace_config_stateful_then_services() -> None:
    """Namespace first, then config and policies, then bus and database, then the services."""
    stages = plan(rendered("kind"))
    assert [s.title for s in stages] == [
        "namespace",
        "configuration, policies and services",
        "bus and database",
        "services",
    ]
    assert {o["kind"] for o in stages[0].objects} == {"Namespace"}
    assert sorted(name for _, name in stages[2].waits) == ["nats", "postgres"]
    assert sorted(name for _, name in stages[3].waits) == sorted(
        n.name for n in topology.service_nodes()
    )
    assert stages[1].waits == []
    assert sum(len(s.objects) for s in stages) == len(rendered("kind"))


def test_plan_refuses_an_object_without_a_name() -> None:
    """An object without metadata.name is a clear error, not a KeyError."""
    with pytest.raises(KdemoError, match=r"no kind or metadata\.name"):
        plan([{"kind": "ConfigMap", "metadata": {}}])


def _deployment(**status: Any) -> dict[str, Any]:
    obj = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="gateway", generation=2),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"a": "b"}),
            template=client.V1PodTemplateSpec(),
        ),
        status=client.V1DeploymentStatus(**status),
    )
    return dict(client.ApiClient().sanitize_for_serialization(obj))


@pytest.mark.parametrize(
    ("status", "done", "why"),
    [
        ({"observed_generation": 1}, False, "controller"),
        ({"observed_generation": 2, "updated_replicas": 0}, False, "0/1 pods updated"),
        (
            {"observed_generation": 2, "updated_replicas": 1, "replicas": 2},
            False,
            "1 old pod(s)",
        ),
        (
            {"observed_generation": 2, "updated_replicas": 1, "replicas": 1},
            False,
            "0/1 pods available",
        ),
        (
            {
                "observed_generation": 2,
                "updated_replicas": 1,
                "replicas": 1,
                "available_replicas": 1,
            },
            True,
            "rolled out",
        ),
    ],
)
def test_deployment_rollout(status: dict[str, Any], done: bool, why: str) -> None:
    """A Deployment is rolled out once every pod is updated and available, old ones gone."""
    ok, reason = rollout_done("Deployment", _deployment(**status))
    assert ok is done
    assert why in reason


@pytest.mark.parametrize(
    ("status", "done"),
    [
        ({"updatedReplicas": 1, "readyReplicas": 0}, False),
        (
            {
                "updatedReplicas": 1,
                "readyReplicas": 1,
                "currentRevision": "a",
                "updateRevision": "b",
            },
            False,
        ),
        (
            {
                "updatedReplicas": 1,
                "readyReplicas": 1,
                "currentRevision": "b",
                "updateRevision": "b",
            },
            True,
        ),
    ],
)
def test_statefulset_rollout(status: dict[str, Any], done: bool) -> None:
    """A StatefulSet is rolled out when its pod runs the new revision and is ready."""
    obj = {
        "metadata": {"generation": 1},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, **status},
    }
    assert rollout_done("StatefulSet", obj)[0] is done


def _pod(
    *,
    ready: bool = False,
    phase: str = "Running",
    restarts: int = 0,
    waiting: str | None = None,
    deleting: bool = False,
    started: datetime | None = None,
) -> client.V1Pod:
    state = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(reason=waiting) if waiting else None,
        running=client.V1ContainerStateRunning(started_at=started) if started else None,
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="gateway-abc", deletion_timestamp=NOW if deleting else None
        ),
        status=client.V1PodStatus(
            phase=phase,
            conditions=[client.V1PodCondition(type="Ready", status=str(ready))],
            container_statuses=[
                client.V1ContainerStatus(
                    name="gateway",
                    image="kdemo",
                    image_id="",
                    ready=ready,
                    restart_count=restarts,
                    state=state,
                )
            ],
        ),
    )


@pytest.mark.parametrize(
    ("pod", "state"),
    [
        (_pod(ready=True, started=NOW), "ready"),
        (_pod(), "starting"),
        (_pod(phase="Pending"), "starting"),
        (_pod(restarts=2, waiting="CrashLoopBackOff"), "restarting"),
        (_pod(ready=True, deleting=True), "restarting"),
        (_pod(phase="Failed"), "down"),
    ],
)
def test_pod_state(pod: client.V1Pod, state: str) -> None:
    """Each pod maps to one of kdemo's states."""
    assert pod_state(pod) == state


def test_node_status_prefers_a_ready_pod_and_sums_restarts() -> None:
    """A node with one ready pod is ready; uptime from that pod, restarts summed over pods."""
    pods = [
        _pod(ready=True, restarts=1, started=NOW - timedelta(seconds=90)),
        _pod(restarts=2, waiting="CrashLoopBackOff"),
    ]
    row = node_status("gateway", pods, url="http://127.0.0.1:1", now=NOW)
    assert (row.state, row.ready, row.restarts) == ("ready", True, 3)
    assert row.uptime_s == pytest.approx(90)
    assert row.to_json()["pods"][1]["state"] == "restarting"
    assert "pid" not in row.to_json()


def test_node_without_pods_is_down() -> None:
    """No pod at all: the node is down."""
    row = node_status("nats", [], url="nats.kdemo.svc:4222", now=NOW)
    assert (row.state, row.kind, row.uptime_s) == ("down", "bus", 0.0)


def test_secret_round_trip() -> None:
    """The Secret's data maps back to the same secrets, every password included."""
    secrets = new_secrets({})
    data = secret_data(secrets)
    assert "db-password-ledger" in data
    assert "nats-password-frontend" in data
    assert secrets_from_data(data) == secrets


def test_secret_with_missing_keys_is_a_clear_error() -> None:
    """A Secret made by someone else names the missing keys and the fix."""
    with pytest.raises(KdemoError, match="lacks webhook-secret") as info:
        secrets_from_data({"eip712-salt": "0x00"})
    assert "kdemo down" in info.value.hint


def test_short_webhook_secret_is_refused() -> None:
    """KDEMO_GITHUB_WEBHOOK_SECRET shorter than 16 bytes is refused before anything is made."""
    with pytest.raises(KdemoError, match="too short"):
        new_secrets({"KDEMO_GITHUB_WEBHOOK_SECRET": "short"})


def test_nats_config_carries_the_local_permissions() -> None:
    """The cluster's nats-server has the same users and permissions as the local runtime."""
    import json

    secrets = new_secrets({})
    conf = json.loads(nats_config_secret(secrets)["stringData"]["nats.conf"])
    users = {u["user"]: u for u in conf["authorization"]["users"]}
    assert set(users) == set(secrets.nats_passwords)
    assert users["frontend"]["permissions"] == nats_permissions("frontend")
    assert conf["jetstream"]["store_dir"] == "/data/jetstream"


def test_settings_and_urls_objects() -> None:
    """Pass-through settings go to the settings Secret; public URLs to the ConfigMap."""
    settings = settings_secret({"KDEMO_INTENT_TTL": "600", "UNRELATED": "x"})
    assert settings["stringData"] == {"KDEMO_INTENT_TTL": "600"}
    urls = urls_configmap({"github-app": "http://127.0.0.1:1"})
    assert urls["data"] == {"KDEMO_PUBLIC_URL_GITHUB_APP": "http://127.0.0.1:1"}


def test_kind_config_binds_nodeports_to_loopback() -> None:
    """Each public NodePort is mapped to its host port on 127.0.0.1, remembered in labels."""
    ports = {"frontend": 41001, "gateway": 41002, "github-app": 41003}
    config = kind_config("kdemo-x", ports)
    (node,) = config["nodes"]
    mappings = {m["containerPort"]: m for m in node["extraPortMappings"]}
    assert set(mappings) == set(NODE_PORTS.values())
    assert {m["listenAddress"] for m in mappings.values()} == {"127.0.0.1"}
    assert mappings[NODE_PORTS["gateway"]]["hostPort"] == 41002
    assert host_ports_from_labels(node["labels"]) == ports


@pytest.mark.parametrize("image", [None, "kdemo-kind/node:v1.34.4-abc"])
def test_kind_config_uses_the_node_image_given(image: str | None) -> None:
    """A node image given (--node-image) is the node's; without one, kind picks its own."""
    (node,) = kind_config("kdemo-x", {"gateway": 41002}, image)["nodes"]
    assert node.get("image") == image


def test_kind_config_refuses_an_unexposed_service() -> None:
    """Only the public services have NodePorts."""
    with pytest.raises(UsageError, match="calc"):
        kind_config("kdemo", {"calc": 1})


def test_kind_nodeports_match_the_overlay() -> None:
    """The NodePorts the kind config maps are the ones the kind overlay declares."""
    declared = {
        s["metadata"]["name"]: s["spec"]["ports"][0]["nodePort"]
        for s in rendered("kind")
        if s["kind"] == "Service" and s["spec"]["type"] == "NodePort"
    }
    assert declared == NODE_PORTS


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("kind v0.30.0 go1.24.6 linux/amd64", (0, 30, 0)),
        ("kind v0.23.0 go1.22 linux/amd64", (0, 23, 0)),
        ("something else", None),
    ],
)
def test_kind_version_parsing(text: str, version: tuple[int, int, int] | None) -> None:
    """kind's version line is parsed; 0.23 is below the minimum that enforces policies."""
    assert parse_kind_version(text) == version
    if version is not None:
        assert (version >= KIND_MIN_VERSION) is (version[1] >= 24)


def test_port_forward_command_and_answer() -> None:
    """port-forward binds 127.0.0.1 with a random local port, which is read back."""
    argv = port_forward_argv(
        "kubectl", context="kind-kdemo", namespace="kdemo", target="svc/nats", remote_port=4222
    )
    assert argv[argv.index("--address") + 1] == "127.0.0.1"
    assert argv[-2:] == ["svc/nats", ":4222"]
    assert argv[1:3] == ["--context", "kind-kdemo"]
    assert parse_forwarding_line("Forwarding from 127.0.0.1:38211 -> 4222\n") == 38211
    assert parse_forwarding_line("Forwarding from [::1]:38211 -> 4222") is None


def test_set_image_rewrites_only_the_kdemo_image() -> None:
    """The built image replaces `kdemo:*` everywhere: the database and the bus run from it too."""
    objects = set_image([dict(o) for o in rendered("kind")], "kdemo", "kdemo:abc123")
    images = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["image"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
    }
    assert {images[n.name] for n in topology.runtime_nodes()} == {"kdemo:abc123"}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--runtime", "kubernetes", "--registry", "r.example/x"], "--context"),
        (["--runtime", "kubernetes", "--context", "c"], "KDEMO_PUBLIC_URL_FRONTEND"),
        (["--runtime", "kind", "--context", "c"], "--context"),
        (["--runtime", "local", "--registry", "r"], "--registry"),
        (["--runtime", "local", "--node-image", "n:1"], "--node-image"),
        (["--runtime", "kubernetes", "--node-image", "n:1"], "--node-image"),
    ],
)
def test_up_refuses_wrong_cluster_options(tmp_path: Path, args: list[str], named: str) -> None:
    """A missing or misplaced cluster option is a usage error (exit 2) naming it."""
    unset: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith("KDEMO_PUBLIC_URL_")
    }
    done = CliRunner().invoke(app, ["up", *args], env={**unset, "KDEMO_STATE_DIR": str(tmp_path)})
    assert done.exit_code == 2, done.stderr
    assert named in done.stderr
    assert not (tmp_path / "stack.json").exists()


@pytest.mark.parametrize(("name", "cls"), [("kind", KindRuntime), ("kubernetes", KubeRuntime)])
def test_stack_file_selects_the_cluster_runtime(tmp_path: Path, name: str, cls: type) -> None:
    """Every command finds the cluster runtime through stack.json, with its context."""
    (tmp_path / "stack.json").write_text(
        json.dumps({"runtime": name, "context": "kind-kdemo", "urls": {}})
    )
    runtime = get_runtime(tmp_path)
    assert isinstance(runtime, cls)
    assert runtime.name == name
    assert runtime.context == "kind-kdemo"
