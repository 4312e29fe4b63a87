"""The ledger's write side: `bounty.requested` and `bounty.signed` become rows.

Each handler runs in one transaction (in the usual order, a new intent's
`bounty.requested` and then its signatures, each in one autocommit statement): it
records the event's idempotency key, writes the rows and enqueues any event it
publishes (`bounty.recorded`) in the outbox, then commits; the bus acks only after
the handler returned. Events may arrive in any order:

- `bounty.signed` first: the signature is verified against the typed data rebuilt
  from its own message, then a provisional bounty row (requested = false) and the
  signature are stored, so the bounty shows as signed at once.
- `bounty.requested` later: the row takes the intent's authoritative fields (author,
  URLs, kind), never touching signatures, so a signed bounty is never downgraded;
  every stored signature whose message contradicts the intent is marked invalid
  and no longer counts.
- `bounty.requested` first: each signature must match the intent field by field,
  or it is dead-lettered (`Poison`) and never written.

A signature for an intent whose deadline has passed is dead-lettered as well.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Final

from psycopg import AsyncConnection, Rollback
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.common import eip712
from services.common.bus import Poison
from services.common.event_models import (
    BountyMessage,
    BountyRecorded,
    BountyRequested,
    BountySigned,
)
from services.common.events import Event, data_as, encode, make_event
from services.common.metrics import observe_edge
from services.common.outbox import already_processed
from services.common.timefmt import utc_now_rfc3339
from services.common.topology import edge

__all__ = ["SERVICE", "Ledger", "expected_message", "intent_mismatches", "transaction"]

SERVICE: Final = "gateway"
DATABASE: Final = edge(SERVICE, "postgres")
log = logging.getLogger(__name__)

_MESSAGE_COLUMNS: Final = (
    ("intentId", "intent_id"),
    ("repository", "repository"),
    ("number", "number"),
    ("source", "source"),
    ("sourceId", "source_id"),
    ("denomination", "denomination"),
    ("amount", "amount"),
    ("deadline", "deadline"),
)

_REQUESTED_COLUMNS: Final = """
    (intent_id, repository, number, kind, source, source_id, denomination, amount,
     author_id, author_login, html_url, source_url, signing_url, deadline, expires_at,
     requested, created_at, updated_at)
"""
_REQUESTED_VALUES: Final = """
    SELECT %(intent_id)s, %(repository)s, %(number)s, %(kind)s, %(source)s, %(source_id)s,
           %(denomination)s, %(amount)s, %(author_id)s, %(author_login)s, %(html_url)s,
           %(source_url)s, %(signing_url)s, %(deadline)s, %(expires_at)s::timestamptz, true,
           %(created_at)s::timestamptz, now()
"""

# The usual order, an intent the ledger has not seen: its row and the event's idempotency
# key, each only when the row is new, in one autocommit statement. When the row exists (a
# signature came first, or this is a redelivery) nothing is written, and the transaction
# of _RECORD_REQUESTED runs: stored signatures must be checked in the same transaction as
# the upsert. (Bounty rows are never deleted, so a new row means a new key.)
_RECORD_NEW_REQUESTED: Final = f"""
WITH bounty AS (
    INSERT INTO bounties {_REQUESTED_COLUMNS} {_REQUESTED_VALUES}
    ON CONFLICT (intent_id) DO NOTHING
    RETURNING intent_id
), fresh AS (
    INSERT INTO processed_events (event_type, event_id)
    SELECT %(event_type)s, %(event_id)s WHERE EXISTS (SELECT FROM bounty)
    ON CONFLICT DO NOTHING
)
SELECT EXISTS (SELECT FROM bounty) AS recorded
"""  # noqa: S608 (built from the constant fragments above, no input)

# The idempotency key and the upsert in one statement: a bounty.requested seen before
# inserts no key, so the upsert's SELECT yields nothing and no row comes back.
_RECORD_REQUESTED: Final = f"""
WITH fresh AS (
    INSERT INTO processed_events (event_type, event_id) VALUES (%(event_type)s, %(event_id)s)
    ON CONFLICT DO NOTHING
    RETURNING event_id
)
INSERT INTO bounties {_REQUESTED_COLUMNS} {_REQUESTED_VALUES}
WHERE EXISTS (SELECT FROM fresh)
ON CONFLICT (intent_id) DO UPDATE SET
    repository = EXCLUDED.repository, number = EXCLUDED.number, kind = EXCLUDED.kind,
    source = EXCLUDED.source, source_id = EXCLUDED.source_id,
    denomination = EXCLUDED.denomination, amount = EXCLUDED.amount,
    author_id = EXCLUDED.author_id, author_login = EXCLUDED.author_login,
    html_url = EXCLUDED.html_url, source_url = EXCLUDED.source_url,
    signing_url = EXCLUDED.signing_url, deadline = EXCLUDED.deadline,
    expires_at = EXCLUDED.expires_at, requested = true,
    created_at = LEAST(bounties.created_at, EXCLUDED.created_at), updated_at = now()
RETURNING *
"""  # noqa: S608 (built from the constant fragments above, no input)

_INSERT_PROVISIONAL: Final = """
INSERT INTO bounties (intent_id, repository, number, kind, source, source_id, denomination,
                      amount, author_id, html_url, deadline, expires_at, requested)
VALUES (%(intent_id)s, %(repository)s, %(number)s, %(kind)s, %(source)s, %(source_id)s,
        %(denomination)s, %(amount)s, %(author_id)s, %(html_url)s, %(deadline)s,
        to_timestamp(%(deadline)s), false)
ON CONFLICT (intent_id) DO NOTHING
"""

_SIGNATURE_ROWS: Final = """
signature AS (
    INSERT INTO signatures (intent_id, address, signature, message, signed_at, valid)
    SELECT %(intent_id)s, %(address)s, %(signature)s, %(message)s,
           %(signed_at)s::timestamptz, true
    WHERE EXISTS (SELECT FROM {after})
    ON CONFLICT (intent_id, address) DO NOTHING
    RETURNING intent_id
), queued AS (
    INSERT INTO outbox (id, subject, payload)
    SELECT %(event_id)s, %(subject)s, %(payload)s WHERE EXISTS (SELECT FROM signature)
    ON CONFLICT (id) DO NOTHING
)
"""

# The signature and, when it is new, its bounty.recorded in the outbox: one statement,
# inside _record_signature's transaction (after the row lock and the check in Python).
_RECORD_SIGNATURE: Final = f"""
WITH allowed AS (SELECT), -- one row: the caller has checked the bounty
{_SIGNATURE_ROWS.format(after="allowed")}
SELECT EXISTS (SELECT FROM signature) AS recorded
"""  # noqa: S608 (built from the constant fragment above, no input)

# The usual order, a signature of an intent gateway holds from bounty.requested: the
# check, the event's idempotency key, the signature and its outbox row in one autocommit
# statement. The row lock serialises it with a later bounty.requested of the same intent,
# whose check of stored signatures then sees this one. `matched` false (no row yet, a
# provisional one, or fields that differ) sends the event to the full transaction, which
# tells these apart.
_RECORD_MATCHING_SIGNATURE: Final = f"""
WITH bounty AS (
    SELECT FROM bounties
    WHERE intent_id = %(intent_id)s AND requested
      AND (repository, number, source, source_id, denomination, amount, deadline)
        = (%(repository)s, %(number)s, %(source)s, %(source_id)s, %(denomination)s,
           %(amount)s, %(deadline)s)
    FOR UPDATE
), fresh AS (
    INSERT INTO processed_events (event_type, event_id)
    SELECT %(processed_type)s, %(processed_id)s WHERE EXISTS (SELECT FROM bounty)
    ON CONFLICT DO NOTHING
    RETURNING event_id
), {_SIGNATURE_ROWS.format(after="fresh")}
SELECT EXISTS (SELECT FROM bounty) AS matched, EXISTS (SELECT FROM fresh) AS fresh,
       EXISTS (SELECT FROM signature) AS recorded
"""  # noqa: S608 (built from the constant fragment above, no input)


@asynccontextmanager
async def transaction(
    pool: AsyncConnectionPool[Any],
) -> AsyncIterator[AsyncConnection[Any]]:
    """One transaction on the ledger, counted as a gateway → postgres SQL request.

    (psycopg's pipeline mode, which would send a transaction's statements together, cost
    more client CPU per transaction here than the round trips it saves: 1.13 against
    0.80 ms in a loop of BEGIN, two statements, COMMIT.)
    """
    with observe_edge(DATABASE):
        async with pool.connection() as conn, conn.transaction():
            yield conn


def expected_message(bounty: Mapping[str, Any]) -> dict[str, str]:
    """The EIP-712 `Bounty` message (uint256 as decimal strings) a bounty row stands for."""
    out: dict[str, str] = {}
    for key, column in _MESSAGE_COLUMNS:
        value = bounty[column]
        out[key] = str(int(value)) if not isinstance(value, str) else value
    return out


def intent_mismatches(message: Mapping[str, Any], bounty: Mapping[str, Any]) -> list[str]:
    """The typed-data fields of a signed `message` that differ from the recorded intent."""
    expected = expected_message(bounty)
    return [key for key, _ in _MESSAGE_COLUMNS if message.get(key) != expected[key]]


def _guess_kind(source: str, html_url: str) -> str:
    """issue or pull_request, until bounty.requested says which."""
    if source in ("pull_request", "review_comment") or "/pull/" in html_url:
        return "pull_request"
    return "issue"


def _utc_now_text() -> str:
    return utc_now_rfc3339("milliseconds")


class Ledger:
    """Handles the gateway durable's events; `kick` wakes the outbox relay after a commit."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        chain_id: int,
        salt: str,
        kick: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self._chain_id = chain_id
        self._salt = salt
        self._kick = kick
        self._clock = clock

    async def handle(self, event: Event) -> None:
        """Bus handler: return → ack; `Poison` → dead letter; anything else → retried."""
        if event.name == "bounty.requested":
            await self.on_requested(event)
        elif event.name == "bounty.signed":
            await self.on_signed(event)
        else:
            raise Poison(f"gateway does not consume {event.name}; check the durable's filter")

    # -- bounty.requested -------------------------------------------------------------------

    async def on_requested(self, event: Event) -> None:
        requested = data_as(event, BountyRequested)
        intent = requested.intent_id
        if event.key != intent:
            raise Poison(f"bounty.requested: subject {event.key!r} does not name data.intent_id")
        try:
            derived = eip712.intent_id(
                requested.repository,
                requested.number,
                requested.source,
                requested.source_id,
                requested.match_index,
            )
        except eip712.TypedDataError as exc:
            raise Poison(f"bounty.requested: {exc}") from exc
        if derived != intent:
            raise Poison(
                f"bounty.requested: intent_id {intent} does not derive from repository, number, "
                f"source, source_id and match_index (expected {derived})"
            )
        params = requested.model_dump(exclude={"match_index", "author"})
        params.update(
            amount=int(requested.amount),
            author_id=requested.author.id,
            author_login=requested.author.login,
            event_type=event.type,
            event_id=event.id,
        )
        invalidated: list[str] = []
        if await self._record_new_requested(params):
            self._log_requested(requested, invalidated)
            return
        async with transaction(self._pool) as conn:
            recorded = await conn.execute(_RECORD_REQUESTED, params)
            bounty = await recorded.fetchone()
            if bounty is None:
                return  # seen before: its key was there, nothing was written
            # A statement of its own, after the upsert: it sees a signature committed meanwhile.
            signatures = await conn.execute(
                "SELECT address, message FROM signatures WHERE intent_id = %s AND valid FOR UPDATE",
                (intent,),
            )
            for signature in await signatures.fetchall():
                bad = intent_mismatches(signature["message"], bounty)
                if not bad:
                    continue
                reason = f"signed {', '.join(bad)} differ from the intent"
                await conn.execute(
                    "UPDATE signatures SET valid = false, invalid_reason = %s "
                    "WHERE intent_id = %s AND address = %s",
                    (reason, intent, signature["address"]),
                )
                invalidated.append(signature["address"])
        self._log_requested(requested, invalidated)

    async def _record_new_requested(self, params: dict[str, Any]) -> bool:
        """One statement, its own transaction (the pool is in autocommit): True when the
        intent was new and is now recorded with the event's key."""
        row = await self._one_statement(_RECORD_NEW_REQUESTED, params)
        return bool(row and row["recorded"])

    async def _one_statement(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """Run one statement as its own transaction (the pool is in autocommit); its row."""
        with observe_edge(DATABASE):
            async with self._pool.connection() as conn:
                cur = await conn.execute(sql, params)
                row: dict[str, Any] | None = await cur.fetchone()  # the pool's rows are dicts
                return row

    @staticmethod
    def _log_requested(requested: BountyRequested, invalidated: list[str]) -> None:
        log.info(
            "bounty requested",
            extra={
                "intent_id": requested.intent_id,
                "repository": requested.repository,
                "number": requested.number,
                "invalidated": invalidated,
            },
        )

    # -- bounty.signed ----------------------------------------------------------------------

    def _verify(self, event: Event) -> tuple[BountySigned, str]:
        """Check the event on its own (ids, chain, typed data, signer); returns the address."""
        signed = data_as(event, BountySigned)
        intent = signed.intent_id
        address = signed.address.lower()
        if event.key != intent or event.id != f"bounty.signed:{intent}:{address}":
            raise Poison(
                "bounty.signed: the event's subject and id must name data.intent_id and "
                "data.address"
            )
        if int(signed.chain_id) != self._chain_id:
            raise Poison(
                f"chain_id: signed for chain {signed.chain_id}, this stack uses "
                f"{self._chain_id}; sign again on the right chain"
            )
        message = signed.message
        if message.intentId != intent:
            raise Poison("message.intentId: differs from data.intent_id")
        try:
            typed = eip712.bounty_typed_data(
                intent_id=message.intentId,
                repository=message.repository,
                number=int(message.number),
                source=message.source,
                source_id=int(message.sourceId),
                denomination=message.denomination,
                amount=int(message.amount),
                deadline=int(message.deadline),
                chain_id=self._chain_id,
                salt=self._salt,
            )
            if typed["message"] != message.model_dump():
                raise eip712.TypedDataError(
                    "message: not in canonical form; build it with bounty_typed_data"
                )
            signer = eip712.recover_signer(typed, signed.signature)
        except (eip712.TypedDataError, eip712.SignatureError) as exc:
            raise Poison(f"bounty.signed: {exc}") from exc
        if signer.lower() != address:
            raise Poison(
                f"signature: recovers to {signer.lower()}, not to the claimed address {address} "
                "(wrong typed data, salt or chain)"
            )
        return signed, address

    async def on_signed(self, event: Event) -> None:
        signed, address = self._verify(event)
        intent = signed.intent_id
        problem = _expired(signed)
        if problem is not None:
            raise Poison(problem)
        recorded_event = self._recorded_event(intent, address, signed.message)
        params = {
            **_provisional_row(signed),
            "address": address,
            "signature": signed.signature,
            "message": Jsonb(signed.message.model_dump()),
            "signed_at": signed.signed_at,
            "event_id": recorded_event.id,
            "subject": recorded_event.nats_subject,
            "payload": encode(recorded_event),
            "processed_type": event.type,
            "processed_id": event.id,
        }
        outcome = await self._record_matching_signature(params)
        if outcome is None:
            outcome = await self._record_signature(event, signed, params)
        if outcome is None:
            return  # seen before: its key was there, nothing was written
        if outcome:
            self._kick()
        log.info(
            "signature recorded" if outcome else "signature already recorded",
            extra={"intent_id": intent, "address": address},
        )

    async def _record_matching_signature(self, params: dict[str, Any]) -> bool | None:
        """The usual case in one autocommit statement: True when the signature is new,
        False when that address had signed already; None when the event was seen before
        or the bounty does not match a requested intent (`on_signed` then runs the full
        transaction, which tells a duplicate from the rest)."""
        row = await self._one_statement(_RECORD_MATCHING_SIGNATURE, params)
        if row is None or not row["matched"] or not row["fresh"]:
            return None
        return bool(row["recorded"])

    async def _record_signature(
        self, event: Event, signed: BountySigned, params: dict[str, Any]
    ) -> bool | None:
        """The other orders: no row yet (a provisional one is stored), a provisional row,
        a duplicate, or a signature that contradicts the intent (`Poison`, nothing kept)."""
        problem = None
        async with transaction(self._pool) as conn:
            if await already_processed(conn, event):
                return None
            await conn.execute(_INSERT_PROVISIONAL, params)
            locked = await conn.execute(
                "SELECT * FROM bounties WHERE intent_id = %s FOR UPDATE", (signed.intent_id,)
            )
            bounty = await locked.fetchone()
            assert bounty is not None  # inserted above or already there
            problem = _mismatch(signed, bounty)
            if problem is not None:
                raise Rollback()  # forget the idempotency key too: the event is dead-lettered
            stored = await conn.execute(_RECORD_SIGNATURE, params)
            row = await stored.fetchone()
        if problem is not None:
            raise Poison(problem)
        return bool(row and row["recorded"])

    @staticmethod
    def _recorded_event(intent: str, address: str, message: BountyMessage) -> Event:
        return make_event(
            "bounty.recorded",
            key=intent,
            wallet=address,
            source=SERVICE,
            data=BountyRecorded(
                intent_id=intent,
                address=address,
                state="signed",
                repository=message.repository,
                number=int(message.number),
                denomination=message.denomination,
                amount=message.amount,
                recorded_at=_utc_now_text(),
            ),
        )


def _expired(signed: BountySigned) -> str | None:
    """Why a signature made after its intent's deadline can never be recorded."""
    deadline = int(signed.message.deadline)
    # Judge the signature by when frontend accepted it, not by when we got to it: a
    # signature made in time and delivered late (after an outage) still counts.
    signed_at = datetime.fromisoformat(signed.signed_at.replace("Z", "+00:00"))
    if deadline <= signed_at.timestamp():
        return (
            f"expired: signed at {signed.signed_at}, after the intent's deadline {deadline}; "
            "comment the bounty again for a new intent"
        )
    return None


def _provisional_row(signed: BountySigned) -> dict[str, Any]:
    """The bounty as the signature shows it, stored until bounty.requested arrives."""
    message = signed.message
    return {
        "intent_id": signed.intent_id,
        "repository": message.repository,
        "number": int(message.number),
        "kind": _guess_kind(message.source, signed.html_url),
        "source": message.source,
        "source_id": int(message.sourceId),
        "denomination": message.denomination,
        "amount": int(message.amount),
        "author_id": signed.author_id,
        "html_url": signed.html_url,
        "deadline": int(message.deadline),
    }


def _mismatch(signed: BountySigned, bounty: Mapping[str, Any]) -> str | None:
    """Why the signature contradicts the recorded intent, or None (a provisional row is
    checked field by field once bounty.requested arrives)."""
    if not bounty["requested"]:
        return None
    bad = intent_mismatches(signed.message.model_dump(), bounty)
    if bad:
        return (
            f"message.{', message.'.join(bad)}: signed value differs from the recorded "
            "intent; sign the typed data served for this intent"
        )
    return None
