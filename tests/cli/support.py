"""Test support: a real HTTP server on 127.0.0.1 that plays a service's part, and samples."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.common.eip712 import bounty_typed_data


@dataclass
class Request:
    """One request the server received, with the body exactly as it arrived."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, Any]
Route = Callable[[Request], Answer]


@dataclass
class LocalServer:
    """Routes are `"METHOD /path"` (a trailing `*` matches any rest) → handler returning
    (status, JSON body)."""

    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def route(self, key: str) -> Callable[[Route], Route]:
        def register(handler: Route) -> Route:
            self.routes[key] = handler
            return handler

        return register

    def find(self, method: str, path: str) -> Route | None:
        for key, handler in self.routes.items():
            m, _, pattern = key.partition(" ")
            if m != method:
                continue
            if pattern == path or (pattern.endswith("*") and path.startswith(pattern[:-1])):
                return handler
        return None


BOUNTY_TYPED: dict[str, Any] = bounty_typed_data(
    intent_id="0x" + "ab" * 32,
    repository="octo/hello",
    number=7,
    source="issue_comment",
    source_id=123456789012,
    denomination="USDC",
    amount=50,
    deadline=1900000000,
    chain_id=1,
    salt="0x" + "5a" * 32,
)
"""An EIP-712 `Bounty` document as frontend sends it (every uint256 a decimal string)."""
