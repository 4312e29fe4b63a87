"""The rendered manifests: strictly valid for kind's Kubernetes, checkov-clean, as promised."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from kdemo import topology
from kdemo.runtime.buses import runtime_node_names
from kdemo.runtime.kube.conventions import NAMESPACE, container_ports
from kdemo.runtime.kube.render import MANIFESTS_DIR
from kdemo.runtime.kube.secrets import new_secrets
from kdemo.runtime.local.env import service_env
from kdemo.runtime.ports import allocate_ports
from kdemo.runtime.settings import PASSED_THROUGH
from tests.k8s.support import BUS_OF_OVERLAY, OVERLAYS, of_kind, rendered

KIND_KUBERNETES = "1.34.0"
"""The Kubernetes version kind v0.30 runs by default (its node image kindest/node:v1.34.0)."""
CACHE = Path(os.environ.get("KDEMO_TEST_CACHE", "/var/cache/kdemo-test"))


@pytest.mark.slow  # 2-4 s per overlay of schema loading: the full suite runs it, test-fast not
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_object_validates_strictly(overlay: str) -> None:
    """Every object of every overlay is valid for kind's Kubernetes, unknown fields refused."""
    objects = rendered(overlay)
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, KIND_KUBERNETES, strict=True)


def _workloads(overlay: str = "kind") -> list[dict]:
    objects = rendered(overlay)
    return of_kind(objects, "Deployment") + of_kind(objects, "StatefulSet")


@pytest.mark.parametrize(
    ("overlay", "name"),
    [(o, n) for o, bus in BUS_OF_OVERLAY.items() for n in runtime_node_names(bus)],
)
def test_every_container_is_restricted_and_probed(overlay: str, name: str) -> None:
    """Each workload runs non-root, read-only, without capabilities, probed, with limits
    (an init container is not probed, but is restricted and limited like the others)."""
    (workload,) = [w for w in _workloads(overlay) if w["metadata"]["name"] == name]
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for c in [*pod.get("initContainers", []), *pod["containers"]]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert set(c["resources"]) == {"requests", "limits"}
    for c in pod["containers"]:
        assert c["readinessProbe"]
        assert c["livenessProbe"]
        assert {p["name"] for p in c["ports"]} == {p.name for p in container_ports(name)}


@pytest.mark.parametrize("name", ["calc", "identity"])
def test_grpc_services_use_native_grpc_probes(name: str) -> None:
    """calc and identity are probed with grpc.health.v1 and exposed as ClusterIP only."""
    (workload,) = [w for w in _workloads() if w["metadata"]["name"] == name]
    assert "grpc" in workload["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    (service,) = [s for s in of_kind(rendered("kind"), "Service") if s["metadata"]["name"] == name]
    assert service["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize("overlay", sorted(BUS_OF_OVERLAY))
def test_objects_follow_the_conventions(overlay: str) -> None:
    """Namespace restricted; labels recommended; selectors on the name only; all in kdemo."""
    objects = rendered(overlay)
    (ns,) = of_kind(objects, "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kdemo"
    for obj in of_kind(objects, "Service"):
        assert list(obj["spec"]["selector"]) == ["app.kubernetes.io/name"]
    for obj in _workloads(overlay):
        assert list(obj["spec"]["selector"]["matchLabels"]) == ["app.kubernetes.io/name"]


def test_kind_exposes_the_public_services_only() -> None:
    """frontend, gateway and github-app are NodePorts on kind; nothing else is."""
    node_ports = {
        s["metadata"]["name"]
        for s in of_kind(rendered("kind"), "Service")
        if s["spec"]["type"] == "NodePort"
    }
    assert node_ports == {n.name for n in topology.NODES if n.exposed}


@pytest.mark.parametrize(
    ("overlay", "node"),
    [(o, n.name) for o in sorted(BUS_OF_OVERLAY) for n in topology.service_nodes()],
)
def test_service_env_names_match_the_local_runtime(overlay: str, node: str) -> None:
    """Each Deployment sets the same KDEMO_* variables the local runtime gives the service,
    on either bus."""
    bus = BUS_OF_OVERLAY[overlay]
    (workload,) = [w for w in _workloads(overlay) if w["metadata"]["name"] == node]
    container = workload["spec"]["template"]["spec"]["containers"][0]
    names = {e["name"] for e in container["env"]} - {"KDEMO_DATABASE_PASSWORD"}
    names |= {
        f"KDEMO_PUBLIC_URL_{n.name.upper().replace('-', '_')}" for n in topology.NODES if n.exposed
    }  # from the kdemo-urls ConfigMap (envFrom)
    local = service_env(node, ports=allocate_ports(None, bus=bus), secrets=new_secrets({}), bus=bus)
    assert names == set(local) - set(PASSED_THROUGH)
    assert [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e] == [
        "kdemo-urls"
    ]


def test_postgres_creates_one_database_per_owner() -> None:
    """The init step creates exactly the topology's databases, each with its password."""
    (pg,) = [w for w in _workloads() if w["metadata"]["name"] == "postgres"]
    env = {e["name"]: e for e in pg["spec"]["template"]["spec"]["containers"][0]["env"]}
    databases = env["KDEMO_DATABASES"]["value"].split()
    assert sorted(databases) == sorted(n.database for n in topology.NODES if n.database)
    for db in databases:
        ref = env[f"KDEMO_DB_PASSWORD_{db.upper()}"]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == f"db-password-{db}"
    assert env["POSTGRES_HOST_AUTH_METHOD"]["value"] == "scram-sha-256"


def _checkov() -> Path:
    """checkov in its own virtual environment (it pins an old `packaging`), kept in the cache."""
    venv = CACHE / "checkov"
    exe = venv / "bin" / "checkov"
    if exe.exists():
        return exe
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is needed to install checkov in its own environment")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([uv, "venv", "-q", str(venv)], check=True, env=env, timeout=120)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "checkov"],
        check=True,
        env=env,
        timeout=600,
    )
    return exe


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_checkov_finds_nothing(tmp_path: Path) -> None:
    """checkov passes every overlay with zero failures; each skipped check has a reason."""
    checkov = _checkov()
    for overlay in sorted(OVERLAYS):
        (tmp_path / f"{overlay}.yaml").write_text(yaml.safe_dump_all(rendered(overlay)))
    done = subprocess.run(
        [
            str(checkov),
            "--skip-download",
            "--quiet",
            "--output",
            "json",
            "--config-file",
            str(MANIFESTS_DIR / ".checkov.yaml"),
            "--directory",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['resource']}" for r in reports for c in r["results"]["failed_checks"]
    ]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in reports) > 100
    lines = (MANIFESTS_DIR / ".checkov.yaml").read_text().splitlines()
    skips = [i for i, line in enumerate(lines) if line.strip().startswith("- CKV")]
    assert skips, "no skipped check listed"
    for i in skips:
        assert lines[i - 1].strip().startswith("#"), f"{lines[i].strip()} has no reason above it"
