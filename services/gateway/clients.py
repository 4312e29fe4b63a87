"""gateway's gRPC clients: calc (amounts, totals) and identity (who a wallet is).

Failures become `ApiError`s the API can answer as they are: calc unreachable is a
503 (no answer is better than one without amounts); a denomination calc rejects
leaves that bounty without a quote. identity unreachable is *not* an error for
the API: the answer degrades to unknown accounts plus a warning (see `lookup`).

Both servers refuse more than a fixed number of items per call, so longer lists
(an issue with many bounties, a page with many signers) go in batches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import grpc

from services.common.grpc_service import MAX_LOOKUP_ADDRESSES, MAX_SUMMARIZE_ITEMS
from services.common.httpapp import ApiError
from services.protos import calc_pb2, calc_pb2_grpc, identity_pb2, identity_pb2_grpc

__all__ = ["Account", "CalcClient", "IdentityClient", "UnknownDenomination"]

log = logging.getLogger(__name__)
RPC_TIMEOUT_S: Final = 3.0
_T = TypeVar("_T")
_SUMMED: Final = ("count", "amount", "base_units", "fee", "payout")


def batches(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    """`items` in consecutive slices of at most `size`."""
    return [items[start : start + size] for start in range(0, len(items), size)]


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
        replies = await asyncio.gather(
            *(self._summarize(batch) for batch in batches(items, MAX_SUMMARIZE_ITEMS))
        )
        # every figure of a total is a sum over its bounties, so batches add up exactly
        sums: dict[str, dict[str, int]] = {}
        for total in (t for reply in replies for t in reply.totals):
            into = sums.setdefault(total.denomination, dict.fromkeys(_SUMMED, 0))
            for name in _SUMMED:
                into[name] += int(getattr(total, name))
            into["decimals"] = total.decimals
        return [
            {
                "denomination": code,
                "count": figures["count"],
                "amount": str(figures["amount"]),
                "base_units": str(figures["base_units"]),
                "fee": str(figures["fee"]),
                "payout": str(figures["payout"]),
                "decimals": figures["decimals"],
            }
            for code, figures in sorted(sums.items())
        ]

    async def _summarize(self, items: Sequence[tuple[str, int]]) -> calc_pb2.SummarizeReply:
        request = calc_pb2.SummarizeRequest(
            items=[calc_pb2.Item(denomination=d, amount=str(a)) for d, a in items]
        )
        try:
            return await self._stub.Summarize(request, timeout=RPC_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                raise ApiError(
                    502,
                    "calc_refused",
                    f"calc refused the totals: {exc.details()}",
                    hint="a recorded bounty names a denomination calc does not support",
                ) from exc
            raise _unavailable("calc", exc) from exc


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
        try:
            replies = await asyncio.gather(
                *(
                    self._stub.Lookup(
                        identity_pb2.LookupRequest(addresses=batch), timeout=RPC_TIMEOUT_S
                    )
                    for batch in batches(wanted, MAX_LOOKUP_ADDRESSES)
                )
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
            for reply in replies
            for account in reply.accounts
        }
        return accounts, []
