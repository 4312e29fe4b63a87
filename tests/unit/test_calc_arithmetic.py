"""calc's exact integer arithmetic: base units, fee and payout, and totals."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.calc.arithmetic import InvalidInput, Quote, Total, quote, summarize
from services.common import denominations
from services.common.denominations import Denomination
from services.common.grammar import MAX_AMOUNT


@pytest.mark.parametrize(
    ("denomination", "amount", "fee_bps", "expected"),
    [
        ("USDC", "50", 250, Quote("USDC", 50, 6, 50_000_000, 250, 1_250_000, 48_750_000)),
        ("usdc", "1", 0, Quote("USDC", 1, 6, 1_000_000, 0, 0, 1_000_000)),
        ("WBTC", "3", 10_000, Quote("WBTC", 3, 8, 300_000_000, 10_000, 300_000_000, 0)),
        (
            "DAI",
            str(MAX_AMOUNT),
            250,
            Quote("DAI", MAX_AMOUNT, 18, 10**36, 250, 25 * 10**33, 10**36 - 25 * 10**33),
        ),
        ("ETH", "7", 3, Quote("ETH", 7, 18, 7 * 10**18, 3, 21 * 10**14, 7 * 10**18 - 21 * 10**14)),
    ],
)
def test_quote(denomination: str, amount: str, fee_bps: int, expected: Quote) -> None:
    """A quote is amount x 10^decimals, fee = base x bps // 10000, payout = base - fee."""
    assert quote(denomination, amount, fee_bps=fee_bps) == expected


def test_fee_rounds_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fee that is not a whole number of base units is floored, never rounded up."""
    whole = MappingProxyType({"ABC": Denomination("ABC", 0, "whole units only")})
    monkeypatch.setattr(denominations, "load", lambda: whole)
    # 399 x 250 / 10000 = 9.975 -> 9; 1 x 250 / 10000 = 0.025 -> 0.
    assert quote("ABC", "399", fee_bps=250) == Quote("ABC", 399, 0, 399, 250, 9, 390)
    assert quote("ABC", "1", fee_bps=250) == Quote("ABC", 1, 0, 1, 250, 0, 1)


@pytest.mark.parametrize(
    ("denomination", "amount", "field", "reason_part"),
    [
        ("FOO", "5", "denomination", "unknown denomination 'FOO'; supported: DAI"),
        ("LINK", "5", "denomination", "unknown denomination 'LINK'"),
        ("", "5", "denomination", "required"),
        ("USDC", "", "amount", "required"),
        ("USDC", "0", "amount", "positive"),
        ("USDC", "-1", "amount", "no sign"),
        ("USDC", "1.5", "amount", "decimal point"),
        ("USDC", "007", "amount", "leading zeros"),
        ("USDC", "1,000", "amount", "separators"),
        ("USDC", str(MAX_AMOUNT + 1), "amount", "at most 10^18"),
        ("USDC", "ten", "amount", "decimal digits"),
    ],
)
def test_bad_input_names_the_field(
    denomination: str, amount: str, field: str, reason_part: str
) -> None:
    """Unknown denominations and malformed amounts are refused, naming the field and why."""
    with pytest.raises(InvalidInput) as caught:
        quote(denomination, amount, fee_bps=250)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert reason_part in caught.value.reason


def test_summarize_totals_per_denomination_sorted() -> None:
    """Totals group by upper-case denomination, sorted, each adding up the items' figures."""
    totals = summarize([("USDC", "50"), ("dai", "1"), ("usdc", "25"), ("WBTC", "2")], fee_bps=250)
    assert totals == [
        Total("DAI", 18, 1, 1, 10**18, 25 * 10**15, 10**18 - 25 * 10**15),
        Total("USDC", 6, 2, 75, 75_000_000, 1_875_000, 73_125_000),
        Total("WBTC", 8, 1, 2, 200_000_000, 5_000_000, 195_000_000),
    ]


def test_summarize_nothing_is_no_totals() -> None:
    """An empty list has no totals."""
    assert summarize([], fee_bps=250) == []


def test_summarize_names_the_bad_item() -> None:
    """A bad item is named by its position: items[i].field."""
    with pytest.raises(InvalidInput) as caught:
        summarize([("USDC", "1"), ("USDC", "01")], fee_bps=250)
    assert caught.value.field == "items[1].amount"


def test_fee_bps_out_of_range_is_a_programming_error() -> None:
    """A fee outside 0..10000 basis points is refused (settings validate it first)."""
    with pytest.raises(ValueError, match="fee_bps"):
        quote("USDC", "1", fee_bps=10_001)


@given(
    items=st.lists(
        st.tuples(
            st.sampled_from(sorted(denominations.load())),
            st.integers(min_value=1, max_value=MAX_AMOUNT),
        ),
        max_size=20,
    ),
    fee_bps=st.integers(min_value=0, max_value=10_000),
)
def test_property_totals_add_up(items: list[tuple[str, int]], fee_bps: int) -> None:
    """Each total equals the sum of its items' quotes, and fee + payout = base units."""
    totals = summarize([(d, str(a)) for d, a in items], fee_bps=fee_bps)
    for total in totals:
        quotes = [quote(d, str(a), fee_bps=fee_bps) for d, a in items if d == total.denomination]
        assert total.count == len(quotes)
        assert total.amount == sum(q.amount for q in quotes)
        assert total.base_units == sum(q.base_units for q in quotes)
        assert total.payout == sum(q.payout for q in quotes)
        assert total.fee + total.payout == total.base_units
        assert 0 <= total.fee <= total.base_units
    assert [t.denomination for t in totals] == sorted({d for d, _ in items})
