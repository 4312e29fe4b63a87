"""Pairing the two halves of a link: the wallet's signed request and GitHub's confirmation.

Either half may arrive first. Each handler runs in one transaction: record the
event as processed, store its half, and — once both halves are there and no
decision was made — decide, record the outcome and enqueue `identity.linked` or
`identity.link_refused` in the outbox. A confirmation whose request never comes
is refused as "unknown link code" by the sweeper after a grace period; a request
never confirmed is refused as "code expired" once its code expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from psycopg import Rollback
from psycopg_pool import AsyncConnectionPool

from services.common.bus import Poison
from services.common.event_models import LinkConfirmed, Linked, LinkRefused, LinkRequested
from services.common.events import Event, data_as, make_event
from services.common.failpoints import failpoint
from services.common.metrics import observe_edge, record_edge
from services.common.outbox import OutboxRelay, already_processed, enqueue
from services.common.siwe import SiweError, SiweMessage, verify_link_message
from services.common.timefmt import rfc3339
from services.common.topology import edge

from . import store
from .store import Conn, LinkConfirmation, LinkRequest, Outcome

__all__ = [
    "CODE_EXPIRED",
    "NONCE_USED",
    "SERVICE",
    "UNKNOWN_CODE",
    "Pairing",
    "rfc3339",
]

SERVICE = "identity"
DATABASE = edge(SERVICE, "postgres")
CODE_EXPIRED = "code expired"
NONCE_USED = "nonce already used"
UNKNOWN_CODE = "unknown link code"
SWEEP_BATCH = 100

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Pairing:
    """The event handlers and the sweeper of identity."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        relay: OutboxRelay,
        *,
        chain_id: int,
        grace_s: float,
        expected_domain: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._pool = pool
        self._relay = relay
        self._chain_id = chain_id
        self._domain = expected_domain
        """frontend's public host: a SIWE message made for another site never links."""
        self._grace = timedelta(seconds=grace_s)
        self._clock = clock
        self.database_ok = False
        """Whether the last sweep reached the database (part of readiness)."""

    async def handle(self, event: Event) -> None:
        """The durable consumer's handler (return = ack, `Poison` = dead letter)."""
        if event.data.get("code") != event.key:
            raise Poison(
                f"{event.name}: data.code {event.data.get('code')!r} is not the subject "
                f"{event.key!r}"
            )
        if event.name == "identity.link_requested":
            await self._on_requested(event)
        elif event.name == "identity.link_confirmed":
            await self._on_confirmed(event)
        else:
            raise Poison(f"identity does not consume {event.name}")
        self._relay.kick()

    def _verify(self, message: str, signature: str, now: datetime) -> SiweMessage:
        return verify_link_message(
            message, signature, expected_domain=self._domain, chain_id=self._chain_id, now=now
        )

    async def _on_requested(self, event: Event) -> None:
        request = data_as(event, LinkRequested)
        code = request.code
        now = self._clock()
        poison: str | None = None
        with observe_edge(DATABASE):
            async with self._pool.connection() as conn, conn.transaction():
                if await already_processed(conn, event):
                    return
                req = self._parse_request(request, now)
                if isinstance(req, str):
                    poison = req
                    raise Rollback  # forget it was seen: it goes to the dead letters instead
                if await store.get_outcome(conn, code) is not None:
                    return  # decided already (a confirmation that waited too long)
                try:
                    inserted = await store.insert_request(conn, req)
                except store.NonceReused:
                    await self._refuse(conn, code, NONCE_USED, req.address, req.login, None, now)
                    return
                if inserted:
                    await self._decide(conn, code, now)
        if poison is not None:
            raise Poison(poison)

    def _parse_request(self, request: LinkRequested, now: datetime) -> LinkRequest | str:
        """The request to store, or why it can never be (bad signature, inconsistent fields)."""
        code = request.code
        try:
            siwe = self._verify(request.message, request.signature, now)
        except SiweError as exc:
            return f"link_requested {code}: {exc.reason}: {exc.message}"
        pairs = (
            ("address", request.address.lower(), siwe.address.lower()),
            ("login", request.login.lower(), siwe.login.lower()),
            ("nonce", request.nonce, siwe.nonce),
        )
        for name, given, signed in pairs:
            if given != signed:
                return (
                    f"link_requested {code}: {name} {given!r} differs from the signed "
                    f"message's {signed!r}"
                )
        try:
            expires_at = datetime.fromisoformat(request.expires_at)
        except ValueError:
            expires_at = None
        if expires_at is None or expires_at.tzinfo is None:
            return (
                f"link_requested {code}: expires_at {request.expires_at!r} is not an "
                "RFC 3339 timestamp with a time zone"
            )
        return LinkRequest(
            code=code,
            address=siwe.address.lower(),
            login=siwe.login,
            message=request.message,
            signature=request.signature,
            nonce=siwe.nonce,
            expires_at=expires_at,
            received_at=now,
        )

    async def _on_confirmed(self, event: Event) -> None:
        confirmed = data_as(event, LinkConfirmed)
        code = confirmed.code
        now = self._clock()
        conf = LinkConfirmation(
            code=code,
            github_id=confirmed.github_id,
            login=confirmed.login,
            comment_url=confirmed.comment_url,
            received_at=now,
        )
        with observe_edge(DATABASE):
            async with self._pool.connection() as conn, conn.transaction():
                if await already_processed(conn, event):
                    return
                if await store.get_outcome(conn, code) is not None:
                    return  # decided already: a second comment with a used code changes nothing
                if await store.insert_confirmation(conn, conf):
                    await self._decide(conn, code, now)

    async def _decide(self, conn: Conn, code: str, now: datetime) -> None:
        """Decide once both halves are stored; until then the half waits (acked)."""
        req = await store.get_request(conn, code)
        conf = await store.get_confirmation(conn, code)
        if req is None or conf is None:
            return
        await store.lock_address(conn, req.address)
        reason = await self._judge(conn, req, conf)
        if reason is not None:
            await self._refuse(conn, code, reason, req.address, req.login, conf.github_id, now)
            return
        outcome = Outcome(code, "linked", None, req.address, conf.login, conf.github_id, now)
        if not await store.record_outcome(conn, outcome):
            return
        await store.upsert_link(
            conn, store.Link(req.address, conf.github_id, conf.login, now, code)
        )
        failpoint("pairing.before_event")  # a decision without its event must never commit
        await enqueue(
            conn,
            make_event(
                "identity.linked",
                key=code,
                data=Linked(
                    code=code,
                    address=req.address,
                    github_id=conf.github_id,
                    login=conf.login,
                    linked_at=rfc3339(now, "milliseconds"),
                ),
                source=SERVICE,
            ),
        )
        log.info(
            "linked",
            extra={
                "code": code,
                "address": req.address,
                "github_id": conf.github_id,
                "login": conf.login,
            },
        )

    async def _judge(self, conn: Conn, req: LinkRequest, conf: LinkConfirmation) -> str | None:
        """The reason to refuse the pair, or None to link it."""
        if conf.received_at >= req.expires_at:
            return CODE_EXPIRED
        try:
            # Judged at the request's arrival: a late confirmation must not void the signature.
            self._verify(req.message, req.signature, req.received_at)
        except SiweError as exc:
            return f"the wallet signature does not verify: {exc.message}"
        if conf.login.lower() != req.login.lower():
            return f"the comment was made by @{conf.login} but the wallet signed for @{req.login}"
        existing = await store.get_link(conn, req.address)
        if existing is not None and existing.github_id != conf.github_id:
            return f"wallet already linked to @{existing.login}"
        return None

    async def _refuse(
        self,
        conn: Conn,
        code: str,
        reason: str,
        address: str | None,
        login: str | None,
        github_id: int | None,
        now: datetime,
    ) -> None:
        outcome = Outcome(code, "refused", reason, address, login, github_id, now)
        if not await store.record_outcome(conn, outcome):
            return
        await enqueue(
            conn,
            make_event(
                "identity.link_refused",
                key=code,
                data=LinkRefused(
                    code=code,
                    reason=reason,
                    address=address,
                    login=login,
                    refused_at=rfc3339(now, "milliseconds"),
                ),
                source=SERVICE,
            ),
        )
        log.info("link refused", extra={"code": code, "reason": reason, "address": address})

    async def sweep_once(self) -> int:
        """Refuse stale unpaired confirmations and expired unconfirmed requests; how many."""
        now = self._clock()
        started = time.perf_counter()
        async with self._pool.connection() as conn, conn.transaction():
            stale = await store.stale_confirmations(conn, now - self._grace, SWEEP_BATCH)
            for conf in stale:
                await self._refuse(
                    conn, conf.code, UNKNOWN_CODE, None, conf.login, conf.github_id, now
                )
            expired = await store.expired_requests(conn, now, SWEEP_BATCH)
            for req in expired:
                await self._refuse(conn, req.code, CODE_EXPIRED, req.address, req.login, None, now)
        count = len(stale) + len(expired)
        if count:  # an idle sweep is not traffic worth lighting an edge for
            record_edge(DATABASE, time.perf_counter() - started)
            self._relay.kick()
        return count

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        interval = min(1.0, self._grace.total_seconds() / 4)
        # Housekeeping polls are not recorded as edge traffic: the dashboard shows the flow.
        while not stop.is_set():
            try:
                await self.sweep_once()
                self.database_ok = True
            except Exception as exc:  # database away: sweep again on the next tick
                if self.database_ok:
                    log.warning("sweep failed", extra={"error": str(exc)})
                self.database_ok = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
