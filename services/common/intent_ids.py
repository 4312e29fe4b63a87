"""Where a bounty was written, and the intent id derived from it.

Kept apart from `eip712` so that github-app, which only derives ids, does not
load the Ethereum libraries (tens of megabytes in every process that imports them).
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

__all__ = [
    "MAX_AMOUNT",
    "SOURCES",
    "UINT256_MAX",
    "TypedDataError",
    "check_repository",
    "check_source",
    "check_uint",
    "intent_id",
]

SOURCES: Final = frozenset({"issue_comment", "issue", "pull_request", "review_comment"})
"""Where a bounty was written: GitHub's kinds of text that can carry one."""
MAX_AMOUNT: Final = 10**18
"""The grammar's upper bound for an amount in whole units."""
UINT256_MAX: Final = 2**256 - 1

_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


class TypedDataError(ValueError):
    """Typed data (or a field meant for it) is malformed; the message names the field."""


def check_uint(field: str, value: object, *, minimum: int = 0, maximum: int = UINT256_MAX) -> int:
    # bool is an int subclass; True must never sign as 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypedDataError(
            f"{field}: expected an integer, got {type(value).__name__} {value!r}; "
            f"pass a whole number between {minimum} and {maximum}"
        )
    if not minimum <= value <= maximum:
        raise TypedDataError(
            f"{field}: {value} is out of range; pass a whole number between {minimum} and {maximum}"
        )
    return value


def check_source(value: object) -> str:
    if not isinstance(value, str) or value not in SOURCES:
        raise TypedDataError(
            f"source: {value!r} is not a bounty source; use one of {', '.join(sorted(SOURCES))}"
        )
    return value


def check_repository(value: object) -> str:
    if not isinstance(value, str) or not _REPOSITORY.fullmatch(value):
        raise TypedDataError(
            f"repository: {value!r} is not a GitHub full name; pass it as OWNER/NAME"
        )
    return value.lower()


def intent_id(repository: str, number: int, source: str, source_id: int, match_index: int) -> str:
    """The intent id: 0x + sha256 of the bounty's place, so a redelivery finds the same intent."""
    repo = check_repository(repository)
    check_uint("number", number, minimum=1)
    src = check_source(source)
    check_uint("source_id", source_id, minimum=1)
    check_uint("match_index", match_index)
    key = f"{repo}|{number}|{src}|{source_id}|{match_index}"
    return "0x" + hashlib.sha256(key.encode()).hexdigest()
