"""Transactional outbox: events are written in the same transaction as the state
change, and a relay publishes them (Nats-Msg-Id = event id) and deletes each row
only after JetStream acknowledged it. A crash between commit and publish loses
nothing; a crash between publish and delete publishes again, which the stream's
duplicate window absorbs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from .bus import Bus
from .events import Event, encode
from .failpoints import failpoint
from .metrics import record_edge
from .poller import Poller
from .topology import edge

__all__ = ["OutboxRelay", "already_processed", "enqueue"]

log = logging.getLogger(__name__)


async def enqueue(conn: AsyncConnection[object], event: Event) -> None:
    """Add `event` to the outbox inside the caller's transaction."""
    await conn.execute(
        "INSERT INTO outbox (id, subject, payload) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
        (event.id, event.nats_subject, encode(event)),
    )


async def already_processed(conn: AsyncConnection[object], event: Event) -> bool:
    """Record (type, id) inside the caller's transaction; True when it was seen before."""
    cur = await conn.execute(
        "INSERT INTO processed_events (event_type, event_id) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING",
        (event.type, event.id),
    )
    return cur.rowcount == 0


class OutboxRelay(Poller):
    """Publishes outbox rows; `kick()` after a commit wakes it at once."""

    def __init__(self, pool: AsyncConnectionPool, bus: Bus, *, poll_interval: float = 0.5) -> None:
        super().__init__(poll_interval=poll_interval, name="outbox relay")
        self._pool = pool
        self._bus = bus

    async def step(self) -> bool:
        return await self.flush() > 0

    async def flush(self, limit: int = 100) -> int:
        """Publish up to `limit` rows; returns how many were published and deleted.

        The transaction counts on the service's postgres edge only when it found rows:
        an idle poll every half second would keep the edge lit on the dashboard.
        """
        started = time.perf_counter()
        sent = await self._flush(limit)
        if sent:
            record_edge(edge(self._bus.service, "postgres"), time.perf_counter() - started)
        return sent

    async def _flush(self, limit: int) -> int:
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT id, subject, payload FROM outbox ORDER BY created_at, id "
                "LIMIT %s FOR UPDATE SKIP LOCKED",
                (limit,),
            )
            rows: list[dict[str, Any]] = [dict(row) for row in await cur.fetchall()]
            if not rows:
                return 0
            failpoint("outbox.after_commit")
            acked, failure = await self._publish_all(rows)
            failpoint("outbox.after_publish")
            if acked:
                await conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (acked,))
        if failure is not None:  # after the commit: the acknowledged rows are gone for good
            raise failure
        return len(acked)

    async def _publish_all(
        self, rows: list[dict[str, Any]]
    ) -> tuple[list[str], BaseException | None]:
        """Publish the batch at once and wait for every answer: one wait for the bus instead
        of one per row; the publishes leave in the rows' order. Returns the ids the bus
        acknowledged, to delete, and the first failure. A row that failed stays for the next
        flush, alone: resending the whole batch would put every other row on a Kafka topic
        again at each poll. (Rows after it may then be on the bus before it, as after any
        retry; consumers take events in any order.)"""
        results = await asyncio.gather(
            *(self._bus.publish_raw(r["subject"], bytes(r["payload"]), r["id"]) for r in rows),
            return_exceptions=True,
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        acked = [
            r["id"]
            for r, result in zip(rows, results, strict=True)
            if not isinstance(result, BaseException)
        ]
        return acked, failures[0] if failures else None
