"""PostgreSQL access for the owning services: migrations at start-up, a psycopg 3 pool.

Migrations are plain versioned SQL files applied by yoyo-migrations (it records
what ran and takes a lock, so two replicas starting together are safe).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from yoyo import get_backend, read_migrations

__all__ = ["AsyncConnection", "apply_migrations", "open_database", "open_pool", "redact"]

log = logging.getLogger(__name__)


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))


def apply_migrations(database_url: str, migrations_dir: Path) -> int:
    """Apply every pending migration in `migrations_dir`; returns how many ran."""
    scheme, rest = database_url.split("://", 1)
    if scheme.startswith("postgres"):
        database_url = f"postgresql+psycopg://{rest}"  # yoyo's psycopg 3 backend
    backend = get_backend(database_url)
    try:
        migrations = read_migrations(str(migrations_dir))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()  # yoyo keeps it open for the life of the process
    count = len(pending)
    if count:
        log.info("applied migrations", extra={"count": count, "database": redact(database_url)})
    return count


async def open_database(
    database_url: str, migrations_dir: Path, *, autocommit: bool = False
) -> AsyncConnectionPool:
    """One attempt at the owned database: reach it, apply the pending migrations, open the
    pool. Raises when PostgreSQL does not answer; the caller retries
    (`services.common.lifecycle.Lifecycle.connect`), since it may start after the service."""
    try:
        conn = await AsyncConnection.connect(database_url, connect_timeout=3)
    except (OSError, psycopg.OperationalError) as exc:
        raise ConnectionError(f"database {redact(database_url)} not reachable: {exc}") from exc
    await conn.close()
    await asyncio.to_thread(apply_migrations, database_url, migrations_dir)
    pool = await open_pool(database_url, autocommit=autocommit)
    log.info("database ready", extra={"database": redact(database_url)})
    return pool


async def open_pool(
    database_url: str, *, min_size: int = 4, max_size: int = 8, autocommit: bool = False
) -> AsyncConnectionPool:
    """A pool that opens its connections up front.

    Each new connection pays for scram-sha-256 (a deliberately slow key derivation),
    so growing the pool under the first burst of load showed up as tail latency.
    With `autocommit` a lone statement is its own transaction: no BEGIN and COMMIT
    round trips around it (`conn.transaction()` still groups statements).
    """
    pool: AsyncConnectionPool = AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "autocommit": autocommit},
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=30)
    except BaseException:  # its workers would go on trying in the background
        await pool.close()
        raise
    return pool
