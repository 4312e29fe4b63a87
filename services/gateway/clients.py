"""gateway's gRPC clients: calc (amounts, totals) and identity (who a wallet is).

Failures become `ApiError`s the API can answer as they are: calc unreachable is a
503 (no answer is better than one without amounts); a denomination calc rejects
leaves that bounty without a quote. identity unreachable is *not* an error for
the API: the answer degrades to unknown accounts plus a warning (see `lookup`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Final

import grpc

from services.common.httpapp import ApiError
from services.protos import calc_pb2, calc_pb2_grpc, identity_pb2, identity_pb2_grpc

__all__ = ["Account", "CalcClient", "IdentityClient", "UnknownDenomination"]

log = logging.getLogger(__name__)
RPC_TIMEOUT_S: Final = 3.0


class UnknownDenomination(Exception):
    """calc refused a denomination or amount (INVALID_ARGUMENT); the message says why."""


@dataclass(frozen=True)
class Account:
    """A wallet's linked GitHub account, as identity knows it."""

    address: str
    github_id: int
    login: str


def _unavailable(target: str, exc: grpc.aio.AioRpcError) -> ApiError:
    return ApiError(
        503,
        f"{target}_unavailable",
        f"{target} did not answer ({exc.code().name}: {exc.details()})",
        hint=f"retry shortly; `kdemo status` shows whether {target} is running",
    )


class CalcClient:
    """Quote and Summarize over one channel; amounts travel as decimal strings."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = calc_pb2_grpc.CalcStub(channel)

    async def quote(self, denomination: str, amount: int) -> dict[str, Any]:
        """`{base_units, fee, fee_bps, payout, decimals}` of one amount in whole units."""
        request = calc_pb2.QuoteRequest(denomination=denomination, amount=str(amount))
        try:
            reply = await self._stub.Quote(request, timeout=RPC_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                raise UnknownDenomination(exc.details() or "invalid argument") from exc
            raise _unavailable("calc", exc) from exc
        return {
            "base_units": reply.base_units,
            "fee": reply.fee,
            "fee_bps": reply.fee_bps,
            "payout": reply.payout,
            "decimals": reply.decimals,
        }

    async def quotes(
        self, items: list[tuple[str, int]]
    ) -> dict[tuple[str, int], dict[str, Any] | None]:
        """Quotes of every distinct (denomination, amount), concurrently; None where refused."""
        distinct = list(dict.fromkeys(items))

        async def one(item: tuple[str, int]) -> dict[str, Any] | None:
            try:
                return await self.quote(*item)
            except UnknownDenomination:
                return None

        answers = await asyncio.gather(*(one(item) for item in distinct))
        return dict(zip(distinct, answers, strict=True))

    async def summarize(self, items: list[tuple[str, int]]) -> list[dict[str, Any]]:
        """Totals per denomination, sorted by denomination, amounts as decimal strings."""
        if not items:
            return []
        request = calc_pb2.SummarizeRequest(
            items=[calc_pb2.Item(denomination=d, amount=str(a)) for d, a in items]
        )
        try:
            reply = await self._stub.Summarize(request, timeout=RPC_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                raise ApiError(
                    502,
                    "calc_refused",
                    f"calc refused the totals: {exc.details()}",
                    hint="a recorded bounty names a denomination calc does not support",
                ) from exc
            raise _unavailable("calc", exc) from exc
        return [
            {
                "denomination": total.denomination,
                "count": total.count,
                "amount": total.amount,
                "base_units": total.base_units,
                "fee": total.fee,
                "payout": total.payout,
                "decimals": total.decimals,
            }
            for total in reply.totals
        ]


class IdentityClient:
    """Lookup over one channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = identity_pb2_grpc.IdentityStub(channel)

    async def lookup(self, addresses: list[str]) -> tuple[dict[str, Account], list[str]]:
        """Accounts by lower-case address, and warnings.

        identity being down degrades the answer instead of failing it: every
        account is unknown (login and github_id null, verified false) and the
        warning says so, because the ledger itself is still right.
        """
        wanted = sorted({a.lower() for a in addresses})
        if not wanted:
            return {}, []
        try:
            reply = await self._stub.Lookup(
                identity_pb2.LookupRequest(addresses=wanted), timeout=RPC_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "identity lookup failed", extra={"code": exc.code().name, "details": exc.details()}
            )
            return {}, [
                f"identity did not answer ({exc.code().name}); funders' GitHub accounts are "
                "unknown and no bounty shows as verified in this answer"
            ]
        accounts = {
            account.address.lower(): Account(
                address=account.address.lower(), github_id=account.github_id, login=account.login
            )
            for account in reply.accounts
        }
        return accounts, []
