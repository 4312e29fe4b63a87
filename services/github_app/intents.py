"""Recording a delivery: its intents, link confirmations, events and replies in one transaction.

The delivery id is claimed first (`deliveries`), so a repeated delivery gets the
stored answer and changes nothing. Intent ids are derived from where the bounty
was written, so the same comment under another delivery id finds its intent
(`ON CONFLICT DO NOTHING`) and answers with the stored signing URL: one intent,
one `bounty.requested`. Events go through the outbox in the same transaction;
the relay publishes them after the commit.

The transaction is one statement, `record_delivery()` (migrations/0003): one round
trip per webhook instead of six, which was half of github-app's CPU
(docs/performance.md). Deliveries that arrive together share that statement (group
commit, services.common.batching): still one transaction, committed before any of
them is answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.common import intent_ids
from services.common.batching import Batcher
from services.common.event_models import Author, BountyRequested, LinkConfirmed
from services.common.events import Event, encode, make_event
from services.common.grammar import BountyMatch, ParseResult
from services.common.intent_tokens import IntentClaims, issue_intent_token
from services.common.metrics import observe_edge
from services.common.timefmt import rfc3339

from .replies import DATABASE, SERVICE, intent_reply, link_reply, rejected_reply
from .webhook import Source

# Each plan's record_delivery() in the plans' order; a later plan sees what an earlier
# one wrote (a redelivery, or the same comment, within one batch).
_RECORD_DELIVERIES = """
    SELECT r.* FROM jsonb_array_elements(%s) WITH ORDINALITY AS d(plan, n)
    CROSS JOIN LATERAL record_delivery(d.plan) AS r
    ORDER BY d.n
"""

__all__ = [
    "Recorded",
    "Recorder",
    "RecorderConfig",
    "bounty_requested",
    "intent_claims",
    "signing_url",
]


@dataclass(frozen=True)
class RecorderConfig:
    signing_key: str
    """Ed25519 private key (PEM) that signs intent tokens."""
    ttl_s: int
    frontend_url: str
    replies: bool
    """Write reply comments to the outbox (a GitHub token is configured)."""


@dataclass(frozen=True)
class Recorded:
    response: dict[str, Any]
    duplicate: bool
    new_events: bool
    new_replies: bool


def signing_url(frontend_url: str, token: str) -> str:
    return f"{frontend_url}/sign?t={token}"


def intent_claims(
    intent_id: str, source: Source, match: BountyMatch, expires: datetime
) -> IntentClaims:
    """What the intent token vouches for: the bounty found at `match` in `source`."""
    return IntentClaims(
        intent_id=intent_id,
        repository=source.repository,
        number=source.number,
        kind=source.kind,
        source=source.source,
        source_id=source.source_id,
        html_url=source.html_url,
        denomination=match.denomination,
        amount=match.amount,
        author_id=source.author_id,
        author_login=source.author_login,
        expires_at=int(expires.timestamp()),
    )


def bounty_requested(
    claims: IntentClaims,
    source: Source,
    match: BountyMatch,
    url: str,
    *,
    created: datetime,
    expires: datetime,
) -> BountyRequested:
    """The `bounty.requested` data of the intent `claims` vouch for.

    Every field the token also carries is taken from `claims`, never from the delivery
    again, so what the signer is shown and what the ledger records cannot drift apart.
    `source` and `match` give only what the token leaves out (where the text is, which
    match it was), and `expires` must be the moment the claims' deadline was cut from.
    """
    if int(expires.timestamp()) != claims.expires_at:
        raise ValueError(f"expires: {expires} is not the claims' deadline {claims.expires_at}")
    return BountyRequested(
        intent_id=claims.intent_id,
        repository=claims.repository,
        number=claims.number,
        kind=claims.kind,
        source=claims.source,
        source_id=claims.source_id,
        match_index=match.index,
        denomination=claims.denomination,
        amount=str(claims.amount),
        author=Author(id=claims.author_id, login=claims.author_login),
        html_url=claims.html_url,
        source_url=source.source_url,
        signing_url=url,
        created_at=rfc3339(created, "auto"),
        expires_at=rfc3339(expires, "auto"),
        deadline=claims.expires_at,
    )


class Recorder:
    """Records a delivery with one call to the database's `record_delivery()`.

    Everything the delivery may write (its intents with their tokens, their events and
    replies, link confirmations) is prepared here; the function decides in the same
    round trip what is new (migrations/0003.record_delivery.sql). The pool must be in
    autocommit, so that the one statement is the whole transaction: a 200 still means
    it committed.
    """

    def __init__(self, pool: AsyncConnectionPool[Any], config: RecorderConfig) -> None:
        self._pool = pool
        self._config = config
        # Group commit: deliveries that arrive while a call is in flight share the next.
        self.batcher: Batcher[dict[str, Any], dict[str, Any]] = Batcher(self._record_batch)

    async def record(self, delivery_id: str, source: Source, parsed: ParseResult) -> Recorded:
        """Record one counted delivery and return the webhook's 200 answer."""
        now = datetime.now(UTC).replace(microsecond=0)
        plan = self._plan(delivery_id, source, parsed, now)
        row = await self.batcher.submit(plan)
        answer = dict(row["answer"])
        if row["repeated"]:
            return Recorded(answer, duplicate=True, new_events=False, new_replies=False)
        # The stored answer is jsonb (its own key order); the reply keeps the documented one.
        response = {"delivery": delivery_id, "intents": answer["intents"], **plan["response"]}
        return Recorded(
            response,
            duplicate=False,
            new_events=row["new_events"],
            new_replies=row["new_replies"],
        )

    async def _record_batch(self, plans: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """`record_delivery()` for each plan, in their order, in one statement: one
        transaction, so the batch commits or rolls back whole (the batcher then runs
        each plan alone)."""
        with observe_edge(DATABASE):
            async with self._pool.connection() as conn:
                cur = await conn.execute(_RECORD_DELIVERIES, (Jsonb(plans, dumps=orjson.dumps),))
                rows: list[dict[str, Any]] = await cur.fetchall()
                return rows

    def _plan(
        self, delivery_id: str, source: Source, parsed: ParseResult, now: datetime
    ) -> dict[str, Any]:
        """`record_delivery()`'s argument: every row the delivery may write."""
        replies = self._config.replies
        outbox: list[dict[str, Any]] = []
        reply_rows: list[dict[str, Any]] = []

        def reply(reply_id: str, body: str, intent_id: str | None = None) -> None:
            if replies:
                reply_rows.append(
                    {
                        "id": reply_id,
                        "repository": source.full_name,
                        "number": source.number,
                        "body": body,
                        "intent_id": intent_id,
                    }
                )

        for code in parsed.links:
            event = make_event(
                "identity.link_confirmed",
                key=code,
                data=LinkConfirmed(
                    code=code,
                    github_id=source.author_id,
                    login=source.author_login,
                    comment_url=source.source_url,
                    confirmed_at=rfc3339(now, "auto"),
                ),
                source=SERVICE,
            )
            outbox.append(_outbox_row(event, None))
            reply(f"link:{code}", link_reply(code, source.author_login))

        intents: list[dict[str, Any]] = []
        for match in parsed.matches:
            row, event, intent_reply_body = self._intent(source, match, now)
            intents.append(row)
            outbox.append(_outbox_row(event, row["intent_id"]))
            reply(row["intent_id"], intent_reply_body, row["intent_id"])

        if parsed.rejected:
            reply_id = f"rejected:{source.repository}:{source.source}:{source.source_id}"
            reply(reply_id, rejected_reply(reply_id, parsed.rejected))
        return {
            "delivery_id": delivery_id,
            "event": source.event,
            "action": source.action,
            "received_at": now.isoformat(),
            "intents": intents,
            "outbox": outbox,
            "replies": reply_rows,
            "response": {
                "links": [{"code": code} for code in parsed.links],
                "rejected": [{"text": r.text, "reason": r.reason} for r in parsed.rejected],
                "duplicate": False,
            },
        }

    def _intent(
        self, source: Source, match: BountyMatch, now: datetime
    ) -> tuple[dict[str, Any], Event, str]:
        """The intent's row, its `bounty.requested` and its reply, should it be new."""
        intent_id = intent_ids.intent_id(
            source.repository, source.number, source.source, source.source_id, match.index
        )
        expires = now + timedelta(seconds=self._config.ttl_s)
        claims = intent_claims(intent_id, source, match, expires)
        url = signing_url(
            self._config.frontend_url, issue_intent_token(claims, self._config.signing_key)
        )
        row = {
            "intent_id": intent_id,
            "repository": source.repository,
            "number": source.number,
            "kind": source.kind,
            "source": source.source,
            "source_id": source.source_id,
            "match_index": match.index,
            "denomination": match.denomination,
            "amount": str(match.amount),
            "author_id": source.author_id,
            "author_login": source.author_login,
            "html_url": source.html_url,
            "source_url": source.source_url,
            "signing_url": url,
            "created_at": now.isoformat(),
            "expires_at": expires.isoformat(),
        }
        event = make_event(
            "bounty.requested",
            key=intent_id,
            data=bounty_requested(claims, source, match, url, created=now, expires=expires),
            source=SERVICE,
        )
        return row, event, intent_reply(intent_id, match, url, expires)


def _outbox_row(event: Event, intent_id: str | None) -> dict[str, Any]:
    """An outbox entry; with `intent_id` it is written only if that intent is new."""
    return {
        "id": event.id,
        "subject": event.nats_subject,
        "payload": encode(event).decode(),
        "intent_id": intent_id,
    }
