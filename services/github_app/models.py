"""`POST /webhook` as documented in github-app's OpenAPI: GitHub's headers, the part of
its payload github-app reads, and the answers.

The handler reads the raw body itself (the HMAC is over the exact bytes) and checks
every field it reads (`webhook.classify`); this module only describes them, and the
OpenAPI conformance tests check every answer against it.
"""

from __future__ import annotations

from typing import Any, Final

from services.common.httpapp import Strict, error_responses

from .webhook import COUNTED, MAX_BODY_BYTES

__all__ = ["WEBHOOK_DOCS", "WebhookAnswer", "WebhookIgnored"]


class IntentAnswer(Strict):
    intent_id: str
    signing_url: str
    denomination: str
    amount: str


class LinkAnswer(Strict):
    code: str


class RejectedAnswer(Strict):
    text: str
    reason: str


class WebhookAnswer(Strict):
    """A counted delivery: the intents and link codes it recorded, the text it refused."""

    delivery: str
    intents: list[IntentAnswer]
    links: list[LinkAnswer]
    rejected: list[RejectedAnswer]
    duplicate: bool


class WebhookIgnored(Strict):
    """A genuine delivery that cannot announce a bounty, and why."""

    ignored: str


def _user() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["login", "id"],
        "properties": {
            "login": {
                "type": "string",
                "pattern": "^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$",
            },
            "id": {"type": "integer", "minimum": 1},
            "type": {"type": "string", "examples": ["User", "Bot"]},
        },
    }


_URL: Final = {"type": "string", "pattern": "^https?://"}


def _text_source(*, body_required: bool) -> dict[str, Any]:
    """A comment, an issue or a pull request: the text and who wrote it."""
    return {
        "type": "object",
        "required": ["id", "user", "html_url", *(["body"] if body_required else [])],
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "number": {"type": "integer", "minimum": 1},
            "body": {"type": "string"} if body_required else {"type": ["string", "null"]},
            "html_url": _URL,
            "user": _user(),
        },
    }


_EXAMPLE: Final = {
    "action": "created",
    "sender": {"login": "octocat", "id": 583231, "type": "User"},
    "repository": {"full_name": "octo-org/octo-repo"},
    "issue": {
        "id": 1,
        "number": 7,
        "html_url": "https://github.com/octo-org/octo-repo/issues/7",
        "user": {"login": "octocat", "id": 583231},
    },
    "comment": {
        "id": 1001,
        "body": "Funding this: $USDC:50$",
        "html_url": "https://github.com/octo-org/octo-repo/issues/7#issuecomment-1001",
        "user": {"login": "octocat", "id": 583231},
    },
}

PAYLOAD_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": (
        "GitHub's payload (only the fields github-app reads are listed). Counted: "
        + ", ".join(sorted(f"{event}.{action}" for event, action in COUNTED))
        + "; any other genuine delivery is answered 202."
    ),
    "required": ["action", "sender", "repository"],
    "properties": {
        "action": {"type": "string"},
        "sender": _user(),
        "repository": {
            "type": "object",
            "required": ["full_name"],
            "properties": {
                "full_name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"}
            },
        },
        "issue": _text_source(body_required=False),
        "pull_request": _text_source(body_required=False),
        "comment": _text_source(body_required=True),
    },
    "example": _EXAMPLE,
}


def _header(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, **schema},
    }


WEBHOOK_DOCS: Final[dict[str, Any]] = {
    "responses": {
        200: {"model": WebhookAnswer},
        202: {"model": WebhookIgnored, "description": "not a bounty: nothing recorded"},
        **error_responses(400, 401, 413, 503),
    },
    "openapi_extra": {
        "parameters": [
            _header(
                "X-GitHub-Event",
                "the event's name, e.g. issue_comment",
                maxLength=200,
                example="issue_comment",
            ),
            _header("X-GitHub-Delivery", "the delivery's id (a GUID)", maxLength=200),
            _header(
                "X-Hub-Signature-256",
                "`sha256=` + hex HMAC-SHA256 of the exact body under the webhook secret",
                pattern="^sha256=[0-9a-f]{64}$",
            ),
        ],
        "requestBody": {
            "required": True,
            "description": f"at most {MAX_BODY_BYTES} bytes (GitHub's limit)",
            "content": {"application/json": {"schema": PAYLOAD_SCHEMA}},
        },
    },
}
