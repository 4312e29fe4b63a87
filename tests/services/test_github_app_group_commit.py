"""Group commit in github-app against a real PostgreSQL: deliveries that arrive together
share one call of `record_delivery()`, each still gets its own answer, and a delivery
the database refuses fails alone.

The recorder runs in-process on a scratch database with github-app's migrations, so
the batch it forms is known (asyncio runs the submitted tasks in order) and no other
test's github-app relays its outbox rows.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from kdemo.flow.payloads import comment_payload
from services.common import intent_ids
from services.common.db import open_database
from services.common.grammar import find_bounties
from services.common.intent_tokens import generate_ed25519_keypair
from services.github_app.app import MIGRATIONS
from services.github_app.intents import Recorded, Recorder, RecorderConfig
from services.github_app.webhook import Source, classify
from tests.conftest import Stack

pytestmark = pytest.mark.stack


@pytest.fixture
async def pool(stack: Stack) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """An autocommit pool, as github-app's, on a new database holding its migrations."""
    role = conninfo_to_dict(stack.pg.urls["github_app"])["user"]
    name = f"group_commit_{secrets.token_hex(4)}"
    async with await psycopg.AsyncConnection.connect(
        stack.pg.superuser_url, autocommit=True
    ) as admin:
        await admin.execute(f'CREATE DATABASE {name} OWNER "{role}"')
    url = urlunsplit(urlsplit(stack.pg.urls["github_app"])._replace(path=f"/{name}"))
    pool = await open_database(url, MIGRATIONS, autocommit=True)
    try:
        yield pool
    finally:
        await pool.close()
        async with await psycopg.AsyncConnection.connect(
            stack.pg.superuser_url, autocommit=True
        ) as admin:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def recorder(pool: AsyncConnectionPool[Any]) -> Recorder:
    signing_key, _ = generate_ed25519_keypair()
    return Recorder(
        pool,
        RecorderConfig(
            signing_key=signing_key,
            ttl_s=3600,
            frontend_url="http://127.0.0.1:1",
            replies=True,
        ),
    )


def comment(text: str, number: int, comment_id: int | None = None) -> Source:
    payload = comment_payload(
        text, repo="Acme/Widgets", number=number, login="alice", comment_id=comment_id
    )
    source = classify("issue_comment", payload)
    assert isinstance(source, Source)
    return source


def expected_intent(source: Source) -> str:
    return intent_ids.intent_id(
        source.repository, source.number, source.source, source.source_id, 0
    )


async def rows(pool: AsyncConnectionPool[Any], sql: str) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(sql)
        return await cur.fetchall()


async def record_together(
    rec: Recorder, deliveries: list[tuple[str, Source]]
) -> list[Recorded | BaseException]:
    return await asyncio.gather(
        *(rec.record(d, s, find_bounties(s.body)) for d, s in deliveries),
        return_exceptions=True,
    )


async def test_deliveries_that_arrive_together_share_one_statement(
    pool: AsyncConnectionPool[Any],
) -> None:
    rec = recorder(pool)
    sources = [comment(f"worth $USDC:{n + 1}$", number=n + 1) for n in range(20)]
    deliveries = [(str(uuid.uuid4()), s) for s in sources]
    # the first delivery again under its own id, and its comment under a new one
    deliveries += [deliveries[0], (str(uuid.uuid4()), sources[0])]

    answers = await record_together(rec, deliveries)

    assert rec.batcher.batches == 1, "all 22 went in the first call"
    assert all(isinstance(a, Recorded) for a in answers), answers
    recorded = [a for a in answers if isinstance(a, Recorded)]
    for (delivery, source), answer in zip(deliveries[:20], recorded, strict=False):
        assert answer.duplicate is False
        assert answer.new_events
        assert answer.new_replies
        assert answer.response["delivery"] == delivery
        [intent] = answer.response["intents"]
        assert intent["intent_id"] == expected_intent(source)
        assert intent["amount"] == str(source.number)
    again, same_comment = recorded[20], recorded[21]
    assert again.duplicate is True
    assert again.response["intents"] == recorded[0].response["intents"]
    assert same_comment.duplicate is False
    assert not same_comment.new_events
    assert same_comment.response["intents"] == recorded[0].response["intents"]

    assert len(await rows(pool, "SELECT 1 FROM deliveries")) == 21
    assert len(await rows(pool, "SELECT 1 FROM intents")) == 20
    assert len(await rows(pool, "SELECT 1 FROM outbox")) == 20
    stored = await rows(pool, "SELECT delivery_id, response FROM deliveries")
    for row in stored:
        assert row["response"]["delivery"] == row["delivery_id"]


async def test_a_delivery_the_database_refuses_fails_alone(
    pool: AsyncConnectionPool[Any],
) -> None:
    rec = recorder(pool)
    good = [(str(uuid.uuid4()), comment("$USDC:7$", number=n + 1)) for n in range(3)]
    refused: dict[str, Any] = {
        "delivery_id": str(uuid.uuid4()),
        "event": "issue_comment",
        "action": "created",
        "received_at": "not a time",
        "intents": [],
        "outbox": [],
        "replies": [],
        "response": {},
    }

    tasks: list[Awaitable[Any]] = [rec.record(d, s, find_bounties(s.body)) for d, s in good[:2]]
    tasks.insert(1, rec.batcher.submit(refused))
    tasks.append(rec.record(good[2][0], good[2][1], find_bounties(good[2][1].body)))
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(outcomes[1], psycopg.errors.InvalidDatetimeFormat), outcomes[1]
    answered = [outcomes[0], outcomes[2], outcomes[3]]
    assert all(isinstance(a, Recorded) and not a.duplicate for a in answered), answered
    assert rec.batcher.batches == 1 + 4, "the batch failed whole, then each ran alone"
    delivered = {r["delivery_id"] for r in await rows(pool, "SELECT delivery_id FROM deliveries")}
    assert delivered == {d for d, _ in good}
    assert len(await rows(pool, "SELECT 1 FROM intents")) == 3
