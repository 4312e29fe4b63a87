"""Real PostgreSQL and nats-server for tests, configured exactly like the local stack.

    with start_postgres(tmp_path) as pg:
        url = pg.urls["ledger"]          # postgresql://ledger:...@127.0.0.1:PORT/ledger
    with start_nats(tmp_path) as bus:
        bus.url, bus.passwords["gateway"]   # stream KDEMO and durables already exist

Both stop their server (and everything it started) when the block ends.
`missing_kafka_tools()` says why a real Kafka broker cannot run here (tests skip with it).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kdemo.runtime.busadmin import BusAccess, ensure_stream, run_sync
from kdemo.runtime.local.nats import NatsServer, nats_server
from kdemo.runtime.local.postgres import PgCluster, ensure_roles, pg_cluster, role_url
from kdemo.runtime.local.procs import spawn
from kdemo.runtime.natsconfig import ADMIN_USER, inbox_prefix
from kdemo.runtime.ports import allocate_ports
from kdemo.runtime.secrets import bus_users, database_roles

__all__ = ["TestBus", "TestPostgres", "missing_kafka_tools", "start_nats", "start_postgres"]


@dataclass(frozen=True)
class TestPostgres:
    __test__ = False  # not a pytest test class, despite its name
    host: str
    port: int
    superuser_url: str
    urls: dict[str, str]
    """Database (= role) name -> `postgresql://role:password@127.0.0.1:port/db`."""
    passwords: dict[str, str]
    cluster: PgCluster


@dataclass(frozen=True)
class TestBus:
    __test__ = False  # not a pytest test class, despite its name
    url: str
    passwords: dict[str, str]
    """Bus user (`admin`, `tap`, service names) -> password."""
    server: NatsServer

    def access(self, user: str) -> BusAccess:
        return BusAccess(self.url, user, self.passwords[user])

    def connect_kwargs(self, user: str) -> dict[str, object]:
        """Keyword arguments for `nats.connect(**kwargs)` as `user`."""
        return {
            "servers": [self.url],
            "user": user,
            "password": self.passwords[user],
            "inbox_prefix": inbox_prefix(user).encode(),
        }


def missing_kafka_tools() -> str | None:
    """Why a Kafka broker cannot run on this machine, or None when it can: the broker is a
    JVM program (`java`) whose jars Maven fetches (`mvn`); neither comes from PyPI."""
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH (apt-get install openjdk-17-jre-headless maven)"
    return None


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def start_postgres(tmpdir: Path, *, port: int | None = None) -> Iterator[TestPostgres]:
    """PostgreSQL on 127.0.0.1 with one role and database per owning service (scram)."""
    tmpdir = Path(tmpdir)
    port = port or allocate_ports(env={})["postgres"]
    cluster = pg_cluster(tmpdir, port, secrets.token_urlsafe(18))
    passwords = {role: secrets.token_urlsafe(18) for role in database_roles()}
    cluster.initdb()
    proc = spawn(
        cluster.argv(),
        env=cluster.env(),
        log=tmpdir / "postgres.log",
        cwd=cluster.root,
        user=cluster.uid,
        group=cluster.gid,
    )
    try:
        cluster.wait_ready()
        ensure_roles(cluster, passwords)
        yield TestPostgres(
            "127.0.0.1",
            port,
            cluster.superuser_url(),
            {r: role_url(port, r, p, r) for r, p in passwords.items()},
            passwords,
            cluster,
        )
    finally:
        _stop(proc, signal.SIGINT)  # fast shutdown
        if cluster.uid is not None:  # the data lives outside tmpdir when we are root
            shutil.rmtree(cluster.root, ignore_errors=True)


@contextlib.contextmanager
def start_nats(
    tmpdir: Path, *, port: int | None = None, ttl_s: int = 86400, create_stream: bool = True
) -> Iterator[TestBus]:
    """nats-server with the stack's users and permissions, stream and durables created."""
    tmpdir = Path(tmpdir)
    ports = allocate_ports(env={})
    passwords = {user: secrets.token_urlsafe(18) for user in bus_users()}
    digest = hashlib.sha256(str(tmpdir).encode()).hexdigest()[:8]
    server = nats_server(
        tmpdir / f"nats-{digest}", port or ports["nats"], ports["nats-monitor"], passwords
    )
    server.write_config()
    proc = spawn(server.argv(), env={}, log=tmpdir / "nats.log")
    try:
        server.wait_ready()
        bus = TestBus(server.url, passwords, server)
        if create_stream:
            run_sync(ensure_stream(bus.access(ADMIN_USER), ttl_s=ttl_s))
        yield bus
    finally:
        _stop(proc, signal.SIGTERM)
