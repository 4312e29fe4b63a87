"""Signing and delivering webhooks to github-app, the way GitHub does."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from kdemo.errors import KdemoError
from kdemo.flow.http import json_answer
from kdemo.flow.payloads import comment_payload

__all__ = [
    "Delivery",
    "Rejected",
    "WebhookResult",
    "build_delivery",
    "deliver",
    "signature_header",
    "simulate_comment",
]


def signature_header(secret: str, body: bytes) -> str:
    """GitHub's `X-Hub-Signature-256` value: `sha256=` + HMAC-SHA256 hex of the exact bytes."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery: the exact body bytes and the headers that sign them."""

    event: str
    delivery_id: str
    body: bytes
    headers: dict[str, str]


def build_delivery(
    payload: dict[str, Any], secret: str, *, event: str = "issue_comment"
) -> Delivery:
    """Serialise `payload` once and sign those bytes (what is signed is what is sent)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    delivery_id = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/kdemo",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": "0",
        "X-Hub-Signature-256": signature_header(secret, body),
    }
    return Delivery(event=event, delivery_id=delivery_id, body=body, headers=headers)


@dataclass(frozen=True)
class Rejected:
    text: str
    reason: str


@dataclass(frozen=True)
class WebhookResult:
    """What github-app answered: the intents it recorded, link codes, and what it refused."""

    status: int
    delivery_id: str
    signing_urls: tuple[str, ...] = ()
    intents: tuple[dict[str, Any], ...] = ()
    link_codes: tuple[str, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    ignored: str | None = None
    duplicate: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def matched(self) -> bool:
        """True when the comment announced at least one bounty or link."""
        return bool(self.signing_urls or self.link_codes)

    def nothing_matched_reason(self) -> str:
        """One sentence on why nothing matched (for the error line)."""
        if self.ignored:
            return f"github-app ignored the delivery: {self.ignored}"
        if self.rejected:
            reasons = "; ".join(f"{r.text!r}: {r.reason}" for r in self.rejected)
            return f"github-app rejected every match: {reasons}"
        return "the comment holds no $DENOMINATION:AMOUNT$ or $link:CODE$ pattern"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "delivery": self.delivery_id,
            "intents": list(self.intents),
            "signing_urls": list(self.signing_urls),
            "links": [{"code": c} for c in self.link_codes],
            "rejected": [{"text": r.text, "reason": r.reason} for r in self.rejected],
            "ignored": self.ignored,
            "duplicate": self.duplicate,
        }


def deliver(client: httpx.Client, github_app_url: str, delivery: Delivery) -> WebhookResult:
    """POST the delivery to `<github-app>/webhook` and read its answer."""
    url = github_app_url.rstrip("/") + "/webhook"
    response = client.post(url, content=delivery.body, headers=delivery.headers)
    answer = json_answer(response, "github-app POST /webhook")
    if not isinstance(answer, dict):
        raise KdemoError("github-app answered the webhook with something other than an object")
    if response.status_code == 202:
        return WebhookResult(
            status=202,
            delivery_id=delivery.delivery_id,
            ignored=str(answer.get("ignored") or "not a bounty event"),
            raw=answer,
        )
    intents = tuple(i for i in answer.get("intents") or () if isinstance(i, dict))
    return WebhookResult(
        status=response.status_code,
        delivery_id=str(answer.get("delivery") or delivery.delivery_id),
        intents=intents,
        signing_urls=tuple(str(i["signing_url"]) for i in intents if i.get("signing_url")),
        link_codes=tuple(
            str(link["code"]) for link in answer.get("links") or () if isinstance(link, dict)
        ),
        rejected=tuple(
            Rejected(text=str(r.get("text", "")), reason=str(r.get("reason", "")))
            for r in answer.get("rejected") or ()
            if isinstance(r, dict)
        ),
        duplicate=bool(answer.get("duplicate")),
        raw=answer,
    )


def simulate_comment(
    client: httpx.Client,
    github_app_url: str,
    secret: str,
    body: str,
    *,
    repo: str,
    number: int,
    login: str,
    user_id: int | None = None,
    pull_request: bool = False,
) -> WebhookResult:
    """Build an `issue_comment` `created` delivery by `login`, sign it and deliver it."""
    payload = comment_payload(
        body, repo=repo, number=number, login=login, user_id=user_id, pull_request=pull_request
    )
    return deliver(client, github_app_url, build_delivery(payload, secret))
