"""Recording a delivery: its intents, link confirmations, events and replies in one transaction.

The delivery id is claimed first (`deliveries`), so a repeated delivery gets the
stored answer and changes nothing. Intent ids are derived from where the bounty
was written, so the same comment under another delivery id finds its intent
(`ON CONFLICT DO NOTHING`) and answers with the stored signing URL: one intent,
one `bounty.requested`. Events go through the outbox in the same transaction;
the relay publishes them after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.common import intent_ids
from services.common.event_models import Author, BountyRequested, LinkConfirmed
from services.common.events import make_event
from services.common.grammar import BountyMatch, ParseResult
from services.common.intent_tokens import IntentClaims, issue_intent_token
from services.common.metrics import observe_edge
from services.common.outbox import enqueue
from services.common.timefmt import rfc3339

from .replies import DATABASE, SERVICE, enqueue_reply, intent_reply, link_reply, rejected_reply
from .webhook import Source

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
    def __init__(self, pool: AsyncConnectionPool[Any], config: RecorderConfig) -> None:
        self._pool = pool
        self._config = config

    async def record(self, delivery_id: str, source: Source, parsed: ParseResult) -> Recorded:
        """Record one counted delivery and return the webhook's 200 answer."""
        now = datetime.now(UTC).replace(microsecond=0)
        with observe_edge(DATABASE):
            async with self._pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO deliveries (delivery_id, event, action, received_at) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (delivery_id) DO NOTHING",
                    (delivery_id, source.event, source.action, now),
                )
                if cur.rowcount == 0:
                    cur = await conn.execute(
                        "SELECT response FROM deliveries WHERE delivery_id = %s", (delivery_id,)
                    )
                    row = await cur.fetchone()
                    stored = dict(row["response"] or {}) if row else {}
                    stored["duplicate"] = True
                    return Recorded(stored, duplicate=True, new_events=False, new_replies=False)
                recorded = await self._record_new(conn, delivery_id, source, parsed, now)
                await conn.execute(
                    "UPDATE deliveries SET response = %s WHERE delivery_id = %s",
                    (Jsonb(recorded.response), delivery_id),
                )
        return recorded

    async def _record_new(
        self,
        conn: AsyncConnection[Any],
        delivery_id: str,
        source: Source,
        parsed: ParseResult,
        now: datetime,
    ) -> Recorded:
        new_events = new_replies = False
        replies = self._config.replies
        links: list[dict[str, str]] = []
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
            await enqueue(conn, event)
            new_events = True
            if replies:
                await enqueue_reply(
                    conn,
                    f"link:{code}",
                    source.full_name,
                    source.number,
                    link_reply(code, source.author_login),
                )
                new_replies = True
            links.append({"code": code})

        intents: list[dict[str, str]] = []
        for match in parsed.matches:
            answer, created = await self._record_intent(conn, source, match, now)
            intents.append(answer)
            new_events = new_events or created
            new_replies = new_replies or (created and replies)

        rejected = [{"text": r.text, "reason": r.reason} for r in parsed.rejected]
        if parsed.rejected and replies:
            reply_id = f"rejected:{source.repository}:{source.source}:{source.source_id}"
            await enqueue_reply(
                conn,
                reply_id,
                source.full_name,
                source.number,
                rejected_reply(reply_id, parsed.rejected),
            )
            new_replies = True
        response = {
            "delivery": delivery_id,
            "intents": intents,
            "links": links,
            "rejected": rejected,
            "duplicate": False,
        }
        return Recorded(response, duplicate=False, new_events=new_events, new_replies=new_replies)

    async def _record_intent(
        self, conn: AsyncConnection[Any], source: Source, match: BountyMatch, now: datetime
    ) -> tuple[dict[str, str], bool]:
        """The intent's answer entry, and whether it was recorded just now."""
        intent_id = intent_ids.intent_id(
            source.repository, source.number, source.source, source.source_id, match.index
        )
        expires = now + timedelta(seconds=self._config.ttl_s)
        claims = intent_claims(intent_id, source, match, expires)
        url = signing_url(
            self._config.frontend_url, issue_intent_token(claims, self._config.signing_key)
        )
        cur = await conn.execute(
            "INSERT INTO intents (intent_id, repository, number, kind, source, source_id, "
            "match_index, denomination, amount, author_id, author_login, html_url, source_url, "
            "signing_url, created_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (intent_id) DO NOTHING",
            (
                intent_id,
                source.repository,
                source.number,
                source.kind,
                source.source,
                source.source_id,
                match.index,
                match.denomination,
                match.amount,
                source.author_id,
                source.author_login,
                source.html_url,
                source.source_url,
                url,
                now,
                expires,
            ),
        )
        if cur.rowcount == 0:
            # Recorded before (another delivery of the same text): answer from the row.
            cur = await conn.execute(
                "SELECT signing_url, denomination, amount FROM intents WHERE intent_id = %s",
                (intent_id,),
            )
            row = await cur.fetchone()
            if row is None:  # cannot happen: the conflict proves the row exists
                raise RuntimeError(f"intent {intent_id} vanished during its redelivery")
            return {
                "intent_id": intent_id,
                "signing_url": row["signing_url"],
                "denomination": row["denomination"],
                "amount": str(int(row["amount"])),
            }, False

        event = make_event(
            "bounty.requested",
            key=intent_id,
            data=bounty_requested(claims, source, match, url, created=now, expires=expires),
            source=SERVICE,
        )
        await enqueue(conn, event)
        if self._config.replies:
            await enqueue_reply(
                conn,
                intent_id,
                source.full_name,
                source.number,
                intent_reply(intent_id, match, url, expires),
            )
        return {
            "intent_id": intent_id,
            "signing_url": url,
            "denomination": match.denomination,
            "amount": str(match.amount),
        }, True
