"""The cluster runtimes: `KubeRuntime` (any cluster by context) and `KindRuntime`.

Everything goes through the Kubernetes API with the official client, except rendering
(`kubectl kustomize`) and reaching pods from this machine (`kubectl port-forward`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from kdemo import topology
from kdemo.errors import ConfigError, KdemoError, StackNotUp, UsageError
from kdemo.runtime import busadmin
from kdemo.runtime.base import DeadLetter, NodeStatus, Progress, Runtime, TapEvent
from kdemo.runtime.kube import kind as kindtool
from kdemo.runtime.kube.apply import apply_objects, plan, wait_rollouts
from kdemo.runtime.kube.layout import IMAGE_NAME, NAMESPACE, container_ports, metrics_port
from kdemo.runtime.kube.portforward import port_forward
from kdemo.runtime.kube.render import MANIFESTS_DIR, render, set_image
from kdemo.runtime.kube.secrets import (
    config_hash,
    ensure_cluster_secrets,
    nats_config_secret,
    read_cluster_secrets,
    settings_secret,
    urls_configmap,
)
from kdemo.runtime.kube.status import node_status, pod_ready
from kdemo.runtime.kube.tools import check_docker, check_kind, image_tag, run_tool
from kdemo.runtime.local.ports import HOST, allocate_ports
from kdemo.runtime.local.state import STACK_FILE, read_json, write_json
from kdemo.runtime.natsconfig import ADMIN_USER, TAP_USER

__all__ = ["DEFAULT_CLUSTER", "KindRuntime", "KubeRuntime", "KubernetesRuntime", "public_env"]

DEFAULT_CLUSTER = "kdemo"
_ROOT = MANIFESTS_DIR.parent
_PUBLIC = tuple(n.name for n in topology.NODES if n.exposed)
_BUILD_HINT = "see `kdemo doctor`; the build's whole output: `docker build .` in the repository"


def public_env(name: str) -> str:
    return f"KDEMO_PUBLIC_URL_{name.upper().replace('-', '_')}"


class KubeRuntime(Runtime):
    """The stack in namespace `kdemo` of a cluster, reached through kube context `context`."""

    name = "kubernetes"

    def __init__(self, state_dir: Path, *, context: str | None = None) -> None:
        self.state_dir = Path(state_dir).absolute()
        stack = read_json(self.state_dir / STACK_FILE) or {}
        self.context: str | None = context or stack.get("context")
        self._api: client.ApiClient | None = None

    # -- plumbing --------------------------------------------------------------------------

    def _stack(self) -> dict[str, Any]:
        stack = read_json(self.state_dir / STACK_FILE)
        if stack is None:
            raise StackNotUp(f"no stack in {self.state_dir}")
        return stack

    def api(self) -> client.ApiClient:
        if self._api is None:
            try:
                self._api = config.new_client_from_config(  # type: ignore[no-untyped-call]  # untyped
                    context=self.context
                )
            except (ConfigException, OSError) as exc:
                raise ConfigError(
                    f"no usable kube context {self.context or '(current)'}: {exc}",
                    "list contexts with `kubectl config get-contexts`; pass --context",
                ) from exc
        return self._api

    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api())

    def _overlay(self) -> Path:
        return MANIFESTS_DIR / "base"

    def _components(self, env: Mapping[str, str]) -> list[str]:
        return ["github-egress"] if env.get("KDEMO_GITHUB_TOKEN") else []

    def _image(self, progress: Progress) -> str:
        raise NotImplementedError

    def _urls(self) -> dict[str, str]:
        raise NotImplementedError

    # -- deploy ----------------------------------------------------------------------------

    def deploy(self, progress: Progress, image: str, urls: Mapping[str, str]) -> None:
        """Render, apply in order, create the stream, wait for every rollout."""
        env = os.environ
        progress("rendering manifests/ with kubectl kustomize")
        objects = set_image(render(self._overlay(), self._components(env)), IMAGE_NAME, image)
        stages = plan(objects)
        api = self.api()
        for stage in stages:
            if stage.title == "configuration, policies and services":
                secrets = ensure_cluster_secrets(self.core(), NAMESPACE, env)
                nats_conf = nats_config_secret(secrets)
                stage.objects += [nats_conf, urls_configmap(urls), settings_secret(env)]
                _annotate(objects, "nats", config_hash(nats_conf))
            progress(f"applying {stage.title} ({len(stage.objects)} objects)")
            apply_objects(api, stage.objects)
            if stage.waits:
                wait_rollouts(api, NAMESPACE, stage.waits, progress)
            if stage.title == "bus and database":
                progress("creating the stream and the durable consumers")
                with self._bus(ADMIN_USER) as admin:
                    busadmin.run_sync(busadmin.ensure_stream(admin))

    @contextlib.contextmanager
    def _bus(self, user: str) -> Iterator[busadmin.BusAccess]:
        password = read_cluster_secrets(self.core(), NAMESPACE).nats_passwords[user]
        with port_forward(
            context=self.context, namespace=NAMESPACE, target="svc/nats", remote_port=4222
        ) as port:
            yield busadmin.BusAccess(f"nats://{HOST}:{port}", user, password)

    # -- Runtime ---------------------------------------------------------------------------

    def up(self, progress: Progress) -> dict[str, str]:
        raise NotImplementedError

    def is_up(self) -> bool:
        if not (self.state_dir / STACK_FILE).exists():
            return False
        try:
            self.core().read_namespace(NAMESPACE, _request_timeout=5)
        except (ApiException, KdemoError, OSError):
            return False
        except Exception:
            return False
        return True

    def _delete_namespace(self, progress: Progress | None) -> None:
        if progress:
            progress(f"deleting namespace {NAMESPACE} (workloads, Secret and volumes)")
        try:
            self.core().delete_namespace(NAMESPACE)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def down(self, *, purge: bool = False, progress: Progress | None = None) -> None:
        self._delete_namespace(progress)
        (self.state_dir / STACK_FILE).unlink(missing_ok=True)

    def _pods(self, node: str) -> list[Any]:
        pods = self.core().list_namespaced_pod(
            NAMESPACE, label_selector=f"app.kubernetes.io/name={node}"
        )
        return sorted(pods.items, key=lambda p: p.metadata.name)

    def status(self) -> list[NodeStatus]:
        urls = self.public_urls() if (self.state_dir / STACK_FILE).exists() else {}
        now = datetime.now(UTC)
        rows = []
        for n in topology.runtime_nodes():
            url = urls.get(n.name) or f"{n.name}.{NAMESPACE}.svc:{container_ports(n.name)[0].port}"
            try:
                pods = self._pods(n.name)
            except (ApiException, KdemoError, OSError, HTTPError):
                pods = []  # the cluster does not answer: every node shows as down
            rows.append(node_status(n.name, pods, url=url, now=now))
        return rows

    def _pod(self, node: str) -> str:
        if node not in {n.name for n in topology.runtime_nodes()}:
            raise UsageError(
                f"unknown node {node!r}",
                f"choose one of: {', '.join(n.name for n in topology.runtime_nodes())}",
            )
        pods = self._pods(node)
        if not pods:
            raise KdemoError(f"{node} has no pod", "see `kdemo status`")
        ready = [p for p in pods if pod_ready(p)]
        return str((ready or pods)[0].metadata.name)

    def logs(self, node: str, *, follow: bool = False, lines: int = 200) -> Iterator[str]:
        name = self._pod(node)
        # Without preloading the client returns the raw urllib3 response (typed as str).
        response: Any = self.core().read_namespaced_pod_log(
            name, NAMESPACE, follow=follow, tail_lines=lines, _preload_content=False
        )
        try:
            buffer = b""
            for chunk in response.stream(4096):
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    yield line.decode(errors="replace")
            if buffer:
                yield buffer.decode(errors="replace")
        finally:
            response.release_conn()

    def kill(self, node: str) -> None:
        for pod in self._pods(node) if self._pod(node) else []:
            self.core().delete_namespaced_pod(pod.metadata.name, NAMESPACE, grace_period_seconds=0)

    def public_urls(self) -> dict[str, str]:
        return dict(self._stack().get("urls") or {})

    def webhook_secret(self) -> str:
        return read_cluster_secrets(self.core(), NAMESPACE).webhook_secret

    async def bus_tap(self, *, deliver_all: bool = True) -> AsyncIterator[TapEvent]:
        with self._bus(TAP_USER) as access:
            async for event in busadmin.tap(access, deliver_all=deliver_all):
                yield event

    def scrape(self, service: str) -> str:
        if topology.node(service).kind is not topology.NodeKind.SERVICE:
            raise UsageError(f"{service} has no metrics", "scrape one of the five services")
        port = metrics_port(service).port
        with port_forward(
            context=self.context,
            namespace=NAMESPACE,
            target=f"deploy/{service}",
            remote_port=port,
        ) as local:
            url = f"http://{HOST}:{local}/metrics"
            with urllib.request.urlopen(url, timeout=10) as r:
                return str(r.read().decode())

    def dlq_list(self) -> list[DeadLetter]:
        with self._bus(ADMIN_USER) as admin:
            return busadmin.run_sync(busadmin.dlq_list(admin))

    def dlq_replay(self, seqs: list[int] | None = None) -> int:
        with self._bus(ADMIN_USER) as admin:
            return busadmin.run_sync(busadmin.dlq_replay(admin, seqs))

    def database_url(self, role: str) -> str:  # pragma: no cover - needs a cluster
        raise KdemoError("database URLs are not exposed on clusters", "use `kdemo logs postgres`")


def _annotate(objects: list[dict[str, Any]], workload: str, value: str) -> None:
    """Put the config hash on a workload's pod template, so a changed config restarts it."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet") and obj["metadata"]["name"] == workload:
            meta = obj["spec"]["template"].setdefault("metadata", {})
            meta.setdefault("annotations", {})["kdemo.dev/config-hash"] = value


def _build_image(tag: str, progress: Progress) -> None:
    progress(f"building the image {tag} (docker build)")
    run_tool(
        ["docker", "build", "--tag", tag, str(_ROOT)],
        what=f"building {tag}",
        hint=_BUILD_HINT,
        timeout=1800,
    )


class KindRuntime(KubeRuntime):
    """A kind cluster on this machine; public services on 127.0.0.1 host ports."""

    name = "kind"

    def __init__(self, state_dir: Path, *, cluster: str | None = None) -> None:
        super().__init__(state_dir)
        stack = read_json(self.state_dir / STACK_FILE) or {}
        self.cluster = (
            cluster or stack.get("cluster") or os.environ.get("KDEMO_KIND_CLUSTER", DEFAULT_CLUSTER)
        )
        self.context = kindtool.context_name(self.cluster)

    def _overlay(self) -> Path:
        return MANIFESTS_DIR / "overlays" / "kind"

    def _cluster_ports(self) -> dict[str, int]:
        """The host ports of an existing cluster; an error when it is not kdemo's."""
        nodes = self.core().list_node().items
        labels = dict((nodes[0].metadata and nodes[0].metadata.labels) or {}) if nodes else {}
        if labels.get(kindtool.CLUSTER_LABEL) != self.cluster:
            raise UsageError(
                f"a kind cluster named {self.cluster} exists and was not created by kdemo",
                "set KDEMO_KIND_CLUSTER to another name, or delete it: "
                f"kind delete cluster --name {self.cluster}",
            )
        return kindtool.host_ports_from_labels(labels)

    def up(self, progress: Progress) -> dict[str, str]:
        old = read_json(self.state_dir / STACK_FILE) or {}
        if old.get("runtime", "kind") != "kind":
            raise UsageError(
                f"the stack in {self.state_dir} uses the {old['runtime']} runtime",
                "run `kdemo down` first, or use another KDEMO_STATE_DIR",
            )
        progress("checking docker and kind")
        check_docker()
        check_kind()
        if shutil.which("kubectl") is None:
            raise KdemoError("kubectl is not installed", "see `kdemo doctor`")
        if kindtool.cluster_exists(self.cluster):
            progress(f"reusing the kind cluster {self.cluster}")
            ports = self._cluster_ports()
        else:
            wanted = {k: v for k, v in allocate_ports(old.get("ports")).items() if k in _PUBLIC}
            progress(f"creating the kind cluster {self.cluster} (a minute or two)")
            kindtool.create_cluster(self.cluster, wanted)
            ports = wanted
        urls = {name: f"http://{HOST}:{ports[name]}" for name in _PUBLIC}
        image = f"{IMAGE_NAME}:{image_tag(_ROOT)}"
        _build_image(image, progress)
        progress(f"loading {image} into the cluster (kind load)")
        kindtool.load_image(self.cluster, image)
        write_json(
            self.state_dir / STACK_FILE,
            {
                "runtime": "kind",
                "context": self.context,
                "cluster": self.cluster,
                "urls": urls,
                "ports": ports,
                "image": image,
            },
        )
        self.deploy(progress, image, urls)
        return urls

    def down(self, *, purge: bool = False, progress: Progress | None = None) -> None:
        if progress:
            progress(f"deleting the kind cluster {self.cluster} (its data goes with it)")
        if kindtool.cluster_exists(self.cluster):
            self._cluster_ports()  # never delete a cluster that is not kdemo's
            kindtool.delete_cluster(self.cluster)
        (self.state_dir / STACK_FILE).unlink(missing_ok=True)


class KubernetesRuntime(KubeRuntime):
    """An existing cluster (`--context`), images pushed to `--registry`.

    The public URLs are the user's (an Ingress, e.g. `manifests/components/ingress`, or a
    load balancer): `KDEMO_PUBLIC_URL_FRONTEND`, `..._GATEWAY`, `..._GITHUB_APP`.
    """

    name = "kubernetes"

    def __init__(
        self, state_dir: Path, *, context: str | None = None, registry: str | None = None
    ) -> None:
        super().__init__(state_dir, context=context)
        stack = read_json(self.state_dir / STACK_FILE) or {}
        self.registry: str | None = registry or stack.get("registry")

    def up(self, progress: Progress) -> dict[str, str]:
        if not self.context:
            raise UsageError("--context is required with --runtime kubernetes", _CONTEXT_HINT)
        if not self.registry:
            raise UsageError(
                "--registry is required with --runtime kubernetes",
                "pass the registry the cluster pulls from, e.g. --registry ghcr.io/you",
            )
        missing = [public_env(n) for n in _PUBLIC if not os.environ.get(public_env(n))]
        if missing:
            raise UsageError(
                f"{', '.join(missing)} not set: the cluster's public URLs are yours to give",
                "expose frontend, gateway and github-app (manifests/components/ingress) "
                "and set these variables to their URLs",
            )
        urls = {n: os.environ[public_env(n)].rstrip("/") for n in _PUBLIC}
        check_docker()
        self.api()  # fail on a bad context before building anything
        image = f"{self.registry.rstrip('/')}/{IMAGE_NAME}:{image_tag(_ROOT)}"
        _build_image(image, progress)
        progress(f"pushing {image}")
        run_tool(["docker", "push", image], what=f"pushing {image}", hint=_PUSH_HINT)
        write_json(
            self.state_dir / STACK_FILE,
            {
                "runtime": "kubernetes",
                "context": self.context,
                "registry": self.registry,
                "urls": urls,
                "image": image,
            },
        )
        self.deploy(progress, image, urls)
        return urls


_CONTEXT_HINT = "name a context from `kubectl config get-contexts`, e.g. --context my-cluster"
_PUSH_HINT = "log in first (`docker login REGISTRY`) and check that --registry is right"
