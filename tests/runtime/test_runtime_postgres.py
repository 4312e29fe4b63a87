"""PostgreSQL as the local runtime runs it: one scram role and database per owning service."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from kdemo import topology
from kdemo.runtime.local.postgres import ensure_roles, role_url
from kdemo.runtime.local.testing import TestPostgres, start_postgres

OWNED = [n.database for n in topology.NODES if n.database]


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPostgres]:
    with start_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


def test_every_owning_service_has_its_database() -> None:
    """The roles come from the topology: github_app, ledger and identity."""
    assert sorted(OWNED) == ["github_app", "identity", "ledger"]


@pytest.mark.parametrize("db", OWNED)
def test_role_logs_in_with_scram_and_owns_its_database(pg: TestPostgres, db: str) -> None:
    """Each role logs in over TCP with its password and owns the database of its name."""
    with psycopg.connect(pg.urls[db]) as conn:
        user, owner = conn.execute(
            "SELECT current_user, pg_get_userbyid(datdba) FROM pg_database "
            "WHERE datname = current_database()"
        ).fetchone() or (None, None)
        conn.execute("CREATE TABLE probe (id int)")  # the owner may create tables
    assert (user, owner) == (db, db)
    with psycopg.connect(pg.superuser_url) as conn:
        stored = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (db,)
        ).fetchone()
    assert stored is not None
    assert stored[0].startswith("SCRAM-SHA-256$")


@pytest.mark.parametrize("db", OWNED)
def test_wrong_password_is_refused(pg: TestPostgres, db: str) -> None:
    """A wrong password fails authentication."""
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(role_url(pg.port, db, "not-the-password", db))


@pytest.mark.parametrize(
    ("role", "other"),
    [("ledger", "identity"), ("identity", "github_app"), ("github_app", "postgres")],
)
def test_role_cannot_connect_to_another_database(pg: TestPostgres, role: str, other: str) -> None:
    """A service's role reaches its own database only."""
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(role_url(pg.port, role, pg.passwords[role], other))


def test_pg_hba_allows_only_scram_over_loopback(pg: TestPostgres) -> None:
    """pg_hba has a single rule: host, 127.0.0.1/32, scram-sha-256."""
    rules = [
        line.split()
        for line in (pg.cluster.data_dir / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules == [["host", "all", "all", "127.0.0.1/32", "scram-sha-256"]]


def test_server_listens_on_loopback_only(pg: TestPostgres) -> None:
    """listen_addresses is 127.0.0.1 and there is no Unix socket."""
    with psycopg.connect(pg.superuser_url) as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()
        sockets = conn.execute("SHOW unix_socket_directories").fetchone()
    assert listen == ("127.0.0.1",)
    assert sockets == ("",)


def test_ensure_roles_is_idempotent_and_resets_passwords(pg: TestPostgres) -> None:
    """Running the role setup again keeps databases and data, and applies the given password."""
    with psycopg.connect(pg.urls["ledger"]) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (v int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    ensure_roles(pg.cluster, {"ledger": "a-new-password-1234"})
    with psycopg.connect(role_url(pg.port, "ledger", "a-new-password-1234", "ledger")) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [(7,)]
    ensure_roles(pg.cluster, {"ledger": pg.passwords["ledger"]})
