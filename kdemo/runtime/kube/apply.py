"""Applying rendered objects: in dependency order, by server-side apply, waiting for rollouts.

Order: the namespace; then configuration, policies and Services; then the bus and the
database (StatefulSets), waited for, so the stream can be created before any service
binds to it; then the services (Deployments), waited for.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException

from kdemo.errors import KdemoError, NotReady
from kdemo.runtime.base import Progress
from kdemo.runtime.kube.conventions import FIELD_MANAGER

__all__ = [
    "ROLLOUT_TIMEOUT_S",
    "Stage",
    "StageKind",
    "apply_objects",
    "image_trouble",
    "object_key",
    "plan",
    "rollout_done",
    "wait_rollouts",
]

ROLLOUT_TIMEOUT_S = 300.0
Manifest = dict[str, Any]
_WORKLOADS = ("StatefulSet", "Deployment")
PULL_FAILURES = frozenset({"ErrImageNeverPull", "InvalidImageName"})
"""Waiting reasons no amount of waiting fixes: the image is not on the node and may not be
pulled, or its name is wrong. (ErrImagePull and ImagePullBackOff can pass: a registry's
rate limit, a tag pushed a moment ago; they are shown while waiting.)"""
PULL_TROUBLE = frozenset({"ErrImagePull", "ImagePullBackOff"})
_PULL_HINT = (
    "the cluster's nodes cannot get the image: push it with --registry, or load it onto "
    "the nodes (kind load docker-image, minikube image load)"
)


class StageKind(enum.Enum):
    """What a stage holds, in the order stages are applied (the value is its title)."""

    NAMESPACE = "namespace"
    CONFIGURATION = "configuration, policies and services"
    STATEFUL = "bus and database"
    SERVICES = "services"


_STAGE_OF = {
    "Namespace": StageKind.NAMESPACE,
    "StatefulSet": StageKind.STATEFUL,
    "Deployment": StageKind.SERVICES,
}


@dataclass
class Stage:
    """Objects applied together; `waits` are the rollouts awaited before the next stage."""

    kind: StageKind
    objects: list[Manifest] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.kind.value

    @property
    def waits(self) -> list[tuple[str, str]]:
        return [object_key(o)[1:] for o in self.objects if o["kind"] in _WORKLOADS]


def object_key(obj: Manifest) -> tuple[str, str, str]:
    """(namespace, kind, name) of an object."""
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(obj["kind"]), str(meta["name"]))


def plan(objects: Iterable[Manifest]) -> list[Stage]:
    """Group objects into ordered stages (empty stages dropped; input order kept within)."""
    stages = {kind: Stage(kind) for kind in StageKind}
    for obj in objects:
        if "kind" not in obj or "name" not in (obj.get("metadata") or {}):
            raise KdemoError(
                f"a rendered object has no kind or metadata.name: {str(obj)[:80]}",
                "check the manifests with `kubectl kustomize manifests/overlays/kind`",
            )
        stages[_STAGE_OF.get(obj["kind"], StageKind.CONFIGURATION)].objects.append(obj)
    return [s for s in stages.values() if s.objects]


def apply_objects(api: client.ApiClient, objects: Sequence[Manifest]) -> None:
    """Server-side apply each object with field manager `kdemo` (taking over conflicts)."""
    dyn = dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]  # untyped in the client
    for obj in objects:
        namespace, kind, name = object_key(obj)
        resource = dyn.resources.get(api_version=obj["apiVersion"], kind=kind)
        try:
            resource.server_side_apply(
                body=obj,
                name=name,
                namespace=namespace or None,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except ApiException as exc:
            raise KdemoError(
                f"the cluster refused {kind} {name}: {exc.reason} ({exc.status})",
                "see the API server's message with --debug; check your RBAC for namespace kdemo",
            ) from exc


def rollout_done(kind: str, obj: Manifest) -> tuple[bool, str]:
    """Whether a Deployment/StatefulSet (as a dict) finished its rollout, and what it waits for."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = obj.get("metadata") or {}
    want = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, "the controller to see the new spec"
    updated = int(status.get("updatedReplicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    if updated < want:
        return False, f"{updated}/{want} pods updated"
    if kind == "Deployment":
        total, available = (
            int(status.get("replicas") or 0),
            int(status.get("availableReplicas") or 0),
        )
        if total > updated:
            return False, f"{total - updated} old pod(s) to terminate"
        if available < updated:
            return False, f"{available}/{want} pods available"
        return True, "rolled out"
    if status.get("updateRevision") and status.get("currentRevision") != status.get(
        "updateRevision"
    ):
        return False, "pods to move to the new revision"
    if ready < want:
        return False, f"{ready}/{want} pods ready"
    return True, "rolled out"


def image_trouble(pods: Iterable[Any], image: str) -> tuple[str, str]:
    """(reason, `<reason>: <message>`) of the first container (init containers too) of a
    live pod of `image` that waits for its image; ('', '') when none does. Pods of an older
    image are ignored: a rollout replaces them."""
    for pod in pods:
        if pod.metadata and pod.metadata.deletion_timestamp:
            continue
        spec, state = pod.spec, pod.status
        containers = [*((spec and spec.init_containers) or []), *((spec and spec.containers) or [])]
        wanted = {c.name for c in containers if c.image == image}
        statuses = [
            *((state and state.init_container_statuses) or []),
            *((state and state.container_statuses) or []),
        ]
        for status in statuses:
            waiting = status.state and status.state.waiting
            if status.name in wanted and waiting and waiting.reason in PULL_FAILURES | PULL_TROUBLE:
                return waiting.reason, f"{waiting.reason}: {waiting.message or image}"
    return "", ""


def stuck_pods(pods: Iterable[Any], update_revision: str | None) -> list[str]:
    """Pods of a StatefulSet left on an older revision that never became ready.

    A StatefulSet does not replace a broken pod when its template changes (Kubernetes
    documents deleting it by hand: "forced rollback"), so an `up` that fixes what broke the
    last one would wait for ever. Deleting such a pod lets the controller make it anew."""
    if not update_revision:
        return []
    stuck = []
    for pod in pods:
        meta = pod.metadata
        if meta is None or meta.deletion_timestamp:
            continue
        if (meta.labels or {}).get("controller-revision-hash") == update_revision:
            continue
        conditions = (pod.status and pod.status.conditions) or []
        if not any(c.type == "Ready" and c.status == "True" for c in conditions):
            stuck.append(str(meta.name))
    return stuck


def _template_images(obj: Manifest) -> list[str]:
    pod = obj["spec"]["template"]["spec"]
    return [c["image"] for c in [*pod.get("initContainers", []), *pod["containers"]]]


def wait_rollouts(
    api: client.ApiClient,
    namespace: str,
    workloads: Sequence[tuple[str, str]],
    progress: Progress,
    *,
    timeout: float = ROLLOUT_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Wait until every (kind, name) rolled out, naming what is still awaited."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    read = {
        "Deployment": apps.read_namespaced_deployment_status,
        "StatefulSet": apps.read_namespaced_stateful_set_status,
    }
    pending = list(workloads)
    deadline = clock() + timeout
    last = ""
    while pending:
        waiting: list[str] = []
        for kind, name in list(pending):
            obj = api.sanitize_for_serialization(  # type: ignore[no-untyped-call]  # untyped
                read[kind](name, namespace)
            )
            done, why = rollout_done(kind, obj)
            if done:
                pending.remove((kind, name))
                continue
            pods = core.list_namespaced_pod(
                namespace, label_selector=f"app.kubernetes.io/name={name}"
            ).items
            if kind == "StatefulSet":
                revision = (obj.get("status") or {}).get("updateRevision")
                for pod in stuck_pods(pods, revision):
                    progress(f"replacing {pod}: it never became ready on the last revision")
                    core.delete_namespaced_pod(pod, namespace)
            reason, trouble = "", ""
            for image in _template_images(obj):
                reason, trouble = image_trouble(pods, image)
                if reason:
                    break
            if reason in PULL_FAILURES:
                raise NotReady(name, f"{kind} {name} cannot start: {trouble}", _PULL_HINT)
            waiting.append(f"{name} ({trouble or why})")
        if not pending:
            return
        message = "waiting for " + ", ".join(waiting)
        if message != last:
            progress(message)
            last = message
        if clock() > deadline:
            kind, name = pending[0]
            pulling = any(reason in waiting[0] for reason in PULL_TROUBLE)
            raise NotReady(
                name,
                f"{kind} {name} did not roll out within {timeout:.0f} s: {waiting[0]}",
                _PULL_HINT if pulling else f"see `kdemo status` and `kdemo logs {name}`",
            )
        time.sleep(2.0)  # polling interval of the API, not a synchronisation guess
