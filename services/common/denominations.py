"""The supported denominations and their decimals, read from one data file.

`services/common/data/denominations.json` is the only list: the bounty grammar
(github-app) and calc both read it through this module, so a denomination can
never be accepted by one and unknown to the other.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "CODE_PATTERN",
    "DATA_FILE",
    "MAX_DECIMALS",
    "RESERVED",
    "Denomination",
    "UnknownDenomination",
    "get",
    "load",
    "parse",
    "supported",
]

DATA_FILE: Final = "data/denominations.json"
"""Path of the data file inside the `services.common` package."""

CODE_PATTERN: Final = re.compile(r"[A-Z][A-Z0-9]{1,9}")
"""A denomination code as stored: 2-10 upper-case ASCII letters or digits, a letter first."""

RESERVED: Final = frozenset({"LINK"})
"""Codes that can never be a denomination (`$link:<code>$` links identities)."""

MAX_DECIMALS: Final = 36


@dataclass(frozen=True)
class Denomination:
    """One supported denomination: its code, how many decimals a whole unit has, its name."""

    code: str
    decimals: int
    name: str

    @property
    def unit(self) -> int:
        """Base units in one whole unit (10 ** decimals)."""
        return int(10**self.decimals)  # int ** int is typed Any (negative powers)


class UnknownDenomination(KeyError):
    """The code is not in the data file; the message names the supported ones."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code

    def __str__(self) -> str:
        return f"unknown denomination {self.code!r}; supported: {', '.join(supported())}"


def parse(raw: Mapping[str, Any], *, source: str = DATA_FILE) -> dict[str, Denomination]:
    """Validate the data file's content: `{"CODE": {"decimals": int, "name": str}}`.

    Raises ValueError naming the entry, the reason and the fix.
    """
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError(f"{source}: expected a non-empty JSON object of denominations")
    out: dict[str, Denomination] = {}
    for code, entry in raw.items():
        where = f"{source}: {code!r}"
        if not isinstance(code, str) or not CODE_PATTERN.fullmatch(code):
            raise ValueError(
                f"{where}: a code is 2-10 upper-case ASCII letters or digits starting "
                "with a letter; rename it"
            )
        if code in RESERVED:
            raise ValueError(f"{where}: {code} is reserved and cannot be a denomination")
        if not isinstance(entry, Mapping):
            raise ValueError(f'{where}: expected {{"decimals": int, "name": str}}')
        decimals = entry.get("decimals")
        # bool is an int subclass; `true` is not a number of decimals.
        if (
            not isinstance(decimals, int)
            or isinstance(decimals, bool)
            or not (0 <= decimals <= MAX_DECIMALS)
        ):
            raise ValueError(f"{where}: decimals must be an integer from 0 to {MAX_DECIMALS}")
        name = entry.get("name", code)
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}: name must be a non-empty string")
        out[code] = Denomination(code=code, decimals=decimals, name=name)
    return out


@functools.cache
def load() -> Mapping[str, Denomination]:
    """All supported denominations by code (read once from the packaged data file)."""
    text = resources.files("services.common").joinpath(DATA_FILE).read_text("utf-8")
    return MappingProxyType(parse(json.loads(text)))


def supported() -> tuple[str, ...]:
    """The supported codes, sorted."""
    return tuple(sorted(load()))


def get(code: str) -> Denomination:
    """The denomination for `code` (case-insensitive); raises UnknownDenomination."""
    found = load().get(code.upper())
    if found is None:
        raise UnknownDenomination(code.upper())
    return found
