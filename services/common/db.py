"""PostgreSQL access for the owning services: migrations at start-up, a psycopg 3 pool.

Migrations are plain versioned SQL files applied by yoyo-migrations (it records
what ran and takes a lock, so two replicas starting together are safe).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from yoyo import get_backend, read_migrations

__all__ = ["AsyncConnection", "apply_migrations", "open_pool", "redact", "wait_for_database"]

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
    migrations = read_migrations(str(migrations_dir))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    count = len(pending)
    if count:
        log.info("applied migrations", extra={"count": count, "database": redact(database_url)})
    return count


async def wait_for_database(database_url: str, *, within_s: float = 60.0) -> None:
    """Retry connecting until PostgreSQL answers (it may start after the service)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    delay = 0.1
    while True:
        try:
            conn = await AsyncConnection.connect(database_url, connect_timeout=3)
            await conn.close()
            return
        except Exception as exc:  # any connection failure is worth a retry until the deadline
            if loop.time() > deadline:
                raise RuntimeError(f"database {redact(database_url)} not reachable: {exc}") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def open_pool(
    database_url: str, *, min_size: int = 4, max_size: int = 8
) -> AsyncConnectionPool:
    """A pool that opens its connections up front.

    Each new connection pays for scram-sha-256 (a deliberately slow key derivation),
    so growing the pool under the first burst of load showed up as tail latency.
    """
    pool: AsyncConnectionPool = AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row},
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    return pool
