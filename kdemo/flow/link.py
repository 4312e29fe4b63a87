"""The identity-linking client: both halves of a link, as a user would do them.

1. the wallet half: ask frontend for the SIWE message naming the login, sign it
   (EIP-191) and post it; frontend answers with a one-time code;
2. the GitHub half: comment `$link:<code>$` as that login (a signed webhook);
3. wait for identity's verdict through frontend (`GET /api/links/<code>`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

from kdemo.errors import KdemoError
from kdemo.flow import LINK_TIMEOUT
from kdemo.flow.http import json_answer
from kdemo.flow.payloads import validate_login
from kdemo.flow.wallet import Wallet
from kdemo.flow.webhook import WebhookResult, simulate_comment

__all__ = [
    "LINK_TIMEOUT",
    "LinkOutcome",
    "LinkRequest",
    "LinkState",
    "LinkStatus",
    "get_link_status",
    "link_identity",
    "request_link",
    "wait_for_link",
]

LinkState = Literal["pending", "linked", "refused"]
_STATES: tuple[LinkState, ...] = ("pending", "linked", "refused")


@dataclass(frozen=True)
class LinkRequest:
    """The wallet half: the signed SIWE message and the code frontend issued for it."""

    code: str
    expires: str
    message: str
    signature: str
    address: str


@dataclass(frozen=True)
class LinkStatus:
    code: str
    state: LinkState
    reason: str = ""
    login: str | None = None
    address: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "state": self.state,
            "reason": self.reason or None,
            "login": self.login,
            "address": self.address,
        }

    def describe(self) -> str:
        """One line for a person: `linked 0xabc… to github:alice`, `refused: <reason>`."""
        if self.state == "linked":
            who = f" to github:{self.login}" if self.login else ""
            return f"linked {self.address or 'the wallet'}{who}"
        if self.state == "refused":
            return f"refused: {self.reason or 'no reason given'}"
        why = f" ({self.reason})" if self.reason else ""
        return f"pending: identity has not paired both halves yet{why}"


def request_link(
    client: httpx.Client, frontend_url: str, wallet: Wallet, login: str
) -> LinkRequest:
    """Sign frontend's SIWE message for (wallet, login) and post it; returns the one-time code."""
    validate_login(login, option="--github")
    base = frontend_url.rstrip("/")
    response = client.get(
        f"{base}/api/link-message", params={"address": wallet.address, "login": login}
    )
    answer = json_answer(response, "frontend GET /api/link-message")
    message = answer.get("message") if isinstance(answer, dict) else None
    if not isinstance(message, str) or not message:
        raise KdemoError("frontend's GET /api/link-message answer has no `message`")
    signature = wallet.personal_sign(message)
    response = client.post(
        f"{base}/api/links",
        json={"message": message, "signature": signature},
        headers={"Accept": "application/json"},
    )
    answer = json_answer(response, "frontend POST /api/links")
    if not isinstance(answer, dict) or not answer.get("code"):
        raise KdemoError("frontend's POST /api/links answer has no `code`")
    return LinkRequest(
        code=str(answer["code"]),
        expires=str(answer.get("expires", "")),
        message=message,
        signature=signature,
        address=wallet.address,
    )


def get_link_status(client: httpx.Client, frontend_url: str, code: str) -> LinkStatus:
    """identity's verdict on a code, as frontend reports it."""
    url = f"{frontend_url.rstrip('/')}/api/links/{quote(code, safe='')}"
    response = client.get(url)
    if response.status_code == 404:
        # The link request travels over the bus to identity: a fresh code is unknown for a moment.
        return LinkStatus(code=code, state="pending", reason="identity does not know the code yet")
    answer = json_answer(response, "frontend GET /api/links/<code>")
    if not isinstance(answer, dict):
        raise KdemoError("frontend's GET /api/links/<code> answer is not an object")
    state = answer.get("state", answer.get("status"))
    if state not in _STATES:
        raise KdemoError(
            f"frontend's link answer has state {state!r}",
            f"expected one of {', '.join(_STATES)}",
        )
    login = answer.get("login")
    address = answer.get("address")
    return LinkStatus(
        code=code,
        state=state,
        reason=str(answer.get("reason") or ""),
        login=str(login) if login else None,
        address=str(address) if address else None,
    )


def wait_for_link(
    client: httpx.Client,
    frontend_url: str,
    code: str,
    *,
    timeout: float = LINK_TIMEOUT,
    interval: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
) -> LinkStatus:
    """Poll until the code is linked or refused; the last (pending) status after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        status = get_link_status(client, frontend_url, code)
        if status.state != "pending" or time.monotonic() >= deadline:
            return status
        sleep(min(interval, max(0.0, deadline - time.monotonic())))


@dataclass(frozen=True)
class LinkOutcome:
    request: LinkRequest
    delivery: WebhookResult
    status: LinkStatus

    def to_json(self) -> dict[str, Any]:
        return {
            **self.status.to_json(),
            "address": self.status.address or self.request.address,
            "expires": self.request.expires,
            "delivery": self.delivery.delivery_id,
        }


def link_identity(
    client: httpx.Client,
    *,
    frontend_url: str,
    github_app_url: str,
    webhook_secret: str,
    wallet: Wallet,
    login: str,
    user_id: int | None = None,
    repo: str,
    number: int,
    timeout: float = LINK_TIMEOUT,
) -> LinkOutcome:
    """Both halves of a link, then identity's verdict (pending only if `timeout` ran out)."""
    request = request_link(client, frontend_url, wallet, login)
    delivery = simulate_comment(
        client,
        github_app_url,
        webhook_secret,
        f"Linking my wallet: $link:{request.code}$",
        repo=repo,
        number=number,
        login=login,
        user_id=user_id,
    )
    if request.code not in delivery.link_codes:
        raise KdemoError(
            f"github-app did not take the link code from the comment: "
            f"{delivery.nothing_matched_reason()}",
            "is github-app finding $link:<code>$ patterns before bounties?",
        )
    status = wait_for_link(client, frontend_url, request.code, timeout=timeout)
    return LinkOutcome(request=request, delivery=delivery, status=status)
