"""The one denominations data file, read by the grammar (github-app) and calc alike."""

from __future__ import annotations

import json
from importlib import resources
from types import MappingProxyType
from typing import Any

import pytest

from services.calc import arithmetic
from services.common import denominations, grammar
from services.common.denominations import Denomination, UnknownDenomination


def _raw() -> dict[str, Any]:
    text = resources.files("services.common").joinpath(denominations.DATA_FILE).read_text()
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def test_file_lists_the_expected_denominations() -> None:
    """The data file holds the demo's denominations with their on-chain decimals."""
    loaded = denominations.load()
    assert loaded["USDC"] == Denomination("USDC", 6, "USD Coin")
    assert {code: d.decimals for code, d in loaded.items()} == {
        "DAI": 18,
        "ETH": 18,
        "EURC": 6,
        "USDC": 6,
        "USDT": 6,
        "WBTC": 8,
        "WETH": 18,
    }


def test_link_is_reserved_and_not_in_the_file() -> None:
    """`LINK` is reserved for identity links and therefore absent from the data file."""
    assert "LINK" in denominations.RESERVED
    assert "LINK" not in _raw()
    with pytest.raises(UnknownDenomination):
        denominations.get("link")


def test_get_is_case_insensitive_and_names_the_supported_ones() -> None:
    """get() accepts any case; an unknown code's error lists every supported code."""
    assert denominations.get("usdc").decimals == 6
    with pytest.raises(UnknownDenomination) as caught:
        denominations.get("xyz")
    supported = ", ".join(denominations.supported())
    assert str(caught.value) == f"unknown denomination 'XYZ'; supported: {supported}"


def test_grammar_and_calc_read_the_same_file() -> None:
    """Every code in the file is accepted by the grammar and quoted by calc with its decimals."""
    for code, entry in _raw().items():
        match = grammar.find_bounties(f"${code.lower()}:2$").matches
        assert [(m.denomination, m.amount) for m in match] == [(code, 2)]
        quote = arithmetic.quote(code, "2", fee_bps=0)
        assert quote.decimals == entry["decimals"]
        assert quote.base_units == 2 * 10 ** entry["decimals"]


def test_grammar_and_calc_keep_no_list_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swapping what denominations.load() returns changes what both the grammar and calc
    accept: neither keeps a copy of the list."""
    other = MappingProxyType({"ABC": Denomination("ABC", 3, "Alphabet")})
    monkeypatch.setattr(denominations, "load", lambda: other)
    result = grammar.find_bounties("$abc:2$ $USDC:2$")
    assert [(m.denomination, m.amount) for m in result.matches] == [("ABC", 2)]
    assert "supported: ABC" in result.rejected[0].reason
    assert arithmetic.quote("abc", "2", fee_bps=0).base_units == 2000
    with pytest.raises(arithmetic.InvalidInput, match="supported: ABC"):
        arithmetic.quote("USDC", "2", fee_bps=0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "non-empty JSON object"),
        ({"usdc": {"decimals": 6}}, "upper-case"),
        ({"1INCH": {"decimals": 18}}, "starting with a letter"),
        ({"LINK": {"decimals": 18}}, "reserved"),
        ({"USDC": 6}, "expected"),
        ({"USDC": {"decimals": -1}}, "decimals must be an integer"),
        ({"USDC": {"decimals": True}}, "decimals must be an integer"),
        ({"USDC": {"decimals": 6, "name": ""}}, "name must be"),
    ],
)
def test_bad_data_is_refused_with_the_entry_named(raw: dict[str, Any], message: str) -> None:
    """A malformed data file fails loudly, naming the entry and what to fix."""
    with pytest.raises(ValueError, match=message):
        denominations.parse(raw, source="test.json")
