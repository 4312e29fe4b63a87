"""The outbox relay against a real PostgreSQL and nats-server: a batch is published at once,
in the rows' order, and each row is deleted once the bus acknowledged it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import nats
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.common.bus import BusError, NatsBus, connect
from services.common.outbox import OutboxRelay
from tests.conftest import Stack

pytestmark = pytest.mark.stack


@pytest.fixture
async def outbox(stack: Stack) -> AsyncIterator[tuple[AsyncConnectionPool[Any], str]]:
    """A pool whose `outbox` is a table of this test's own schema, so the relay under test
    and the github-app processes other tests start never see each other's rows."""
    schema = f"relay_{secrets.token_hex(4)}"
    url = stack.pg.urls["github_app"]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(
            f"CREATE TABLE {schema}.outbox (id text PRIMARY KEY, subject text NOT NULL, "
            "payload bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=2,
        kwargs={"row_factory": dict_row, "options": f"-c search_path={schema}"},
        open=False,
    )
    await pool.open(wait=True)
    try:
        yield pool, schema
    finally:
        await pool.close()
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def admin_bus(stack: Stack) -> NatsBus:
    # The admin user may publish anywhere, so a subject no stream holds fails at once
    # (no responders) instead of waiting out a permission error.
    return await connect("github-app", stack.bus.url, "admin", stack.bus.passwords["admin"])


async def add_rows(pool: AsyncConnectionPool[Any], rows: list[tuple[str, str]]) -> None:
    async with pool.connection() as conn:
        for event_id, subject in rows:
            await conn.execute(
                "INSERT INTO outbox (id, subject, payload) VALUES (%s, %s, %s)",
                (event_id, subject, f'{{"id": "{event_id}"}}'.encode()),
            )


async def ids_left(pool: AsyncConnectionPool[Any]) -> list[str]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM outbox ORDER BY id")
        return [row["id"] for row in await cur.fetchall()]


async def test_a_batch_is_published_in_order_and_deleted(
    stack: Stack, outbox: tuple[AsyncConnectionPool[Any], str]
) -> None:
    pool, _ = outbox
    tag = secrets.token_hex(4)
    subjects = [f"kdemo.bounty.requested.0xrelay{tag}{n}" for n in range(5)]
    await add_rows(pool, [(f"relay-{tag}-{n}", s) for n, s in enumerate(subjects)])
    bus = await admin_bus(stack)
    try:
        assert await OutboxRelay(pool, bus).flush() == 5
    finally:
        await bus.close()

    assert await ids_left(pool) == []
    nc = await nats.connect(**stack.bus.connect_kwargs("admin"))
    try:
        js = nc.jetstream()
        seqs = [(await js.get_last_msg("KDEMO", s)).seq for s in subjects]
    finally:
        await nc.close()
    assert seqs == sorted(seqs)  # the stream holds them in the rows' order


async def test_a_failed_publish_keeps_only_its_row(
    stack: Stack, outbox: tuple[AsyncConnectionPool[Any], str]
) -> None:
    """The relay deletes the rows the bus acknowledged and raises the bus's own error (not a
    group of them) for the one it refused, which alone stays for the next flush: the others
    are not sent again at every poll (on Kafka each resend would be one more copy)."""
    pool, _ = outbox
    tag = secrets.token_hex(4)
    good = [f"kdemo.bounty.requested.0xrelay{tag}{n}" for n in (0, 2)]
    rows = [
        (f"relay-{tag}-0", good[0]),
        (f"relay-{tag}-1", f"nowhere.{tag}"),  # no stream takes it
        (f"relay-{tag}-2", good[1]),
    ]
    await add_rows(pool, rows)
    bus = await admin_bus(stack)
    try:
        with pytest.raises(BusError):
            await OutboxRelay(pool, bus).flush()
        assert await ids_left(pool) == [f"relay-{tag}-1"]
        with pytest.raises(BusError):  # the next flush tries the refused row alone
            await OutboxRelay(pool, bus).flush()
    finally:
        await bus.close()

    assert await ids_left(pool) == [f"relay-{tag}-1"]
    nc = await nats.connect(**stack.bus.connect_kwargs("admin"))
    try:
        js = nc.jetstream()
        for subject in good:  # both acknowledged rows are on the stream
            await js.get_last_msg("KDEMO", subject)  # NotFoundError if one is not
    finally:
        await nc.close()
