"""PostgreSQL as the local runtime runs it: one scram role and database per owning service."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from kdemo import topology
from kdemo.runtime.local.postgres import ensure_roles, role_url
from kdemo.testing.servers import TestPostgres, start_postgres

pytestmark = pytest.mark.stack  # starts PostgreSQL (and the stack): not in the fast subset

OWNED = [n.database for n in topology.NODES if n.database]


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPostgres]:
    with start_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


def _databases(pg: TestPostgres) -> dict[str, tuple[int, str, int]]:
    """Each user database on the server: (its oid, its owner's name, the owner's oid)."""
    with psycopg.connect(pg.superuser_url) as conn:
        rows = conn.execute(
            "SELECT d.datname, d.oid, r.rolname, r.oid FROM pg_database d "
            "JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE NOT d.datistemplate AND d.datname <> 'postgres'"
        ).fetchall()
    return {name: (int(oid), owner, int(owner_oid)) for name, oid, owner, owner_oid in rows}


def test_every_owning_service_has_its_database(pg: TestPostgres) -> None:
    """The server holds exactly the topology's databases (github_app, ledger, identity), each
    owned by the role of its name."""
    assert sorted(OWNED) == ["github_app", "identity", "ledger"]
    owners = {name: owner for name, (_, owner, _) in _databases(pg).items()}
    assert owners == {db: db for db in OWNED}


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
    """Running the role setup again keeps every database and role (same oids, same owners) and
    the data, and applies the given password: the old one no longer logs in."""
    with psycopg.connect(pg.urls["ledger"]) as conn:
        conn.execute("CREATE TABLE kept (v int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    before = _databases(pg)
    try:
        ensure_roles(pg.cluster, {"ledger": "a-new-password-1234"})

        assert _databases(pg) == before
        with psycopg.connect(role_url(pg.port, "ledger", "a-new-password-1234", "ledger")) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [(7,)]
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(pg.urls["ledger"])
    finally:
        ensure_roles(pg.cluster, {"ledger": pg.passwords["ledger"]})
    with psycopg.connect(pg.urls["ledger"]) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [(7,)]
        conn.execute("DROP TABLE kept")
    assert _databases(pg) == before
