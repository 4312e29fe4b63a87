"""`KindRuntime`: a kind cluster on this machine, the public services on 127.0.0.1 ports."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

from kdemo.errors import KdemoError, UsageError
from kdemo.runtime.base import Progress
from kdemo.runtime.kube import kind as kindtool
from kdemo.runtime.kube.image import build_image, image_reference
from kdemo.runtime.kube.kubernetes import PUBLIC, KubeRuntime
from kdemo.runtime.kube.render import MANIFESTS_DIR
from kdemo.runtime.kube.tools import check_docker, check_kind, run_tool
from kdemo.runtime.ports import HOST, allocate_ports
from kdemo.runtime.stackfile import STACK_FILE, StackRecord, delete_stack, load_stack, save_stack

__all__ = ["CLUSTER_ENV", "DEFAULT_CLUSTER", "NODE_IMAGE_ENV", "KindRuntime"]

DEFAULT_CLUSTER = "kdemo"
CLUSTER_ENV = "KDEMO_KIND_CLUSTER"
NODE_IMAGE_ENV = "KDEMO_KIND_NODE_IMAGE"


class KindRuntime(KubeRuntime):
    """The stack on the kind cluster `cluster` (default `kdemo`), which kdemo creates.

    `node_image` (or `KDEMO_KIND_NODE_IMAGE`) is the node image a new cluster starts from;
    by default kind's own. `down` deletes the cluster — only one kdemo created.
    """

    name = "kind"

    def __init__(
        self,
        state_dir: Path,
        *,
        cluster: str | None = None,
        node_image: str | None = None,
        bus: str | None = None,
    ) -> None:
        super().__init__(state_dir, bus=bus)
        stack = load_stack(self.state_dir)
        self.cluster: str = (
            cluster
            or (stack.cluster if stack is not None else None)
            or os.environ.get(CLUSTER_ENV)
            or DEFAULT_CLUSTER
        )
        self.node_image = node_image or os.environ.get(NODE_IMAGE_ENV) or None
        self.context = kindtool.context_name(self.cluster)
        self._paused: dict[str, list[tuple[str, str]]] = {}

    def _overlay(self) -> Path:
        return MANIFESTS_DIR / "overlays" / "kind"

    def _cluster_ports(self) -> dict[str, int]:
        """The host ports of an existing cluster; an error when it is not kdemo's."""
        nodes = self._call("listing the nodes", lambda: self.core().list_node().items)
        labels = dict((nodes[0].metadata and nodes[0].metadata.labels) or {}) if nodes else {}
        if labels.get(kindtool.CLUSTER_LABEL) != self.cluster:
            raise UsageError(
                f"a kind cluster named {self.cluster} exists and was not created by kdemo",
                f"set {CLUSTER_ENV} to another name, or delete it yourself: "
                f"kind delete cluster --name {self.cluster}",
            )
        return kindtool.host_ports_from_labels(labels)

    def up(self, progress: Progress) -> dict[str, str]:
        old = load_stack(self.state_dir)
        if old is not None and old.runtime != "kind":
            raise UsageError(
                f"the stack in {self.state_dir} uses the {old.runtime} runtime",
                "run `kdemo down` first, or use another KDEMO_STATE_DIR",
            )
        bus = self._bus_for_up(old)
        progress("checking docker, kind and kubectl")
        check_docker()
        check_kind()
        if shutil.which("kubectl") is None:
            raise KdemoError("kubectl is not installed", "see `kdemo doctor`")
        if kindtool.cluster_exists(self.cluster):
            progress(f"reusing the kind cluster {self.cluster}")
            ports = self._cluster_ports()
        else:
            wanted = {
                k: v for k, v in allocate_ports(old.ports if old else None).items() if k in PUBLIC
            }
            image = f" from {self.node_image}" if self.node_image else ""
            progress(f"creating the kind cluster {self.cluster}{image} (a minute or two)")
            kindtool.create_cluster(self.cluster, wanted, self.node_image)
            ports = wanted
        missing = [name for name in PUBLIC if name not in ports]
        if missing:
            raise KdemoError(
                f"the kind cluster {self.cluster} has no host port for {', '.join(missing)}",
                "it was made by an older kdemo: `kdemo down`, then `kdemo up --runtime kind`",
            )
        urls = {name: f"http://{HOST}:{ports[name]}" for name in PUBLIC}
        image = image_reference()
        stack = StackRecord(
            runtime="kind",
            context=self.context,
            cluster=self.cluster,
            urls=urls,
            ports={**ports, **self._bus_ports(bus, old)},
            bus=bus,
        )
        # Recorded before anything else can fail: `down` must find the cluster it deletes.
        save_stack(self.state_dir, stack)
        build_image(image, progress)
        bus_image = self._build_bus_image(progress)
        for built in (image, bus_image):
            if built is not None:
                progress(f"loading {built} into the cluster (kind load)")
                kindtool.load_image(self.cluster, built)
        save_stack(self.state_dir, replace(stack, image=image))
        self.deploy(progress, image, urls, bus_image)
        return urls

    def down(self, *, purge: bool = False, progress: Progress | None = None) -> str:
        self.close()
        if kindtool.cluster_exists(self.cluster):
            self._check_ours_for_down(progress)
            if progress:
                progress(f"deleting the kind cluster {self.cluster} (its data goes with it)")
            kindtool.delete_cluster(self.cluster)
        delete_stack(self.state_dir)
        return "the kind cluster is deleted, its data with it"

    def _check_ours_for_down(self, progress: Progress | None) -> None:
        """Never delete a cluster that is not kdemo's. When its API does not answer (its
        docker daemon was restarted, say), this state directory's record is the proof."""
        try:
            self._cluster_ports()
        except UsageError:
            raise
        except KdemoError:
            recorded = load_stack(self.state_dir)
            if recorded is None or recorded.cluster != self.cluster:
                raise
            if progress:
                progress(f"the cluster {self.cluster} does not answer; {STACK_FILE} names it")

    # -- faults for `kdemo chaos` ----------------------------------------------------------

    def _containers(self, node: str) -> list[tuple[str, str]]:
        """(kind node, containerd id) of every running container of the node's pods."""
        self._check_node(node)
        found = []
        for pod in self._pods(node):
            for status in (pod.status and pod.status.container_statuses) or []:
                cid = str(status.container_id or "")
                if cid.startswith("containerd://") and status.state and status.state.running:
                    found.append((str(pod.spec.node_name), cid.removeprefix("containerd://")))
        if not found:
            raise KdemoError(f"{node} has no running container", "see `kdemo status`")
        return found

    def _task(self, host: str, cid: str, verb: str, node: str) -> None:
        # The cgroup freezer, through containerd on the kind node: what SIGSTOP is to a
        # process, without signalling a container's PID 1 (which ignores what it has no
        # handler for).
        run_tool(
            ["docker", "exec", host, "ctr", "--namespace", "k8s.io", "task", verb, cid],
            what=f"{verb} of {node}'s container {cid[:12]}",
            hint="is the kind cluster's node container running? see `docker ps`",
            timeout=30,
        )

    def pause(self, node: str) -> str:
        containers = self._containers(node)
        self._paused[node] = containers
        for host, cid in containers:
            self._task(host, cid, "pause", node)
        return "container " + ", ".join(cid[:12] for _, cid in containers)

    def resume(self, node: str) -> str:
        # The containers that were paused: the kubelet may have replaced them meanwhile
        # (a failed liveness probe), and then there is nothing left to resume.
        containers = self._paused.pop(node, None) or self._containers(node)
        resumed = []
        for host, cid in containers:
            try:
                self._task(host, cid, "resume", node)
                resumed.append(cid[:12])
            except KdemoError:
                if cid in {c for _, c in self._containers_or_none(node)}:
                    raise  # still there and still frozen: that must not pass silently
        return "container " + (", ".join(resumed) or "(replaced while paused)")

    def _containers_or_none(self, node: str) -> list[tuple[str, str]]:
        try:
            return self._containers(node)
        except KdemoError:
            return []
