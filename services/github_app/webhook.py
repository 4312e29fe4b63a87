"""GitHub webhooks: the signature check, and turning a payload into the text that may hold bounties.

Nothing here touches the network or the database. The signature is checked on the
raw bytes before anything is parsed; then only the four create actions that can
carry a bounty count, and every field github-app reads is checked for presence and
type, so a bad payload is refused with the field that is wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn

import orjson

from services.common.httpapp import ApiError

__all__ = [
    "COUNTED",
    "MAX_BODY_BYTES",
    "MAX_NESTING",
    "Ignored",
    "Source",
    "SourceKind",
    "classify",
    "is_bot",
    "parse_json",
    "require_signature",
    "verify_signature",
]

MAX_BODY_BYTES: Final = 25 * 1024 * 1024
"""GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub."""

COUNTED: Final = frozenset(
    {
        ("issue_comment", "created"),
        ("issues", "opened"),
        ("pull_request", "opened"),
        ("pull_request_review_comment", "created"),
    }
)
"""(event, action) pairs whose text can announce a bounty: create actions only."""

MAX_NESTING: Final = 64
"""GitHub payloads nest a few levels; deeper JSON is refused."""

SourceKind = Literal["issue_comment", "issue", "pull_request", "review_comment"]
_PLACES: Final[dict[str, tuple[str, str, SourceKind]]] = {
    # event: (the thread's key, the key of the text's object, the bounty source)
    "issue_comment": ("issue", "comment", "issue_comment"),
    "issues": ("issue", "issue", "issue"),
    "pull_request": ("pull_request", "pull_request", "pull_request"),
    "pull_request_review_comment": ("pull_request", "comment", "review_comment"),
}
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
_FULL_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_SIGNATURE_HINT = (
    "GitHub signs the exact body with HMAC-SHA256; make the webhook's secret equal "
    "KDEMO_GITHUB_WEBHOOK_SECRET"
)
_PAYLOAD_HINT = "deliver the payload exactly as GitHub sends it (content type application/json)"


@dataclass(frozen=True)
class Source:
    """A piece of GitHub text that may hold bounties, and where it was written."""

    event: str
    action: str
    repository: str
    """`full_name` lower-cased: the repository as intents name it."""
    full_name: str
    """`full_name` as GitHub wrote it (for API calls)."""
    number: int
    kind: Literal["issue", "pull_request"]
    source: SourceKind
    source_id: int
    body: str
    author_id: int
    author_login: str
    html_url: str
    """The issue or pull request."""
    source_url: str
    """The comment (or the issue or pull request itself when it is the source)."""
    sender_id: int


@dataclass(frozen=True)
class Ignored:
    """A genuine delivery that cannot announce a bounty; `reason` says why."""

    reason: str


def require_signature(header: str | None) -> str:
    """The signature header, or a 401 ApiError when it is missing or empty (before any read)."""
    if not header or not header.strip():
        raise ApiError(
            401,
            "signature_missing",
            "X-Hub-Signature-256 header is missing or empty",
            field="X-Hub-Signature-256",
            hint=_SIGNATURE_HINT,
        )
    return header


def verify_signature(secret: bytes, body: bytes, header: str | None) -> None:
    """Raise a 401 ApiError unless `header` is GitHub's `sha256=` HMAC of `body`."""
    header = require_signature(header)
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    # Constant time, on bytes: a non-ASCII header must fail like any wrong one.
    if not hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace")):
        raise ApiError(
            401,
            "signature_invalid",
            "X-Hub-Signature-256 does not match the body",
            field="X-Hub-Signature-256",
            hint=_SIGNATURE_HINT,
        )


def parse_json(body: bytes) -> dict[str, Any]:
    """The payload as a JSON object, or a 400 ApiError."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if _ORJSON_TOO_DEEP in str(exc):
            raise _too_deep() from exc
        hint = _PAYLOAD_HINT
        if body.startswith(b"payload="):
            hint = "set the webhook's content type to application/json in GitHub"
        raise ApiError(
            400, "invalid_json", f"body: not valid JSON ({exc})", field="body", hint=hint
        ) from exc
    if _deeper_than(payload, MAX_NESTING):
        raise _too_deep()
    if not isinstance(payload, dict):
        raise ApiError(
            400, "invalid_payload", "body: expected a JSON object", field="body", hint=_PAYLOAD_HINT
        )
    return payload


# Deep JSON must not reach a recursive parser: the stdlib's C parser recurses per level, and
# a library we import raises the interpreter's recursion limit far above what the C stack
# holds, so deep JSON would crash the process. orjson (>= 3.9.15) refuses more than 1024
# levels by itself, without going deeper; the levels from MAX_NESTING to there are counted
# on the parsed object, level by level (no recursion either). On GitHub's own 10-14 KB
# payloads that walk costs a fraction of the regex and bracket count over the raw bytes that
# came before it, and orjson parses in a fraction of the stdlib's time.
_ORJSON_TOO_DEEP: Final = "depth limit exceeded"
_CONTAINERS: Final = (dict, list)


def _deeper_than(value: object, limit: int) -> bool:
    """Whether parsed JSON nests more than `limit` levels of objects and arrays."""
    level: list[Any] = [value] if type(value) in _CONTAINERS else []
    for _ in range(limit):
        if not level:
            return False
        below: list[Any] = []
        for node in level:
            items = node.values() if type(node) is dict else node
            below += [item for item in items if type(item) in _CONTAINERS]
        level = below
    return bool(level)


def _too_deep() -> ApiError:
    return ApiError(
        400,
        "invalid_json",
        f"body: JSON nested deeper than {MAX_NESTING} levels",
        field="body",
        hint=_PAYLOAD_HINT,
    )


def classify(event: str, payload: dict[str, Any]) -> Source | Ignored:
    """The source a counted delivery carries, `Ignored` for the others; 400 on bad fields."""
    action = payload.get("action")
    if event == "ping":
        return Ignored("ping: the webhook is configured")
    if event not in _PLACES:
        return Ignored(f"event {event!r} cannot announce a bounty")
    if not isinstance(action, str):
        _fail("action", "expected a string" if "action" in payload else "missing")
    if (event, action) not in COUNTED:
        wanted = next(a for e, a in COUNTED if e == event)
        return Ignored(f"{event}.{action}: only {event}.{wanted} counts")

    sender_login = _text(payload, "sender.login")
    sender_id = _integer(payload, "sender.id")
    sender_type = _optional_text(payload, "sender.type")
    if is_bot(sender_login, sender_type):
        return Ignored(f"sender {sender_login} is a bot")

    full_name = _text(payload, "repository.full_name")
    if not _FULL_NAME.fullmatch(full_name):
        _fail("repository.full_name", f"expected OWNER/NAME, got {full_name!r:.80}")

    thread, origin, source = _PLACES[event]
    on_pull_request = thread == "pull_request" or (
        isinstance(payload.get("issue"), dict) and payload["issue"].get("pull_request") is not None
    )
    kind: Literal["issue", "pull_request"] = "pull_request" if on_pull_request else "issue"

    number = _integer(payload, f"{thread}.number")
    html_url = _url(payload, f"{thread}.html_url")
    source_id = _integer(payload, f"{origin}.id")
    # An issue or pull request may have no description (null); a comment always has a body.
    body = (
        _optional_text(payload, f"{origin}.body")
        if origin != "comment"
        else _string(payload, f"{origin}.body")
    ) or ""
    author_login = _text(payload, f"{origin}.user.login")
    author_id = _integer(payload, f"{origin}.user.id")
    if is_bot(author_login, _optional_text(payload, f"{origin}.user.type")):
        return Ignored(f"author {author_login} is a bot")
    if not _LOGIN.fullmatch(author_login):
        _fail(f"{origin}.user.login", f"not a GitHub login: {author_login!r:.80}")
    source_url = html_url if origin == thread else _url(payload, f"{origin}.html_url")
    return Source(
        event=event,
        action=action,
        repository=full_name.lower(),
        full_name=full_name,
        number=number,
        kind=kind,
        source=source,
        source_id=source_id,
        body=body,
        author_id=author_id,
        author_login=author_login,
        html_url=html_url,
        source_url=source_url,
        sender_id=sender_id,
    )


def is_bot(login: str, user_type: str | None) -> bool:
    """GitHub marks apps as type `Bot`, with logins ending in `[bot]`."""
    return user_type == "Bot" or login.endswith("[bot]")


def _fail(path: str, problem: str) -> NoReturn:
    raise ApiError(400, "invalid_payload", f"{path}: {problem}", field=path, hint=_PAYLOAD_HINT)


def _lookup(payload: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = payload
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _describe(value: object) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), "a value")


def _integer(payload: dict[str, Any], path: str) -> int:
    found, value = _lookup(payload, path)
    if not found:
        _fail(path, "missing")
    # bool is an int subclass; `true` is not an id.
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, f"expected an integer, got {_describe(value)}")
    if value < 1:
        _fail(path, f"expected a positive integer, got {value}")
    return int(value)


def _text(payload: dict[str, Any], path: str) -> str:
    """A string that must not be empty."""
    value = _string(payload, path)
    if not value:
        _fail(path, "expected a non-empty string")
    return value


def _string(payload: dict[str, Any], path: str) -> str:
    found, value = _lookup(payload, path)
    if not found:
        _fail(path, "missing")
    if not isinstance(value, str):
        _fail(path, f"expected a string, got {_describe(value)}")
    return str(value)


def _optional_text(payload: dict[str, Any], path: str) -> str | None:
    found, value = _lookup(payload, path)
    if not found or value is None:
        return None
    if not isinstance(value, str):
        _fail(path, f"expected a string or null, got {_describe(value)}")
    return str(value)


def _url(payload: dict[str, Any], path: str) -> str:
    value = _text(payload, path)
    if not value.startswith(("https://", "http://")):
        _fail(path, f"expected an http(s) URL, got {value!r:.80}")
    return value
