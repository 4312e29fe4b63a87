"""kind clusters for kdemo: configuration, create or reuse, load images, delete."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kdemo.errors import KdemoError, UsageError
from kdemo.runtime.kube.conventions import NODE_PORTS
from kdemo.runtime.kube.tools import run_tool

__all__ = [
    "CLUSTER_LABEL",
    "PORT_LABEL_PREFIX",
    "cluster_exists",
    "context_name",
    "create_cluster",
    "delete_cluster",
    "host_ports_from_labels",
    "kind_config",
    "load_image",
]

CLUSTER_LABEL = "kdemo.dev/cluster"
"""Set on the node of every cluster kdemo creates: another cluster of that name is not ours."""
PORT_LABEL_PREFIX = "kdemo.dev/port-"
_HINT = "see `kdemo doctor`; `kind delete cluster --name NAME` removes a broken cluster"


def context_name(cluster: str) -> str:
    return f"kind-{cluster}"


def kind_config(
    cluster: str, host_ports: Mapping[str, int], node_image: str | None = None
) -> dict[str, Any]:
    """A kind cluster of one node whose public NodePorts listen on 127.0.0.1 of the host.

    `node_image` replaces kind's default node image (e.g. one built offline, see
    docs/kind-offline.md); without it kind uses the image its release pins.
    """
    unknown = sorted(set(host_ports) - set(NODE_PORTS))
    if unknown:
        raise UsageError(
            f"no NodePort is declared for {', '.join(unknown)}",
            f"expose only {', '.join(NODE_PORTS)}",
        )
    labels = {CLUSTER_LABEL: cluster}
    labels.update({PORT_LABEL_PREFIX + name: str(port) for name, port in host_ports.items()})
    node: dict[str, Any] = {"role": "control-plane"}
    if node_image:
        node["image"] = node_image
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": cluster,
        "nodes": [
            {
                **node,
                "labels": labels,
                "extraPortMappings": [
                    {
                        "containerPort": NODE_PORTS[name],
                        "hostPort": port,
                        "listenAddress": "127.0.0.1",
                        "protocol": "TCP",
                    }
                    for name, port in sorted(host_ports.items())
                ],
            }
        ],
    }


def host_ports_from_labels(labels: Mapping[str, str]) -> dict[str, int]:
    """The host ports a kdemo cluster was created with, from its node's labels."""
    return {
        key.removeprefix(PORT_LABEL_PREFIX): int(value)
        for key, value in labels.items()
        if key.startswith(PORT_LABEL_PREFIX) and value.isdigit()
    }


def cluster_exists(cluster: str) -> bool:
    out = run_tool(["kind", "get", "clusters"], what="listing kind clusters", hint=_HINT)
    return cluster in out.split()


def create_cluster(
    cluster: str, host_ports: Mapping[str, int], node_image: str | None = None
) -> None:
    """Create the cluster; on failure nothing is left behind."""
    with tempfile.TemporaryDirectory(prefix="kdemo-kind-") as tmp:
        path = Path(tmp) / "kind.yaml"
        config = kind_config(cluster, host_ports, node_image)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        try:
            run_tool(
                ["kind", "create", "cluster", "--config", str(path), "--wait", "120s"],
                what=f"creating the kind cluster {cluster}",
                hint=_HINT,
                timeout=600,
            )
        except KdemoError:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # keep the first error
                subprocess.run(
                    ["kind", "delete", "cluster", "--name", cluster],
                    capture_output=True,
                    timeout=120,
                    check=False,
                )
            raise


def delete_cluster(cluster: str) -> None:
    run_tool(
        ["kind", "delete", "cluster", "--name", cluster],
        what=f"deleting the kind cluster {cluster}",
        hint=_HINT,
        timeout=300,
    )


def load_image(cluster: str, image: str) -> None:
    run_tool(
        ["kind", "load", "docker-image", "--name", cluster, image],
        what=f"loading {image} into the kind cluster {cluster}",
        hint=_HINT,
        timeout=600,
    )
