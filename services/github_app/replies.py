"""Reply comments on GitHub, posted from an outbox table so none is lost or doubled.

The webhook's transaction writes a `github_replies` row next to the intent; the
poster claims due rows with `FOR UPDATE SKIP LOCKED` (so replicas never share
one), posts the comment and marks it posted. Every reply carries a hidden marker
naming its row; each attempt is counted (and committed) before the post, and a
later attempt — after a failure or a crash — first lists the issue's comments and
skips the post when the marker is already there, so a retry never posts twice.
Reply texts describe bounties in words and never repeat a pattern that would
match again when GitHub delivers the reply itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from services.common.failpoints import failpoint
from services.common.grammar import (
    BountyMatch,
    Rejection,
    describe_for_reply,
    describe_rejection_for_reply,
)
from services.common.metrics import observe_edge
from services.common.poller import Poller
from services.common.timefmt import rfc3339
from services.common.topology import edge

__all__ = [
    "SERVICE",
    "OwnAccount",
    "ReplyPoster",
    "backoff_s",
    "fetch_own_account",
    "intent_reply",
    "link_reply",
    "marker",
    "rejected_reply",
]

log = logging.getLogger(__name__)

SERVICE: Final = "github-app"
DATABASE: Final = edge(SERVICE, "postgres")
MAX_BACKOFF_S: Final = 600.0
_MAX_LIST_PAGES: Final = 10


def marker(reply_id: str) -> str:
    """The hidden HTML comment that identifies a reply on GitHub."""
    name = f"intent:{reply_id}" if reply_id.startswith("0x") else reply_id
    return f"<!-- kdemo:{name} -->"


def intent_reply(intent_id: str, match: BountyMatch, signing_url: str, expires: datetime) -> str:
    return (
        f"Sign this bounty of {describe_for_reply(match)}: {signing_url}\n\n"
        f"The link is valid until {expires.strftime('%Y-%m-%d %H:%M UTC')}.\n\n"
        f"{marker(intent_id)}"
    )


def link_reply(code: str, login: str) -> str:
    return (
        f"Link code received from {login}; kdemo will pair it with the wallet signature "
        f"from the link page.\n\n{marker('link:' + code)}"
    )


def rejected_reply(reply_id: str, rejections: Sequence[Rejection]) -> str:
    lines = [f"Not a bounty: {describe_rejection_for_reply(r)}" for r in rejections]
    return "\n".join(lines) + f"\n\n{marker(reply_id)}"


def backoff_s(attempts: int) -> float:
    """Delay before attempt `attempts + 1`: 1 s, 2 s, 4 s … capped at 10 minutes."""
    return float(min(MAX_BACKOFF_S, 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class OwnAccount:
    """The GitHub account the token belongs to; its comments are never bounties."""

    id: int
    login: str


async def fetch_own_account(client: httpx.AsyncClient) -> OwnAccount:
    """`GET /user` with the configured token; raises on any failure."""
    response = await client.get("/user")
    response.raise_for_status()
    data = response.json()
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("id"), int)
        or not isinstance(data.get("login"), str)
    ):
        raise ValueError("GET /user: expected an object with integer id and string login")
    return OwnAccount(id=data["id"], login=data["login"])


class ReplyPoster(Poller):
    """Posts due rows of `github_replies`; `kick()` after a commit wakes it at once."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        client: httpx.AsyncClient,
        *,
        poll_interval: float = 1.0,
    ) -> None:
        super().__init__(poll_interval=poll_interval, name="reply poster")
        self._pool = pool
        self._client = client

    async def step(self) -> bool:
        return await self.post_one()

    async def post_one(self) -> bool:
        """Claim one due reply and try it; False when none is due."""
        async with self._pool.connection() as conn:
            reply = await self._count_attempt(conn)
            if reply is None:
                return False
            async with conn.transaction():
                # The row stays locked while it is posted, so another replica skips it.
                with observe_edge(DATABASE):
                    cur = await conn.execute(
                        "SELECT 1 FROM github_replies WHERE id = %s AND posted_at IS NULL "
                        "FOR UPDATE SKIP LOCKED",
                        (reply["id"],),
                    )
                    if await cur.fetchone() is None:
                        return True  # another replica is posting it, or has
                try:
                    await self._deliver(reply)
                except (httpx.HTTPError, ValueError) as exc:
                    delay = backoff_s(reply["attempts"])
                    log.warning(
                        "reply not posted; will retry",
                        extra={
                            "reply": reply["id"],
                            "attempts": reply["attempts"],
                            "delay_s": delay,
                            "error": str(exc),
                        },
                    )
                    with observe_edge(DATABASE):
                        await conn.execute(
                            "UPDATE github_replies SET last_error = %s, "
                            "next_attempt_at = now() + %s WHERE id = %s",
                            (str(exc)[:1000], timedelta(seconds=delay), reply["id"]),
                        )
                    return True
                failpoint("replies.after_post")
                with observe_edge(DATABASE):
                    await conn.execute(
                        "UPDATE github_replies SET posted_at = now() WHERE id = %s", (reply["id"],)
                    )
                return True

    async def _count_attempt(self, conn: AsyncConnection[Any]) -> dict[str, Any] | None:
        """Count an attempt on one due reply, committed before anything is posted: a poster
        that dies after GitHub took the comment leaves attempts > 1 for the next one, which
        then looks for the reply's marker instead of posting it twice."""
        async with conn.transaction():
            with observe_edge(DATABASE):
                cur = await conn.execute(
                    "UPDATE github_replies SET attempts = attempts + 1 WHERE id = ("
                    "SELECT id FROM github_replies WHERE posted_at IS NULL "
                    "AND next_attempt_at <= now() ORDER BY next_attempt_at, id "
                    "LIMIT 1 FOR UPDATE SKIP LOCKED) "
                    "RETURNING id, repository, number, body, attempts, created_at"
                )
                row = await cur.fetchone()
        return None if row is None else dict(row)

    async def _deliver(self, reply: dict[str, Any]) -> None:
        path = f"/repos/{reply['repository']}/issues/{reply['number']}/comments"
        if reply["attempts"] > 1 and await self._already_posted(path, reply):
            log.info("reply was already posted", extra={"reply": reply["id"]})
            return
        response = await self._client.post(path, json={"body": reply["body"]})
        response.raise_for_status()
        log.info("reply posted", extra={"reply": reply["id"], "path": path})

    async def _already_posted(self, path: str, reply: dict[str, Any]) -> bool:
        """True when a comment on the thread already carries this reply's marker."""
        wanted = marker(reply["id"])
        since_at = reply["created_at"].astimezone(UTC) - timedelta(minutes=5)
        since = rfc3339(since_at)
        url: str | None = path
        params: dict[str, str | int] | None = {"since": since, "per_page": 100}
        for _ in range(_MAX_LIST_PAGES):
            if url is None:
                break
            response = await self._client.get(url, params=params)
            response.raise_for_status()
            comments = response.json()
            if not isinstance(comments, list):
                raise ValueError(f"GET {path}: expected a JSON array of comments")
            if any(isinstance(c, dict) and wanted in str(c.get("body") or "") for c in comments):
                return True
            url = response.links.get("next", {}).get("url")
            params = None  # the next link carries its own query
        return False
