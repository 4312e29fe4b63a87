"""The cluster runtimes' plumbing that needs no cluster: forwards, and reading pod states."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from kubernetes import client

from kdemo.errors import KdemoError
from kdemo.runtime.kube.apply import image_trouble, stuck_pods
from kdemo.runtime.kube.portforward import Forward

IMAGE = "kdemo:abc123"


def _pod(reason: str | None, image: str = IMAGE, deleting: bool = False) -> client.V1Pod:
    waiting = client.V1ContainerStateWaiting(reason=reason, message=f"{reason} for {image}")
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="gateway-1", deletion_timestamp=datetime.now(UTC) if deleting else None
        ),
        spec=client.V1PodSpec(containers=[client.V1Container(name="gateway", image=image)]),
        status=client.V1PodStatus(
            container_statuses=[
                client.V1ContainerStatus(
                    name="gateway",
                    image=image,
                    image_id="",
                    ready=False,
                    restart_count=0,
                    state=client.V1ContainerState(waiting=waiting if reason else None),
                )
            ]
        ),
    )


@pytest.mark.parametrize(
    ("pods", "reason"),
    [
        ([_pod("ErrImageNeverPull")], "ErrImageNeverPull"),
        ([_pod("ImagePullBackOff")], "ImagePullBackOff"),
        ([_pod("ContainerCreating")], ""),
        ([_pod(None)], ""),
        ([_pod("ErrImageNeverPull", image="kdemo:old")], ""),  # a pod of the last rollout
        ([_pod("ErrImageNeverPull", deleting=True)], ""),
    ],
)
def test_image_trouble_looks_at_live_pods_of_the_image_applied(
    pods: list[client.V1Pod], reason: str
) -> None:
    """Only a live pod of the image just applied can make a rollout stop early."""
    assert image_trouble(pods, IMAGE)[0] == reason


def test_an_init_container_waiting_for_its_image_is_trouble_too() -> None:
    """The broker's pod formats its storage in an init container of the same image: a pull
    failure there must stop the rollout as early as one of the main container."""
    waiting = client.V1ContainerStateWaiting(reason="ErrImageNeverPull", message="never")
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="kafka-0"),
        spec=client.V1PodSpec(
            init_containers=[client.V1Container(name="format", image=IMAGE)],
            containers=[client.V1Container(name="kafka", image=IMAGE)],
        ),
        status=client.V1PodStatus(
            init_container_statuses=[
                client.V1ContainerStatus(
                    name="format",
                    image=IMAGE,
                    image_id="",
                    ready=False,
                    restart_count=0,
                    state=client.V1ContainerState(waiting=waiting),
                )
            ]
        ),
    )
    assert image_trouble([pod], IMAGE)[0] == "ErrImageNeverPull"


def _stateful_pod(name: str, revision: str, *, ready: bool, deleting: bool = False) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=name,
            labels={"controller-revision-hash": revision},
            deletion_timestamp=datetime.now(UTC) if deleting else None,
        ),
        status=client.V1PodStatus(
            conditions=[client.V1PodCondition(type="Ready", status=str(ready))]
        ),
    )


def test_only_a_never_ready_pod_of_an_older_revision_is_replaced() -> None:
    """A StatefulSet keeps a pod that broke on the last revision; kdemo deletes it so the
    new template can run. A ready old pod is the controller's to roll; a new one is left."""
    pods = [
        _stateful_pod("kafka-0", "kafka-old", ready=False),
        _stateful_pod("kafka-1", "kafka-old", ready=True),
        _stateful_pod("kafka-2", "kafka-new", ready=False),
        _stateful_pod("kafka-3", "kafka-old", ready=False, deleting=True),
    ]
    assert stuck_pods(pods, "kafka-new") == ["kafka-0"]
    assert stuck_pods(pods, None) == []


def test_a_forward_reads_its_port_and_stops_its_process() -> None:
    """The port kubectl announces is read; stop() ends the process and closes its pipes."""
    forward = Forward(
        ["sh", "-c", 'echo "Forwarding from 127.0.0.1:4321 -> 8080"; exec sleep 60'],
        target="svc/gateway",
        namespace="kdemo",
        timeout=10,
    )
    assert forward.port == 4321
    assert forward.alive
    forward.stop()
    assert not forward.alive


def test_a_failed_forward_says_what_kubectl_said() -> None:
    """kubectl's own error is the message; nothing is left running."""
    start = time.monotonic()
    with pytest.raises(KdemoError, match='pods "gateway" not found'):
        Forward(
            ["sh", "-c", "echo 'error: pods \"gateway\" not found' >&2; exit 1"],
            target="pod/gateway",
            namespace="kdemo",
            timeout=60,
        )
    assert time.monotonic() - start < 30  # it did not wait for the timeout
