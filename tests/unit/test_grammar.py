"""The bounty grammar, as DESIGN.md states it ("Bounty grammar")."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common import denominations
from services.common.grammar import (
    MAX_AMOUNT,
    MAX_BOUNTIES,
    MAX_REJECTED,
    BountyMatch,
    Rejection,
    describe_for_reply,
    describe_rejection_for_reply,
    find_bounties,
)

CODE = "abcdefghijklmnopqrstuvwxyzab"  # 28 lower-case letters


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("$USDC:50$", [("USDC", 50)]),
        ("Fixing this is worth $usdc:50$ to me", [("USDC", 50)]),
        ("$Dai:7$ and $WETH:1$", [("DAI", 7), ("WETH", 1)]),
        ("$USDC:1000000000000000000$", [("USDC", MAX_AMOUNT)]),
        ("line one\n$ETH:3$\nline three", [("ETH", 3)]),
        ("$USDC:5$$DAI:6$", [("USDC", 5), ("DAI", 6)]),
        ("a`b $USDC:5$", [("USDC", 5)]),
        ("`unclosed\n\n$USDC:5$ `", [("USDC", 5)]),
        ("``` not a fence ``` $USDC:5$", [("USDC", 5)]),
        ("    > quoted after spaces\n$USDC:8$", [("USDC", 8)]),
    ],
)
def test_valid_bounties_are_found_in_order(body: str, expected: list[tuple[str, int]]) -> None:
    """Valid patterns are found in order of appearance, denomination upper-cased."""
    result = find_bounties(body)
    assert [(m.denomination, m.amount) for m in result.matches] == expected
    assert [m.index for m in result.matches] == list(range(len(expected)))


def test_match_keeps_the_text_as_written() -> None:
    """A match carries its index and the exact text the author wrote."""
    result = find_bounties("pay $usdc:50$ please")
    assert result.matches == [BountyMatch("USDC", 50, 0, "$usdc:50$")]
    assert result.rejected == []


@pytest.mark.parametrize(
    "body",
    [
        "```\n$USDC:50$\n```",
        "~~~python\n$USDC:50$\n~~~",
        "   ````\n```\n$USDC:50$\n````",
        "```\nnever closed\n$USDC:50$",
        "`$USDC:50$`",
        "``a ` $USDC:50$ b``",
        "see `x\n$USDC:50$` here",
        "> $USDC:50$",
        "   > quoted $USDC:50$",
        ">> nested $USDC:50$",
        "> ```\n> $USDC:50$",
    ],
)
def test_code_and_quotes_never_count(body: str) -> None:
    """Patterns in fenced blocks, inline code or quoted lines are neither matched nor rejected."""
    result = find_bounties(body)
    assert result.matches == []
    assert result.rejected == []


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        ("$USDC:050$", "leading zeros"),
        ("$USDC:-5$", "no sign"),
        ("$USDC:+5$", "no sign"),
        ("$USDC:1.5$", "decimal point"),
        ("$USDC:1,000$", "separators"),
        ("$USDC:1_000$", "separators"),
        ("$USDC:1000000000000000001$", "at most 10^18"),
        ("$USDC:0$", "positive"),
        ("$USDC:fifty$", "decimal digits"),
        ("$USDC:\uff15$", "decimal digits"),  # a full-width digit five
        ("$U:5$", "too short"),
        ("$ABCDEFGHIJK:5$", "too long"),
        ("$1INCH:5$", "start with a letter"),
        ("$US-DC:5$", "only ASCII letters and digits"),
        ("$FOO:5$", "unknown denomination FOO; supported: DAI, ETH"),
        ("$LINK:5$", "LINK is reserved"),
        ("$link:abc$", "LINK is reserved"),
    ],
)
def test_near_misses_are_rejected_with_a_reason(body: str, reason_part: str) -> None:
    """Text shaped like a bounty that breaks a rule is rejected, saying which rule."""
    result = find_bounties(f"bounty: {body} thanks")
    assert result.matches == []
    assert [r.text for r in result.rejected] == [body]
    assert reason_part in result.rejected[0].reason


def test_unknown_denomination_names_every_supported_one() -> None:
    """The unknown-denomination reason lists the supported codes from the data file."""
    (rejection,) = find_bounties("$XYZ:5$").rejected
    for code in denominations.supported():
        assert code in rejection.reason


def test_more_than_five_are_rejected() -> None:
    """Only the first five valid bounties count; later ones are rejected, invalid ones
    do not use up an index."""
    body = "$USDC:0$ " + " ".join(f"$USDC:{n}$" for n in range(1, 8))
    result = find_bounties(body)
    assert [m.amount for m in result.matches] == [1, 2, 3, 4, 5]
    assert [m.index for m in result.matches] == [0, 1, 2, 3, 4]
    assert [r.text for r in result.rejected] == ["$USDC:0$", "$USDC:6$", "$USDC:7$"]
    assert "at most 5" in result.rejected[-1].reason


def test_rejections_are_bounded() -> None:
    """A comment full of near misses reports at most MAX_REJECTED of them, and still finds
    the valid bounties after them."""
    body = "$USDC:0$ " * 100 + "$USDC:1$"
    result = find_bounties(body)
    assert len(result.rejected) == MAX_REJECTED
    assert [m.amount for m in result.matches] == [1]


@pytest.mark.parametrize(
    ("body", "links"),
    [
        (f"$link:{CODE}$", [CODE]),
        (f"$LiNk:{CODE}$ and again $link:{CODE}$", [CODE]),
        (f"$link:{CODE}$ $USDC:5$", [CODE]),
        (f"`$link:{CODE}$`", []),
        (f"$link:{CODE.upper()}$", []),
        (f"$link:{CODE[:-1]}$", []),
    ],
)
def test_links_are_found_before_bounties(body: str, links: list[str]) -> None:
    """`$link:<28 lower-case letters>$` is a link (the word case-insensitive), never a bounty."""
    result = find_bounties(body)
    assert result.links == links
    assert all(m.denomination != "LINK" for m in result.matches)


def test_link_text_is_not_reported_as_a_rejected_bounty() -> None:
    """A valid link is not also reported as a rejected `LINK` bounty."""
    result = find_bounties(f"$link:{CODE}$")
    assert result.rejected == []
    assert result.matches == []


@pytest.mark.parametrize("amount", [1, 50, MAX_AMOUNT])
def test_reply_description_never_matches_again(amount: int) -> None:
    """describe_for_reply says "50 USDC", which the grammar never finds again."""
    match = find_bounties(f"$USDC:{amount}$").matches[0]
    text = describe_for_reply(match)
    assert text == f"{amount} USDC"
    again = find_bounties(text)
    assert (again.matches, again.rejected) == ([], [])


def test_rejection_description_never_matches_again() -> None:
    """A rejected (even otherwise valid, sixth) pattern is quoted as inline code in replies."""
    rejected = find_bounties(" ".join(f"$USDC:{n}$" for n in range(1, 7))).rejected
    assert len(rejected) == 1
    reply = describe_rejection_for_reply(rejected[0])
    assert "$USDC:6$" in reply
    assert find_bounties(reply).matches == []
    assert find_bounties(describe_rejection_for_reply(Rejection("`$USDC:1$", "x"))).matches == []


# --- properties ---------------------------------------------------------------------------

_codes = st.sampled_from(sorted(denominations.load()))
_cases = st.sampled_from([str.upper, str.lower, str.title])
_amounts = st.integers(min_value=1, max_value=MAX_AMOUNT)
# Plain prose: no `$`, backticks, tildes, quote marks or line breaks that could change
# the Markdown structure around a pattern.
_prose = st.text(
    alphabet=st.characters(blacklist_characters="$`~>\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
    max_size=40,
)


@given(code=_codes, case=_cases, amount=_amounts, before=_prose, after=_prose)
def test_property_valid_pattern_is_found(
    code: str, case: Callable[[str], str], amount: int, before: str, after: str
) -> None:
    """Any valid `$D:N$` between spaces in plain prose is found with its value."""
    body = f"{before} ${case(code)}:{amount}$ {after}"
    result = find_bounties(body)
    assert [(m.denomination, m.amount) for m in result.matches] == [(code, amount)]


@given(
    code=_codes,
    amount=_amounts,
    inside=_prose,
    wrap=st.sampled_from(["```\n{}\n```", "~~~~\n{}\n~~~~", "`{}`", "``{}``", "> {}", "  >{}"]),
)
def test_property_code_and_quotes_hide_patterns(
    code: str, amount: int, inside: str, wrap: str
) -> None:
    """A valid pattern inside code or a quoted line is never found."""
    body = wrap.format(f"{inside} ${code}:{amount}$ {inside}")
    result = find_bounties(f"intro\n\n{body}\n\noutro")
    assert result.matches == []


@given(st.text(alphabet=st.characters(blacklist_characters="$")))
def test_property_no_dollar_no_match(body: str) -> None:
    """Text without `$` never yields a match, a rejection or a link."""
    result = find_bounties(body)
    assert (result.matches, result.rejected, result.links) == ([], [], [])


@given(st.text())
def test_property_arbitrary_text_parses(body: str) -> None:
    """Parsing never raises and never returns more than five matches."""
    result = find_bounties(body)
    assert len(result.matches) <= MAX_BOUNTIES


@given(st.lists(st.tuples(_codes, _amounts), min_size=0, max_size=12))
def test_property_never_more_than_five(pairs: list[tuple[str, int]]) -> None:
    """However many valid patterns a comment has, at most five count, the rest are rejected."""
    body = " ".join(f"${code}:{amount}$" for code, amount in pairs)
    result = find_bounties(body)
    assert len(result.matches) == min(len(pairs), MAX_BOUNTIES)
    assert len(result.rejected) == max(0, len(pairs) - MAX_BOUNTIES)
