"""The cluster runtimes' shared part (`KubeRuntime`) and any existing cluster (`KubernetesRuntime`).

Everything goes through the Kubernetes API with the official client, except rendering
(`kubectl kustomize`) and reaching pods from this machine (`kubectl port-forward`, kept
open between calls). Every method raises only `KdemoError`; none blocks an event loop
(the bus tap does its blocking set-up in a thread).
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from urllib3.exceptions import HTTPError

from kdemo import topology
from kdemo.errors import ConfigError, KdemoError, UsageError
from kdemo.runtime import busadmin
from kdemo.runtime.base import (
    DeadLetter,
    NodeStatus,
    Progress,
    Runtime,
    TapEvent,
    query_refused,
)
from kdemo.runtime.buses import DEFAULT_BUS, check_bus, runtime_nodes
from kdemo.runtime.kafkaprobe import api_versions_ok
from kdemo.runtime.kube.apply import StageKind, apply_objects, plan, wait_rollouts
from kdemo.runtime.kube.conventions import IMAGE_NAME, NAMESPACE, container_ports, metrics_port
from kdemo.runtime.kube.image import build_image, image_reference
from kdemo.runtime.kube.kafka import (
    HOST_LISTENER_PORT,
    KAFKA_IMAGE_NAME,
    POD,
    build_kafka_image,
    kafka_config_secret,
    kafka_image_reference,
    restart_fingerprint,
)
from kdemo.runtime.kube.portforward import Forwards
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
from kdemo.runtime.kube.tools import check_docker, run_tool
from kdemo.runtime.natsconfig import ADMIN_USER, TAP_USER
from kdemo.runtime.ports import HOST, allocate_ports
from kdemo.runtime.settings import public_url_env
from kdemo.runtime.stackfile import (
    StackRecord,
    delete_stack,
    has_stack,
    load_stack,
    require_stack,
    save_stack,
)

if TYPE_CHECKING:
    from kdemo.runtime.kafkaadmin import KafkaAccess
    from kdemo.runtime.secrets import Secrets

__all__ = ["PUBLIC", "KubeRuntime", "KubernetesRuntime"]

PUBLIC = tuple(n.name for n in topology.NODES if n.exposed)
_SERVICES = tuple(n.name for n in topology.service_nodes())
_CLUSTER_ERRORS = (ApiException, HTTPError, OSError, ConfigException, ResourceNotFoundError)
"""What the Kubernetes client raises when the cluster cannot answer."""
_NAMESPACE_GONE_TIMEOUT_S = 180.0
_T = TypeVar("_T")


_BUS_ERRORS = busadmin.BUS_ERRORS
_NATS = ("svc/nats", container_ports("nats")[0].port)
_POSTGRES = ("svc/postgres", container_ports("postgres")[0].port)
_KAFKA = (f"pod/{POD}", HOST_LISTENER_PORT)


def _bus_error(exc: BaseException) -> KdemoError:
    if isinstance(exc, KdemoError):
        return exc
    return KdemoError(
        f"the bus stopped answering through the port-forward ({type(exc).__name__}: {exc})",
        "see `kdemo status`: the cluster restarts nats when it dies",
    )


def _nats_answers(port: int) -> bool:
    """Whether a NATS server greets on 127.0.0.1:`port` (it sends `INFO` at once)."""
    try:
        with socket.create_connection((HOST, port), timeout=3) as conn:
            conn.settimeout(3)
            return conn.recv(4) == b"INFO"
    except OSError:
        return False


def _cluster_error(what: str, exc: Exception) -> KdemoError:
    reason = f"{exc.status} {exc.reason}" if isinstance(exc, ApiException) else str(exc)
    return KdemoError(
        f"the cluster did not answer while {what} ({reason})",
        "check the cluster with `kdemo status`; `kdemo doctor` checks the tools",
    )


class KubeRuntime(Runtime):
    """The stack in namespace `kdemo` of a cluster, reached through kube context `context`.

    `up` is left to the subclasses: they differ in where the cluster and the image come from.
    """

    name = "kubernetes"

    def __init__(
        self, state_dir: Path, *, context: str | None = None, bus: str | None = None
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        stack = load_stack(self.state_dir)
        self.context: str | None = context or (stack.context if stack is not None else None)
        self.wanted_bus = check_bus(bus) if bus is not None else None
        self._api: client.ApiClient | None = None
        self._forwards: Forwards | None = None

    # -- plumbing --------------------------------------------------------------------------

    def _stack(self) -> StackRecord:
        return require_stack(self.state_dir)

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

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        """One API call; the client's own errors become a KdemoError naming `what`."""
        try:
            return call()
        except KdemoError:
            raise
        except _CLUSTER_ERRORS as exc:
            raise _cluster_error(what, exc) from exc

    @property
    def forwards(self) -> Forwards:
        if self._forwards is None:
            self._forwards = Forwards(context=self.context, namespace=NAMESPACE)
        return self._forwards

    def close(self) -> None:
        """Stop the port-forwards this runtime keeps open."""
        if self._forwards is not None:
            self._forwards.close()

    def _overlay(self) -> Path:
        return MANIFESTS_DIR / "base"

    def _components(self, env: Mapping[str, str]) -> list[str]:
        bus = self.bus()
        components = ["github-egress"] if env.get("KDEMO_GITHUB_TOKEN") else []
        return components + ([f"bus-{bus}"] if bus != DEFAULT_BUS else [])

    def bus(self) -> str:
        stack = load_stack(self.state_dir)
        if stack is not None:
            return stack.bus
        return self.wanted_bus or DEFAULT_BUS

    def _bus_for_up(self, old: StackRecord | None) -> str:
        """The bus this `up` deploys: the recorded one; asking for another is an error."""
        if old is None:
            return self.wanted_bus or DEFAULT_BUS
        if self.wanted_bus is not None and self.wanted_bus != old.bus:
            raise UsageError(
                f"the stack in {self.state_dir} runs on {old.bus}, not {self.wanted_bus}: "
                "a running stack keeps its bus",
                f"run `kdemo down` first, then `kdemo up --bus {self.wanted_bus}`, "
                "or use another KDEMO_STATE_DIR",
            )
        return old.bus

    def _bus_ports(self, bus: str, old: StackRecord | None) -> dict[str, int]:
        """Kafka: the local port of the port-forward its host listener advertises (kept)."""
        if bus != "kafka":
            return {}
        kept = old.ports if old is not None else None
        return {"kafka": allocate_ports(kept, bus="kafka")["kafka"]}

    def _build_bus_image(self, progress: Progress, repository: str | None = None) -> str | None:
        """The Kafka image (None on NATS, which runs from the services' image)."""
        if self.bus() != "kafka":
            return None
        image = kafka_image_reference(repository)
        build_kafka_image(image, progress)
        return image

    # -- deploy ----------------------------------------------------------------------------

    def deploy(
        self,
        progress: Progress,
        image: str,
        urls: Mapping[str, str],
        bus_image: str | None = None,
    ) -> None:
        """Render, apply in order, set up the bus, wait for every rollout."""
        env = os.environ
        progress("rendering manifests/ with kubectl kustomize")
        objects = set_image(render(self._overlay(), self._components(env)), IMAGE_NAME, image)
        if bus_image is not None:
            set_image(objects, KAFKA_IMAGE_NAME, bus_image)
        api = self.api()
        for stage in plan(objects):
            if stage.kind is StageKind.CONFIGURATION:
                secrets = self._call(
                    "creating the Secret",
                    lambda: ensure_cluster_secrets(self.core(), NAMESPACE, env),
                )
                bus_conf, fingerprint = self._bus_config(secrets)
                settings = [urls_configmap(urls), settings_secret(env)]
                stage.objects += [bus_conf, *settings]
                # Pods read these at start: a changed one must restart what reads it.
                _annotate(objects, [self.bus()], config_hash(fingerprint))
                _annotate(objects, _SERVICES, config_hash(*settings))
            progress(f"applying {stage.title} ({len(stage.objects)} objects)")
            self._call(
                f"applying {stage.title}", functools.partial(apply_objects, api, stage.objects)
            )
            if stage.waits:
                self._call(
                    "waiting for rollouts",
                    functools.partial(wait_rollouts, api, NAMESPACE, stage.waits, progress),
                )
            if stage.kind is StageKind.STATEFUL:
                self._provision_bus(progress)

    def _bus_config(self, secrets: Secrets) -> tuple[dict[str, Any], dict[str, Any]]:
        """The bus's configuration Secret, and what of it the bus reads when it starts."""
        if self.bus() == "kafka":
            secret = kafka_config_secret(secrets, self._stack().ports["kafka"])
            return secret, restart_fingerprint(secret)
        secret = nats_config_secret(secrets)
        return secret, secret

    def _provision_bus(self, progress: Progress) -> None:
        if self.bus() == "kafka":
            from kdemo.runtime import kafkaadmin  # late: confluent-kafka is heavy

            progress("creating the topics, the SCRAM users and the ACLs")
            passwords = self._secrets().kafka_passwords
            self._with_kafka(
                ADMIN_USER,
                lambda admin: kafkaadmin.provision(admin.bootstrap, admin.password, passwords),
            )
            return
        progress("creating the stream and the durable consumers")
        self._with_bus(ADMIN_USER, busadmin.ensure_stream)

    # -- the bus, through a port-forward ---------------------------------------------------

    def _bus_access(self, user: str) -> busadmin.BusAccess:
        """How `user` reaches nats now: through a forward that was just seen to answer (a
        forward can outlive its pod and then only accept connections to drop them)."""
        password = self._secrets().nats_passwords[user]
        port = self.forwards.port(*_NATS)
        if not _nats_answers(port):
            self.forwards.reset(*_NATS)
            port = self.forwards.port(*_NATS)
        return busadmin.BusAccess(f"nats://{HOST}:{port}", user, password)

    def _through_forward(
        self,
        target: tuple[str, int],
        attempt: Callable[[], _T],
        errors: tuple[type[BaseException], ...],
        failure: Callable[[BaseException], KdemoError],
    ) -> _T:
        """`attempt()`, which reaches `target` through its port-forward. When it fails with
        one of `errors`, the forward is renewed (the pod behind it may be gone) and it is
        tried once more; a second failure raises `failure(exc)`."""
        try:
            return attempt()
        except errors:
            self.forwards.reset(*target)
        try:
            return attempt()
        except errors as exc:
            self.forwards.reset(*target)
            raise failure(exc) from exc

    def _secrets(self) -> Secrets:
        return self._call(
            "reading the Secret", lambda: read_cluster_secrets(self.core(), NAMESPACE)
        )

    def _kafka_access(self, user: str) -> KafkaAccess:
        """How `user` reaches the broker now. The forward must listen on the port the broker
        advertises: when something there already speaks Kafka (another kdemo command's
        forward to the same pod) it is used as is; SCRAM proves the broker on the other end."""
        from kdemo.runtime.kafkaadmin import KafkaAccess  # late: confluent-kafka is heavy

        password = self._secrets().kafka_passwords[user]
        port = self._stack().ports["kafka"]
        if not api_versions_ok(HOST, port):
            self.forwards.reset(*_KAFKA)
            self.forwards.port(*_KAFKA, local_port=port)
        return KafkaAccess(f"{HOST}:{port}", user, password)

    def _with_kafka(self, user: str, use: Callable[[KafkaAccess], Any]) -> Any:
        """Run `use(access)` on the broker; a forward that stopped answering is renewed once."""
        return self._through_forward(
            _KAFKA,
            lambda: busadmin.run_sync(use(self._kafka_access(user))),
            (KdemoError,),
            _bus_error,
        )

    def _with_bus(self, user: str, use: Callable[[busadmin.BusAccess], Any]) -> Any:
        """Run `use(access)` on the bus; a forward that stopped answering is renewed once."""
        return self._through_forward(
            _NATS,
            lambda: busadmin.run_sync(use(self._bus_access(user))),
            (KdemoError, *_BUS_ERRORS),
            _bus_error,
        )

    # -- Runtime ---------------------------------------------------------------------------

    def is_up(self) -> bool:
        if not has_stack(self.state_dir):
            return False
        try:
            self.core().read_namespace(NAMESPACE, _request_timeout=5)
        except (KdemoError, *_CLUSTER_ERRORS):
            return False
        return True

    def _delete_namespace(self, progress: Progress | None) -> None:
        if progress:
            progress(f"deleting namespace {NAMESPACE} (workloads, Secret and volumes)")
        try:
            self.core().delete_namespace(NAMESPACE)
        except ApiException as exc:
            if exc.status != 404:
                raise _cluster_error(f"deleting namespace {NAMESPACE}", exc) from exc
            return
        except _CLUSTER_ERRORS as exc:
            raise _cluster_error(f"deleting namespace {NAMESPACE}", exc) from exc
        # Wait until it is gone: an `up` into a terminating namespace would be refused.
        deadline = time.monotonic() + _NAMESPACE_GONE_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                self.core().read_namespace(NAMESPACE, _request_timeout=5)
            except ApiException as exc:
                if exc.status == 404:
                    return
            except _CLUSTER_ERRORS:
                pass  # a slow answer: ask again
            time.sleep(1.0)  # polling the API until the namespace is gone
        raise KdemoError(
            f"namespace {NAMESPACE} is still terminating after {_NAMESPACE_GONE_TIMEOUT_S:.0f} s",
            f"see `kubectl get namespace {NAMESPACE} -o yaml` for what holds it",
        )

    def down(self, *, purge: bool = False, progress: Progress | None = None) -> str:
        self.close()
        self._delete_namespace(progress)
        delete_stack(self.state_dir)
        return "the namespace is deleted, its data with it"

    def _pods(self, node: str) -> list[Any]:
        pods = self._call(
            f"listing the pods of {node}",
            lambda: self.core().list_namespaced_pod(
                NAMESPACE, label_selector=f"app.kubernetes.io/name={node}", _request_timeout=10
            ),
        )
        return sorted(pods.items, key=lambda p: p.metadata.name)

    def status(self) -> list[NodeStatus]:
        urls = self.public_urls() if has_stack(self.state_dir) else {}
        now = datetime.now(UTC)
        rows = []
        for n in runtime_nodes(self.bus()):
            url = urls.get(n.name) or f"{n.name}.{NAMESPACE}.svc:{container_ports(n.name)[0].port}"
            try:
                pods = self._pods(n.name)
            except KdemoError:
                pods = []  # the cluster does not answer: every node shows as down
            rows.append(node_status(n.name, pods, url=url, now=now))
        return rows

    def _check_node(self, node: str) -> None:
        names = [n.name for n in runtime_nodes(self.bus())]
        if node not in names:
            raise UsageError(f"unknown node {node!r}", f"choose one of: {', '.join(names)}")

    def _pod(self, node: str) -> str:
        self._check_node(node)
        pods = self._pods(node)
        if not pods:
            raise KdemoError(f"{node} has no pod", "see `kdemo status`")
        ready = [p for p in pods if pod_ready(p)]
        return str((ready or pods)[0].metadata.name)

    def logs(self, node: str, *, follow: bool = False, lines: int = 200) -> Iterator[str]:
        name = self._pod(node)
        # Without preloading the client returns the raw urllib3 response (typed as str).
        response: Any = self._call(
            f"reading the log of {name}",
            lambda: self.core().read_namespaced_pod_log(
                name, NAMESPACE, follow=follow, tail_lines=lines, _preload_content=False
            ),
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
        except _CLUSTER_ERRORS as exc:
            raise _cluster_error(f"reading the log of {name}", exc) from exc
        finally:
            response.release_conn()

    def kill(self, node: str) -> str:
        """Delete the node's pods at once (no grace period): its controller makes new ones."""
        self._check_node(node)
        pods = [p.metadata.name for p in self._pods(node)]
        if not pods:
            raise KdemoError(f"{node} has no pod to kill", "see `kdemo status`")
        for pod in pods:
            self._call(
                f"deleting pod {pod}",
                functools.partial(
                    self.core().delete_namespaced_pod, pod, NAMESPACE, grace_period_seconds=0
                ),
            )
        return "pod " + ", ".join(pods)

    def restart(self, node: str) -> str:
        """Delete the node's pods with their grace period (SIGTERM first): a clean restart."""
        self._check_node(node)
        pods = [p.metadata.name for p in self._pods(node)]
        if not pods:
            raise KdemoError(f"{node} has no pod to restart", "see `kdemo status`")
        for pod in pods:
            self._call(
                f"deleting pod {pod}",
                functools.partial(self.core().delete_namespaced_pod, pod, NAMESPACE),
            )
        return "pod " + ", ".join(pods)

    def query(self, database: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read through a port-forward to postgres, as the service's own role."""
        import psycopg  # late: only the chaos audit and tests read the databases

        passwords = self._secrets().db_passwords
        if database not in passwords:
            raise UsageError(f"no database {database!r}", "use one of: " + ", ".join(passwords))

        def read() -> list[tuple[Any, ...]]:
            with psycopg.connect(
                host=HOST,
                port=self.forwards.port(*_POSTGRES),
                user=database,
                password=passwords[database],
                dbname=database,
                connect_timeout=5,
            ) as conn:
                conn.read_only = True
                try:
                    return conn.execute(sql, params).fetchall()
                except psycopg.OperationalError:
                    raise  # the connection: retried through a new forward
                except psycopg.Error as exc:  # the statement itself: bad SQL, a missing table
                    raise query_refused(database, exc) from exc

        def failure(exc: BaseException) -> KdemoError:
            return KdemoError(
                f"cannot read the {database} database: {exc}".strip(),
                "see `kdemo status` and `kdemo logs postgres`",
            )

        return self._through_forward(_POSTGRES, read, (psycopg.OperationalError,), failure)

    def public_urls(self) -> dict[str, str]:
        return dict(self._stack().urls)

    def webhook_secret(self) -> str:
        return self._secrets().webhook_secret

    async def bus_tap(self, *, deliver_all: bool = True) -> AsyncIterator[TapEvent]:
        if self.bus() == "kafka":
            from kdemo.runtime import kafkaadmin  # late: confluent-kafka is heavy

            # Reading the Secret and (re)starting kubectl block: a thread keeps the loop free.
            kafka = await asyncio.to_thread(self._kafka_access, TAP_USER)
            async for event in kafkaadmin.tap(kafka, deliver_all=deliver_all):
                yield event
            return
        access = await asyncio.to_thread(self._bus_access, TAP_USER)
        stream = busadmin.tap(access, deliver_all=deliver_all)
        try:
            async for event in stream:
                yield event
        except _BUS_ERRORS as exc:
            raise _bus_error(exc) from exc
        finally:
            await stream.aclose()

    def scrape(self, service: str) -> str:
        if service not in [n.name for n in topology.service_nodes()]:
            raise UsageError(f"{service!r} has no metrics", "scrape one of the five services")
        target = (f"deploy/{service}", metrics_port(service).port)

        def read() -> str:
            url = f"http://{HOST}:{self.forwards.port(*target)}/metrics"
            with urllib.request.urlopen(url, timeout=5) as answer:
                return str(answer.read().decode())

        def failure(exc: BaseException) -> KdemoError:
            return KdemoError(
                f"cannot read the metrics of {service}: {exc}",
                f"see `kdemo status` and `kdemo logs {service}`",
            )

        errors = (urllib.error.URLError, http.client.HTTPException, OSError)
        return self._through_forward(target, read, errors, failure)

    def dlq_list(self) -> list[DeadLetter]:
        if self.bus() == "kafka":
            from kdemo.runtime import kafkaadmin  # late: confluent-kafka is heavy

            letters: list[DeadLetter] = self._with_kafka(ADMIN_USER, kafkaadmin.dlq_list)
            return letters
        result: list[DeadLetter] = self._with_bus(ADMIN_USER, busadmin.dlq_list)
        return result

    def dlq_replay(self, seqs: list[int] | None = None) -> int:
        if self.bus() == "kafka":
            from kdemo.runtime import kafkaadmin  # late: confluent-kafka is heavy

            return int(
                self._with_kafka(ADMIN_USER, lambda admin: kafkaadmin.dlq_replay(admin, seqs))
            )
        return int(self._with_bus(ADMIN_USER, lambda admin: busadmin.dlq_replay(admin, seqs)))

    def database_url(self, role: str) -> str:
        raise KdemoError("database URLs are not exposed on clusters", "use `kdemo logs postgres`")


def _annotate(objects: list[dict[str, Any]], workloads: Sequence[str], value: str) -> None:
    """Put the config hash on workloads' pod templates, so a changed config restarts them."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet") and obj["metadata"]["name"] in workloads:
            meta = obj["spec"]["template"].setdefault("metadata", {})
            meta.setdefault("annotations", {})["kdemo.dev/config-hash"] = value


class KubernetesRuntime(KubeRuntime):
    """An existing cluster (`--context`), the image pushed to `--registry`.

    Without `--registry` the image is built here and the cluster must find it on its
    nodes (Docker Desktop shares this machine's images; kind and minikube load them:
    `kind load docker-image`, `minikube image load`). The public URLs are the user's (an
    Ingress, e.g. `manifests/components/ingress`, a load balancer or port-forwards):
    `KDEMO_PUBLIC_URL_FRONTEND`, `..._GATEWAY`, `..._GITHUB_APP`.
    """

    name = "kubernetes"

    def __init__(
        self,
        state_dir: Path,
        *,
        context: str | None = None,
        registry: str | None = None,
        bus: str | None = None,
    ) -> None:
        super().__init__(state_dir, context=context, bus=bus)
        stack = load_stack(self.state_dir)
        self.registry: str | None = registry or (stack.registry if stack is not None else None)

    def up(self, progress: Progress) -> dict[str, str]:
        if not self.context:
            raise UsageError("--context is required with --runtime kubernetes", _CONTEXT_HINT)
        missing = [public_url_env(n) for n in PUBLIC if not os.environ.get(public_url_env(n))]
        if missing:
            raise UsageError(
                f"{', '.join(missing)} not set: the cluster's public URLs are yours to give",
                "expose frontend, gateway and github-app (manifests/components/ingress) "
                "and set these variables to their URLs",
            )
        urls = {n: os.environ[public_url_env(n)].rstrip("/") for n in PUBLIC}
        old = load_stack(self.state_dir)
        bus = self._bus_for_up(old)
        check_docker()
        self._call("reading the namespaces", lambda: self.core().list_namespace(limit=1))
        image = image_reference(self.registry)
        build_image(image, progress)
        save_stack(
            self.state_dir,
            StackRecord(
                runtime="kubernetes",
                context=self.context,
                registry=self.registry,
                urls=urls,
                image=image,
                ports=self._bus_ports(bus, old),
                bus=bus,
            ),
        )
        bus_image = self._build_bus_image(progress, self.registry)
        for built in (image, bus_image):
            if built is None:
                continue
            if self.registry:
                progress(f"pushing {built}")
                run_tool(["docker", "push", built], what=f"pushing {built}", hint=_PUSH_HINT)
            else:
                progress(f"no --registry: the cluster's nodes must already hold {built}")
        self.deploy(progress, image, urls, bus_image)
        return urls


_CONTEXT_HINT = "name a context from `kubectl config get-contexts`, e.g. --context my-cluster"
_PUSH_HINT = "log in first (`docker login REGISTRY`) and check that --registry is right"
