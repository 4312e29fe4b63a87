"""eth-account, imported with Python's recursion limit put back afterwards.

py_ecc (pulled in by eth-account) raises the limit to 100000 when imported. With
that limit, `json.loads` of a deeply nested request body overflows the C stack
and kills the whole service instead of raising RecursionError (→ 400).
"""

from __future__ import annotations

import sys

_LIMIT = sys.getrecursionlimit()

from eth_account import Account  # noqa: E402  (must follow the saved limit)
from eth_account.messages import (  # noqa: E402
    SignableMessage,
    encode_defunct,
    encode_typed_data,
)

sys.setrecursionlimit(_LIMIT)

__all__ = ["Account", "SignableMessage", "encode_defunct", "encode_typed_data"]
