"""The bounty grammar: find `$<denomination>:<amount>$` and `$link:<code>$` in a comment.

Rules (DESIGN.md, "Bounty grammar"):

- denomination: 2-10 ASCII letters or digits starting with a letter, case-insensitive,
  stored upper-case, one of the supported denominations (`denominations.json`);
  `LINK` is reserved;
- amount: a positive decimal integer in whole units, no sign, separators or leading
  zeros, at most 10^18;
- nothing inside fenced code blocks (``` or ~~~), inline code or quoted (`>`) lines
  counts; at most 5 bounties per comment;
- `$link:<code>$` (code: 28 lower-case letters) is found first and never counts as a
  bounty.

Text that looks like a bounty but breaks a rule is reported in `rejected` with the
reason, so the author can be told what to fix.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Final

from services.common import denominations

__all__ = [
    "LINK_CODE_LENGTH",
    "MAX_AMOUNT",
    "MAX_BOUNTIES",
    "MAX_REJECTED",
    "BountyMatch",
    "ParseResult",
    "Rejection",
    "amount_problem",
    "describe_for_reply",
    "describe_rejection_for_reply",
    "find_bounties",
]

MAX_BOUNTIES: Final = 5
MAX_AMOUNT: Final = 10**18
MAX_REJECTED: Final = 20
"""Rejections reported per comment: enough to explain, bounded so spam cannot bloat a reply."""
LINK_CODE_LENGTH: Final = 28

_LINK = re.compile(rf"\$(?i:link):([a-z]{{{LINK_CODE_LENGTH}}})\$")
# Anything shaped `$x:y$` without spaces is a candidate; the rules then accept or
# reject it with a reason. Both parts exclude `$` and `:` so candidates never overlap.
_CANDIDATE = re.compile(r"\$([^\s$:]+):([^\s$:]+)\$")
_DENOMINATION_CHARS = re.compile(r"[A-Za-z0-9]+", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_QUOTED = re.compile(r"[ \t]*>")
_BACKTICKS = re.compile(r"`+")
_BLANK_LINE = re.compile(r"(?:\r\n|\r|\n)[ \t]*(?=\r\n|\r|\n|$)")
_MAX_TEXT = 80
"""Rejected text is cut to this length, so a huge candidate cannot bloat a reply."""


@dataclass(frozen=True)
class BountyMatch:
    """One valid bounty: upper-case denomination, whole-unit amount, 0-based index
    among the valid ones in order of appearance, and the text as written."""

    denomination: str
    amount: int
    index: int
    text: str


@dataclass(frozen=True)
class Rejection:
    """Text that looked like a bounty but is not one, and why."""

    text: str
    reason: str


@dataclass(frozen=True)
class ParseResult:
    matches: list[BountyMatch] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    """Near misses in order of appearance (at most MAX_REJECTED are reported)."""
    links: list[str] = field(default_factory=list)
    """Link codes from `$link:<code>$`, in order of appearance, without repeats."""


def find_bounties(body: str) -> ParseResult:
    """Parse a comment body; never raises on any text."""
    text = _mask_code_and_quotes(body)
    links: dict[str, None] = {}  # ordered, without repeats
    chars = list(text)
    for link in _LINK.finditer(text):
        links.setdefault(link.group(1))
        chars[link.start() : link.end()] = " " * (link.end() - link.start())
    text = "".join(chars)

    result = ParseResult(links=list(links))
    for candidate in _CANDIDATE.finditer(text):
        written = body[candidate.start() : candidate.end()]
        reasons = _problems(candidate.group(1), candidate.group(2))
        if not reasons and len(result.matches) < MAX_BOUNTIES:
            result.matches.append(
                BountyMatch(
                    denomination=candidate.group(1).upper(),
                    amount=int(candidate.group(2)),
                    index=len(result.matches),
                    text=written,
                )
            )
        elif len(result.rejected) < MAX_REJECTED:
            reason = "; ".join(reasons) or (
                f"at most {MAX_BOUNTIES} bounties count per comment; "
                "put the others in a new comment"
            )
            result.rejected.append(Rejection(_shorten(written), reason))
        elif len(result.matches) >= MAX_BOUNTIES:
            break  # nothing further can be reported
    return result


def describe_for_reply(match: BountyMatch) -> str:
    """The bounty in words, e.g. "50 USDC": never a pattern that would match again."""
    return f"{match.amount} {match.denomination}"


def describe_rejection_for_reply(rejection: Rejection) -> str:
    """The rejected text as inline code plus the reason: safe to post, never matches."""
    return f"{_inline_code(rejection.text)}: {rejection.reason}"


def amount_problem(amount: str) -> str | None:
    """Why `amount` is not a valid whole-unit amount, or None when it is."""
    if amount[:1] in ("+", "-"):
        return "the amount takes no sign; write a positive whole number such as 50"
    if "." in amount:
        return "the amount is in whole units, without a decimal point; write e.g. 50"
    if any(sep in amount for sep in ",_' "):
        return "the amount takes no separators; write e.g. 1000, not 1,000"
    if not _DIGITS.fullmatch(amount):
        return "the amount must be a positive whole number in decimal digits, e.g. 50"
    if len(amount) > 1 and amount.startswith("0"):
        return "the amount takes no leading zeros; write e.g. 50, not 050"
    if int(amount) == 0:
        return "the amount must be positive"
    if int(amount) > MAX_AMOUNT:
        return "the amount may be at most 10^18 (1000000000000000000)"
    return None


def _problems(denomination: str, amount: str) -> list[str]:
    problems: list[str] = []
    code = denomination.upper()
    if not _DENOMINATION_CHARS.fullmatch(denomination):
        problems.append("the denomination may contain only ASCII letters and digits")
    elif not denomination[0].isalpha():
        problems.append("the denomination must start with a letter")
    elif len(denomination) < 2:
        problems.append("the denomination is too short (2-10 letters or digits)")
    elif len(denomination) > 10:
        problems.append("the denomination is too long (2-10 letters or digits)")
    elif code in denominations.RESERVED:
        # Whatever follows, this was meant as a link: say only how to write one.
        return [
            f"{code} is reserved: identity links are written `$link:<code>$` with the "
            f"{LINK_CODE_LENGTH}-letter lower-case code from the link page"
        ]
    elif code not in denominations.load():
        problems.append(
            f"unknown denomination {code}; supported: {', '.join(denominations.supported())}"
        )
    problem = amount_problem(amount)
    if problem is not None:
        problems.append(problem)
    return problems


def _inline_code(text: str) -> str:
    # A fence longer than any backtick run inside keeps the span closed (CommonMark).
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _mask_code_and_quotes(body: str) -> str:
    """`body` with fenced blocks, quoted lines and inline code blanked out.

    Blanking keeps every offset, so matches can be sliced from the original body;
    line breaks are kept so inline code never spans a quoted line or a blank line.
    """
    out: list[str] = []
    fence: str | None = None  # the opening fence while inside a fenced block
    for line_match in _LINE.finditer(body):
        line = line_match.group()
        if not line:
            break
        content = line.rstrip("\r\n")
        if fence is not None:
            closing = content.strip(" ")
            if (
                len(content) - len(content.lstrip(" ")) <= 3
                and closing
                and set(closing) == {fence[0]}
                and len(closing) >= len(fence)
            ):
                fence = None
            out.append(_blank(line))
            continue
        opening = _FENCE_OPEN.fullmatch(content)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence = opening.group(1)
            out.append(_blank(line))
        elif _QUOTED.match(content):
            out.append(_blank(line))
        else:
            out.append(line)
    return _mask_inline_code("".join(out))


def _mask_inline_code(text: str) -> str:
    """Blank out code spans: a run of n backticks up to the next run of exactly n,
    within one paragraph. An unmatched run is literal text."""
    runs = list(_BACKTICKS.finditer(text))
    if not runs:
        return text
    by_length: dict[int, list[int]] = {}
    for i, run in enumerate(runs):
        by_length.setdefault(len(run.group()), []).append(i)
    blank_lines = [m.start() for m in _BLANK_LINE.finditer(text)]
    chars = list(text)
    i = 0
    while i < len(runs):
        run = runs[i]
        same = by_length[len(run.group())]
        after = bisect.bisect_right(same, i)
        if after < len(same):
            closer = runs[same[after]]
            paragraph_end = bisect.bisect_left(blank_lines, run.end())
            if paragraph_end == len(blank_lines) or blank_lines[paragraph_end] >= closer.start():
                chars[run.start() : closer.end()] = _blank(text[run.start() : closer.end()])
                i = same[after] + 1
                continue
        i += 1
    return "".join(chars)


def _blank(text: str) -> str:
    return "".join(c if c in "\r\n" else " " for c in text)
