"""Exact integer arithmetic on bounty amounts: no floats anywhere.

base_units = amount * 10^decimals; fee = base_units * fee_bps // 10000 (rounded
down, so the payee never receives less than the exact share); payout =
base_units - fee. Totals add up the per-item figures, so a total's payout is
always the sum of the payouts shown for its bounties.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.common import denominations
from services.common.grammar import amount_problem

__all__ = ["BPS_DENOMINATOR", "InvalidInput", "Quote", "Total", "quote", "summarize"]

BPS_DENOMINATOR = 10_000


class InvalidInput(ValueError):
    """A request field that cannot be computed with: which field, why, how to fix it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Quote:
    denomination: str
    amount: int
    decimals: int
    base_units: int
    fee_bps: int
    fee: int
    payout: int


@dataclass(frozen=True)
class Total:
    denomination: str
    decimals: int
    count: int
    amount: int
    base_units: int
    fee: int
    payout: int


def quote(denomination: str, amount: str, *, fee_bps: int, field_prefix: str = "") -> Quote:
    """Quote one bounty; raises InvalidInput naming `denomination` or `amount`."""
    if not 0 <= fee_bps <= BPS_DENOMINATOR:
        raise ValueError(f"fee_bps must be within 0..{BPS_DENOMINATOR}, got {fee_bps}")
    if not denomination:
        raise InvalidInput(
            f"{field_prefix}denomination",
            f"required; one of {', '.join(denominations.supported())}",
        )
    try:
        found = denominations.get(denomination)
    except denominations.UnknownDenomination as error:
        raise InvalidInput(f"{field_prefix}denomination", str(error)) from None
    if not amount:
        raise InvalidInput(f"{field_prefix}amount", "required: whole units, e.g. 50")
    problem = amount_problem(amount)
    if problem is not None:
        raise InvalidInput(f"{field_prefix}amount", f"{amount!r}: {problem}")
    whole = int(amount)
    base_units = whole * found.unit
    fee = base_units * fee_bps // BPS_DENOMINATOR
    return Quote(
        denomination=found.code,
        amount=whole,
        decimals=found.decimals,
        base_units=base_units,
        fee_bps=fee_bps,
        fee=fee,
        payout=base_units - fee,
    )


def summarize(items: Iterable[tuple[str, str]], *, fee_bps: int) -> list[Total]:
    """Totals per denomination of (denomination, amount) items, sorted by denomination.

    Raises InvalidInput naming the first bad item as `items[i].<field>`.
    """
    sums: dict[str, list[int]] = {}
    decimals: dict[str, int] = {}
    for i, (denomination, amount) in enumerate(items):
        q = quote(denomination, amount, fee_bps=fee_bps, field_prefix=f"items[{i}].")
        decimals[q.denomination] = q.decimals
        running = sums.setdefault(q.denomination, [0, 0, 0, 0])
        running[0] += 1
        running[1] += q.amount
        running[2] += q.base_units
        running[3] += q.fee
    return [
        Total(
            denomination=code,
            decimals=decimals[code],
            count=count,
            amount=amount,
            base_units=base_units,
            fee=fee,
            payout=base_units - fee,
        )
        for code, (count, amount, base_units, fee) in sorted(sums.items())
    ]
