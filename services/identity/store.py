"""identity's SQL: link requests, confirmations, links and outcomes (psycopg 3, dict rows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation

__all__ = [
    "Conn",
    "Link",
    "LinkConfirmation",
    "LinkRequest",
    "NonceReused",
    "Outcome",
    "expired_requests",
    "get_confirmation",
    "get_link",
    "get_outcome",
    "get_request",
    "insert_confirmation",
    "insert_request",
    "lock_address",
    "lookup_links",
    "record_outcome",
    "stale_confirmations",
    "upsert_link",
]

# The pool (services.common.db.open_pool) sets dict rows, which its type does not carry.
Conn = AsyncConnection[Any]
OutcomeState = Literal["linked", "refused"]


class NonceReused(Exception):
    """Another link request already used this SIWE nonce."""


@dataclass(frozen=True)
class LinkRequest:
    code: str
    address: str
    """Lower-case 0x address."""
    login: str
    message: str
    signature: str
    nonce: str
    expires_at: datetime
    received_at: datetime


@dataclass(frozen=True)
class LinkConfirmation:
    code: str
    github_id: int
    login: str
    comment_url: str
    received_at: datetime


@dataclass(frozen=True)
class Link:
    address: str
    github_id: int
    login: str
    linked_at: datetime
    code: str


@dataclass(frozen=True)
class Outcome:
    code: str
    state: OutcomeState
    reason: str | None
    address: str | None
    login: str | None
    github_id: int | None
    decided_at: datetime


async def insert_request(conn: Conn, req: LinkRequest) -> bool:
    """Store the wallet's half; False when the code already has one; `NonceReused` on a reuse."""
    try:
        async with conn.transaction():  # a savepoint: the caller's transaction survives
            cur = await conn.execute(
                "INSERT INTO link_requests (code, address, login, message, signature, nonce, "
                "expires_at, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (code) DO NOTHING",
                (
                    req.code,
                    req.address,
                    req.login,
                    req.message,
                    req.signature,
                    req.nonce,
                    req.expires_at,
                    req.received_at,
                ),
            )
    except UniqueViolation as exc:  # only the nonce is left unique once the code is handled
        raise NonceReused(req.nonce) from exc
    return cur.rowcount == 1


async def insert_confirmation(conn: Conn, conf: LinkConfirmation) -> bool:
    """Store GitHub's half; False when the code already has one."""
    cur = await conn.execute(
        "INSERT INTO link_confirmations (code, github_id, login, comment_url, received_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (code) DO NOTHING",
        (conf.code, conf.github_id, conf.login, conf.comment_url, conf.received_at),
    )
    return cur.rowcount == 1


async def get_request(conn: Conn, code: str) -> LinkRequest | None:
    cur = await conn.execute("SELECT * FROM link_requests WHERE code = %s", (code,))
    row = await cur.fetchone()
    return None if row is None else LinkRequest(**row)


async def get_confirmation(conn: Conn, code: str) -> LinkConfirmation | None:
    cur = await conn.execute("SELECT * FROM link_confirmations WHERE code = %s", (code,))
    row = await cur.fetchone()
    return None if row is None else LinkConfirmation(**row)


async def get_outcome(conn: Conn, code: str) -> Outcome | None:
    cur = await conn.execute("SELECT * FROM link_outcomes WHERE code = %s", (code,))
    row = await cur.fetchone()
    return None if row is None else Outcome(**row)


async def record_outcome(conn: Conn, outcome: Outcome) -> bool:
    """Record the decision for a code; False when another decision got there first."""
    cur = await conn.execute(
        "INSERT INTO link_outcomes (code, state, reason, address, login, github_id, decided_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (code) DO NOTHING",
        (
            outcome.code,
            outcome.state,
            outcome.reason,
            outcome.address,
            outcome.login,
            outcome.github_id,
            outcome.decided_at,
        ),
    )
    return cur.rowcount == 1


async def lock_address(conn: Conn, address: str) -> None:
    """Serialise decisions about one wallet until the transaction ends (replicas included)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (address,))


async def get_link(conn: Conn, address: str) -> Link | None:
    cur = await conn.execute("SELECT * FROM links WHERE address = %s", (address,))
    row = await cur.fetchone()
    return None if row is None else Link(**row)


async def upsert_link(conn: Conn, link: Link) -> None:
    """Link the wallet (again): the caller has checked it is not another account's."""
    await conn.execute(
        "INSERT INTO links (address, github_id, login, linked_at, code) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (address) DO UPDATE SET "
        "github_id = EXCLUDED.github_id, login = EXCLUDED.login, "
        "linked_at = EXCLUDED.linked_at, code = EXCLUDED.code",
        (link.address, link.github_id, link.login, link.linked_at, link.code),
    )


async def lookup_links(conn: Conn, addresses: Sequence[str]) -> list[Link]:
    """The links of the given lower-case addresses, in address order."""
    cur = await conn.execute(
        "SELECT * FROM links WHERE address = ANY(%s) ORDER BY address", (list(addresses),)
    )
    return [Link(**row) for row in await cur.fetchall()]


async def stale_confirmations(conn: Conn, cutoff: datetime, limit: int) -> list[LinkConfirmation]:
    """Undecided confirmations without a request, received before `cutoff` (rows locked)."""
    cur = await conn.execute(
        "SELECT c.* FROM link_confirmations c "
        "WHERE c.received_at < %s "
        "AND NOT EXISTS (SELECT 1 FROM link_requests r WHERE r.code = c.code) "
        "AND NOT EXISTS (SELECT 1 FROM link_outcomes o WHERE o.code = c.code) "
        "ORDER BY c.received_at LIMIT %s FOR UPDATE OF c SKIP LOCKED",
        (cutoff, limit),
    )
    return [LinkConfirmation(**row) for row in await cur.fetchall()]


async def expired_requests(conn: Conn, now: datetime, limit: int) -> list[LinkRequest]:
    """Undecided requests whose code expired before any confirmation came (rows locked)."""
    cur = await conn.execute(
        "SELECT r.* FROM link_requests r "
        "WHERE r.expires_at <= %s "
        "AND NOT EXISTS (SELECT 1 FROM link_outcomes o WHERE o.code = r.code) "
        "ORDER BY r.expires_at LIMIT %s FOR UPDATE OF r SKIP LOCKED",
        (now, limit),
    )
    return [LinkRequest(**row) for row in await cur.fetchall()]
