"""github-app's webhook parsing and reply texts, without a network or a database."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from kdemo.flow.payloads import comment_payload, github_user_id
from kdemo.flow.webhook import signature_header
from services.common.grammar import BountyMatch, Rejection, find_bounties
from services.common.httpapp import ApiError
from services.common.intent_tokens import generate_ed25519_keypair
from services.github_app.replies import (
    backoff_s,
    intent_reply,
    link_reply,
    marker,
    rejected_reply,
)
from services.github_app.settings import GithubAppSettings
from services.github_app.webhook import (
    Ignored,
    Source,
    classify,
    parse_json,
    verify_signature,
)

SECRET = b"unit-test-secret-0123456789"


def _payload(body: str = "$USDC:50$", **kwargs: Any) -> dict[str, Any]:
    return comment_payload(body, repo="Octo-Org/Hello.World", number=42, login="octocat", **kwargs)


def test_genuine_signature_is_accepted() -> None:
    """GitHub's `sha256=` HMAC of the exact bytes passes."""
    body = b'{"action": "created"}'
    assert verify_signature(SECRET, body, signature_header(SECRET.decode(), body)) is None


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "signature_missing"),
        ("", "signature_missing"),
        ("   ", "signature_missing"),
        ("sha256=" + "0" * 64, "signature_invalid"),
        ("sha1=0123", "signature_invalid"),
        ("sha256=ünïcode", "signature_invalid"),
    ],
)
def test_missing_or_wrong_signature_is_401(header: str | None, code: str) -> None:
    """No, an empty or a wrong signature is a 401 naming the header."""
    with pytest.raises(ApiError) as caught:
        verify_signature(SECRET, b"{}", header)

    assert (caught.value.status, caught.value.code) == (401, code)
    assert caught.value.field == "X-Hub-Signature-256"


def test_signature_of_other_bytes_is_refused() -> None:
    """A signature over a re-serialised body does not match the bytes received."""
    header = signature_header(SECRET.decode(), b'{"a": 1}')
    with pytest.raises(ApiError) as caught:
        verify_signature(SECRET, b'{"a":1}', header)

    assert caught.value.code == "signature_invalid"


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (b"{", "application/json"),
        (b"[]", "application/json"),
        (b"payload=%7B%7D", "content type to application/json"),
        (b"[" * 200_000, "application/json"),
    ],
)
def test_body_that_is_not_a_json_object_is_400(body: bytes, hint: str) -> None:
    """Malformed JSON, a non-object or a form-encoded payload is refused with a hint."""
    with pytest.raises(ApiError) as caught:
        parse_json(body)

    assert (caught.value.status, caught.value.field) == (400, "body")
    assert hint in caught.value.hint


def _nested(depth: int, *, closed: bool = True) -> bytes:
    """`depth` levels, objects and arrays in turn: {"a": [{"a": [ ... 1 ... ]}]}."""
    opens = [b'{"a": ' if level % 2 == 0 else b"[" for level in range(depth)]
    closes = [b"}" if level % 2 == 0 else b"]" for level in reversed(range(depth))]
    return b"".join(opens) + b"1" + (b"".join(closes) if closed else b"")


@pytest.mark.parametrize(
    "body",
    [
        _nested(65),
        b'{"a": ' * 65 + b"1" + b"}" * 65,
        b"[" * 65 + b"]" * 65,  # not an object either: the depth is what is named
        b'{"a": ' * 64 + b"{}" + b"}" * 64,  # an empty object is a level too
        _nested(1024),
        _nested(1025),  # past the parser's own limit
        _nested(100_000),
        _nested(100_000, closed=False),  # and not even complete
        b"[" * 200_000,
    ],
    ids=[
        "65",
        "65-objects",
        "65-arrays",
        "65-empty",
        "1024",
        "1025",
        "100000",
        "100000-open",
        "200000-open",
    ],
)
def test_deep_nesting_is_refused_naming_the_limit(body: bytes) -> None:
    """JSON nested deeper than GitHub sends is one 400 that names the limit, whether the
    parser stops at it (past 1024 levels) or the levels are counted after parsing."""
    with pytest.raises(ApiError) as caught:
        parse_json(body)
    assert (caught.value.status, caught.value.code, caught.value.field) == (
        400,
        "invalid_json",
        "body",
    )
    assert caught.value.message == "body: JSON nested deeper than 64 levels"


def test_nesting_up_to_the_limit_and_brackets_in_strings_are_taken() -> None:
    """64 levels are a payload like any other; brackets inside strings are just text."""
    assert parse_json(_nested(64))["a"] == [json.loads(_nested(62))]
    assert parse_json(b'{"a": ' * 63 + b"{}" + b"}" * 63)

    text = '[{"\\' * 100
    assert parse_json(json.dumps({"body": text}).encode()) == {"body": text}


def test_issue_comment_is_a_source_with_the_comment_author() -> None:
    """An issue comment yields the lower-cased repository, ids and URLs github-app records."""
    payload = _payload(user_id=7)
    source = classify("issue_comment", payload)

    assert isinstance(source, Source)
    assert (source.repository, source.full_name) == ("octo-org/hello.world", "Octo-Org/Hello.World")
    assert (source.kind, source.source, source.number) == ("issue", "issue_comment", 42)
    assert (source.source_id, source.author_id, source.author_login) == (
        payload["comment"]["id"],
        7,
        "octocat",
    )
    assert source.source_url == payload["comment"]["html_url"]
    assert source.html_url == payload["issue"]["html_url"]
    assert source.body == "$USDC:50$"


def test_comment_on_a_pull_request_is_of_kind_pull_request() -> None:
    """`issue.pull_request` present makes the thread a pull request."""
    source = classify("issue_comment", _payload(pull_request=True))

    assert isinstance(source, Source)
    assert (source.kind, source.source) == ("pull_request", "issue_comment")


@pytest.mark.parametrize(
    ("event", "source"), [("issues", "issue"), ("pull_request", "pull_request")]
)
def test_opened_thread_is_its_own_source_and_may_have_no_body(event: str, source: str) -> None:
    """An opened issue or pull request is the source; a null description is empty text."""
    author = {"login": "octocat", "id": 5, "type": "User"}
    thread = {
        "id": 99,
        "number": 3,
        "html_url": "https://github.com/o/r/issues/3",
        "body": None,
        "user": author,
    }
    key = "issue" if event == "issues" else "pull_request"
    payload = {
        "action": "opened",
        key: thread,
        "repository": {"full_name": "o/r"},
        "sender": author,
    }
    found = classify(event, payload)

    assert isinstance(found, Source)
    assert (found.source, found.source_id, found.body) == (source, 99, "")
    assert found.source_url == thread["html_url"]


def test_review_comment_is_on_a_pull_request() -> None:
    """A review comment's number and thread URL come from its pull request."""
    author = {"login": "octocat", "id": 5}
    payload = {
        "action": "created",
        "repository": {"full_name": "o/r"},
        "sender": author,
        "pull_request": {"number": 8, "html_url": "https://github.com/o/r/pull/8"},
        "comment": {
            "id": 31,
            "body": "$ETH:1$",
            "user": author,
            "html_url": "https://github.com/o/r/pull/8#discussion_r31",
        },
    }
    found = classify("pull_request_review_comment", payload)

    assert isinstance(found, Source)
    assert (found.kind, found.source, found.number, found.source_id) == (
        "pull_request",
        "review_comment",
        8,
        31,
    )


@pytest.mark.parametrize(
    ("event", "change", "reason"),
    [
        ("ping", {}, "ping"),
        ("issue_comment", {"action": "edited"}, "only issue_comment.created"),
        ("issues", {"action": "edited"}, "only issues.opened"),
        ("pull_request", {"action": "synchronize"}, "only pull_request.opened"),
        ("star", {}, "cannot announce a bounty"),
        ("issue_comment", {"sender": {"login": "ci", "id": 3, "type": "Bot"}}, "bot"),
        ("issue_comment", {"sender": {"login": "dependabot[bot]", "id": 4}}, "bot"),
    ],
)
def test_deliveries_that_cannot_be_bounties_are_ignored(
    event: str, change: dict[str, Any], reason: str
) -> None:
    """Pings, other events, non-create actions and bots are ignored with the reason."""
    found = classify(event, _payload() | change)

    assert isinstance(found, Ignored)
    assert reason in found.reason


def test_bot_author_is_ignored_even_when_a_user_sent_it() -> None:
    """A comment whose author is a bot does not count, whoever triggered the delivery."""
    payload = _payload()
    payload["comment"]["user"] = {"login": "app[bot]", "id": 9, "type": "Bot"}
    found = classify("issue_comment", payload)

    assert isinstance(found, Ignored)
    assert "app[bot]" in found.reason


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("comment.user.id", ..., "comment.user.id", "missing"),
        ("comment.user.id", "7", "comment.user.id", "expected an integer, got a string"),
        ("comment.user.id", 0, "comment.user.id", "positive"),
        ("comment.id", 1.5, "comment.id", "got a number"),
        ("comment.body", None, "comment.body", "got null"),
        ("issue.number", [], "issue.number", "got an array"),
        ("issue.html_url", "", "issue.html_url", "non-empty"),
        ("repository", ..., "repository.full_name", "missing"),
        ("repository.full_name", "a/b/c", "repository.full_name", "OWNER/NAME"),
        ("sender.id", ..., "sender.id", "missing"),
        ("sender.type", 1, "sender.type", "string or null"),
        ("comment.user.login", "-bad-", "comment.user.login", "not a GitHub login"),
        ("action", ..., "action", "missing"),
    ],
)
def test_bad_fields_are_400_naming_the_field(path: str, value: Any, field: str, words: str) -> None:
    """Each field github-app reads is checked for presence and type, and named when wrong."""
    payload = copy.deepcopy(_payload())
    *parents, last = path.split(".")
    node = payload
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value

    with pytest.raises(ApiError) as caught:
        classify("issue_comment", payload)

    assert (caught.value.status, caught.value.field) == (400, field)
    assert words in caught.value.message


def test_replies_never_carry_a_pattern_that_would_match() -> None:
    """Intent, link and rejection replies parse as nothing, and each carries its marker."""
    intent = "0x" + "ab" * 32
    match = BountyMatch(denomination="USDC", amount=50, index=0, text="$USDC:50$")
    replies = {
        intent: intent_reply(
            intent, match, "https://f.example/sign?t=x", datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
        ),
        "link:" + "a" * 28: link_reply("a" * 28, "octocat"),
        "rejected:x": rejected_reply(
            "rejected:x",
            [Rejection("$USDC:050$", "leading zeros"), Rejection("$LINK:1$", "reserved")],
        ),
    }
    for reply_id, text in replies.items():
        parsed = find_bounties(text)
        assert (parsed.matches, parsed.links, parsed.rejected) == ([], [], []), text
        assert marker(reply_id) in text
    assert replies[intent].startswith("Sign this bounty of 50 USDC: https://f.example/sign?t=x")
    assert marker(intent) == f"<!-- kdemo:intent:{intent} -->"


@pytest.mark.parametrize(("attempts", "delay"), [(1, 1.0), (2, 2.0), (5, 16.0), (40, 600.0)])
def test_reply_backoff_grows_and_is_capped(attempts: int, delay: float) -> None:
    """Retries wait 1 s, 2 s, 4 s … and never more than ten minutes."""
    assert backoff_s(attempts) == delay


@pytest.fixture
def base_env(monkeypatch: pytest.MonkeyPatch) -> None:
    signing, _ = generate_ed25519_keypair()
    monkeypatch.setenv("KDEMO_DATABASE_URL", "postgresql://u:p@127.0.0.1:1/db")
    monkeypatch.setenv("KDEMO_GITHUB_WEBHOOK_SECRET", "s" * 16)
    monkeypatch.setenv("KDEMO_INTENT_SIGNING_KEY", signing)


@pytest.mark.usefixtures("base_env")
def test_settings_read_the_environment() -> None:
    """Defaults apply; an empty token means no token; URLs lose a trailing slash."""
    settings = GithubAppSettings(github_token="", public_url_frontend="https://f.example/")

    assert settings.intent_ttl == 86400
    assert settings.github_token is None
    assert settings.github_api_url == "https://api.github.com"
    assert settings.public_url_frontend == "https://f.example"
    assert github_user_id("octocat") > 0  # the payload helper the CLI uses is importable


@pytest.mark.usefixtures("base_env")
@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("KDEMO_GITHUB_WEBHOOK_SECRET", "x" * 15, "at least 16"),
        ("KDEMO_INTENT_SIGNING_KEY", "-----BEGIN PRIVATE KEY-----", "not a PEM"),
        ("KDEMO_INTENT_TTL", "10", "greater than or equal to 60"),
        ("KDEMO_PUBLIC_URL_FRONTEND", "f.example", "http(s) URL"),
    ],
)
def test_bad_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    """A short secret, a broken key, a tiny TTL or a URL without scheme is refused."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        GithubAppSettings()

    assert words in str(caught.value)
