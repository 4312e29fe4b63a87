"""Session fixtures: a real PostgreSQL and a real nats-server, and a way to run services.

Service tests start `python -m services.<name>` as real subprocesses against these,
with exactly the environment the local runtime would give them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from kdemo.observe import parse_edges
from kdemo.runtime.local.env import service_env, service_module
from kdemo.runtime.natsconfig import inbox_prefix
from kdemo.runtime.ports import allocate_ports, grpc_services
from kdemo.runtime.secrets import Secrets
from kdemo.testing.servers import TestBus, TestPostgres, start_nats, start_postgres
from services.common.intent_tokens import generate_ed25519_keypair
from tests.offline_kind import offline_environment

ROOT = Path(__file__).resolve().parent.parent
TEST_WEBHOOK_SECRET = "test-webhook-secret-0123456789"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the session's docker daemon (the kind cluster's, the image's) run after
    all others: `.ci/run` builds that daemon's chain while the rest of the suite runs.
    Under pytest-xdist (`--dist loadgroup`) they are one group, in one worker: they share
    one cluster and one image tag."""
    on_docker = {item for item in items if "kind_environment" in getattr(item, "fixturenames", ())}
    for item in on_docker:
        item.add_marker(pytest.mark.xdist_group("docker"))
    items.sort(key=lambda item: item in on_docker)  # stable: the order otherwise holds


@pytest.fixture(scope="session")
def kind_environment() -> Iterator[dict[str, str]]:
    """kdemo.testing's hook: on our machines, the offline chain's daemon and node image."""
    yield from offline_environment()


@dataclass
class Stack:
    """The database and bus every service test shares, plus the stack's secrets and ports."""

    pg: TestPostgres
    bus: TestBus
    secrets: Secrets
    ports: dict[str, int]
    workdir: Path

    def database_url(self, db: str) -> str:
        return self.pg.urls[db]

    @property
    def nats_url(self) -> str:
        return self.bus.url

    def nats_user(self, user: str) -> tuple[str, str]:
        return user, self.bus.passwords[user]

    def connect_kwargs(self, user: str = "admin") -> dict[str, object]:
        """Keyword arguments for `nats.connect(**kwargs)` as `user` (admin by default)."""
        return {
            "servers": [self.bus.url],
            "user": user,
            "password": self.bus.passwords[user],
            "inbox_prefix": inbox_prefix(user).encode(),
        }

    def env_for(self, service: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
        env = service_env(service, ports=self.ports, secrets=self.secrets)
        env.update(overrides or {})
        return env

    def url_of(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"


@dataclass
class RunningService:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    """HTTP base URL (for gRPC services: the metrics/health port)."""
    grpc_addr: str | None
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def edge_requests(self) -> dict[tuple[str, str], float]:
        """Requests counted per (from, to) edge in one scrape of its /metrics."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        return {edge: sample.requests for edge, sample in parse_edges(text).items()}

    def wait_edges_grown(
        self, before: dict[tuple[str, str], float], edges: dict[tuple[str, str], int]
    ) -> None:
        """Wait until each edge counted at least its number more requests than `before`: what
        the test did shows, whatever earlier tests counted (some edges are counted after the
        answer, by a background task)."""
        deadline = time.monotonic() + 15
        while True:
            now = self.edge_requests()
            short = {e: now.get(e, 0) - before.get(e, 0) for e, n in edges.items()}
            if all(short[e] >= n for e, n in edges.items()):
                return
            assert time.monotonic() < deadline, f"edges grew by {short}, expected {edges}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {within_s} s:\n{log_path.read_text()[-3000:]}")


def launch(
    stack: Stack, name: str, overrides: dict[str, str] | None = None, *, within_s: float = 40.0
) -> RunningService:
    env = stack.env_for(name, overrides)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("KDEMO_")}
    log_path = stack.workdir / f"{name}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", service_module(name)],
            env=base_env | env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    is_grpc = name in grpc_services()
    port = stack.ports[f"{name}-metrics"] if is_grpc else stack.ports[name]
    svc = RunningService(
        name,
        proc,
        f"http://127.0.0.1:{port}",
        f"127.0.0.1:{stack.ports[name]}" if is_grpc else None,
        log_path,
        env,
    )
    try:
        wait_ready(svc.url, proc, log_path, within_s)
    except RuntimeError as exc:
        svc.kill()
        raise RuntimeError(f"{name} did not become ready: {exc}") from None
    return svc


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A real PostgreSQL (roles and databases made) and nats-server (stream and durables made)."""
    workdir = tmp_path_factory.mktemp("stack")
    with start_postgres(workdir / "pg") as pg, start_nats(workdir / "nats") as bus:
        signing, verify = generate_ed25519_keypair()
        secrets = Secrets(
            webhook_secret=TEST_WEBHOOK_SECRET,
            intent_signing_key=signing,
            intent_verify_key=verify,
            link_nonce_secret="11" * 32,
            eip712_salt="0x" + "5a" * 32,
            postgres_password="unused",
            db_passwords=dict(pg.passwords),
            nats_passwords=dict(bus.passwords),
        )
        ports = allocate_ports(env={}) | {
            "postgres": pg.port,
            "nats": int(bus.url.rsplit(":", 1)[1]),
        }
        yield Stack(pg, bus, secrets, ports, workdir)


@pytest.fixture
def start_service(stack: Stack) -> Iterator[Callable[..., RunningService]]:
    """Factory: start a service process (stopped at the end of the test)."""
    started: list[RunningService] = []

    def start(name: str, overrides: dict[str, str] | None = None) -> RunningService:
        svc = launch(stack, name, overrides)
        started.append(svc)
        return svc

    yield start
    for svc in reversed(started):
        svc.stop()
