"""The webhook payloads and deliveries `simulate-comment` builds."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import httpx
import pytest

from kdemo.errors import UsageError
from kdemo.flow.payloads import comment_payload, github_user_id
from kdemo.flow.webhook import build_delivery, deliver, simulate_comment
from tests.cli.support import LocalServer, Request

SECRET = "a-webhook-secret-of-32-bytes-xxx"


@pytest.mark.parametrize("pull_request", [False, True])
def test_payload_has_github_issue_comment_shape(pull_request: bool) -> None:
    """An issue_comment `created` payload has GitHub's repository, issue, comment and sender."""
    p = comment_payload(
        "$USDC:50$", repo="Octo/Hello-World", number=7, login="alice", pull_request=pull_request
    )
    assert p["action"] == "created"
    assert p["repository"]["full_name"] == "Octo/Hello-World"
    assert p["repository"]["name"] == "Hello-World"
    assert p["repository"]["owner"]["login"] == "Octo"
    assert p["repository"]["html_url"] == "https://github.com/Octo/Hello-World"
    kind = "pull" if pull_request else "issues"
    assert p["issue"]["number"] == 7
    assert p["issue"]["html_url"] == f"https://github.com/Octo/Hello-World/{kind}/7"
    assert ("pull_request" in p["issue"]) is pull_request
    assert p["issue"]["user"]["login"] == "alice"
    comment = p["comment"]
    assert comment["body"] == "$USDC:50$"
    assert comment["user"] == p["sender"]
    assert comment["user"]["login"] == "alice"
    assert comment["user"]["id"] == github_user_id("alice")
    assert comment["user"]["type"] == "User"
    assert comment["html_url"] == f"{p['issue']['html_url']}#issuecomment-{comment['id']}"


def test_each_payload_gets_a_fresh_comment_id() -> None:
    """Two simulated comments never share a comment id (each is a new bounty source)."""
    ids = {
        comment_payload("x", repo="o/r", number=1, login="a")["comment"]["id"] for _ in range(50)
    }
    assert len(ids) == 50


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [("alice", "alice", True), ("alice", "Alice", True), ("alice", "bob", False)],
)
def test_user_id_is_derived_deterministically_from_the_login(a: str, b: str, same: bool) -> None:
    """The same login (case-insensitively) always maps to the same positive, JS-safe id."""
    assert (github_user_id(a) == github_user_id(b)) is same
    assert 0 < github_user_id(a) < 2**53
    expected = int.from_bytes(hashlib.sha256(a.lower().encode()).digest()[:6], "big")
    assert github_user_id(a) == expected


def test_explicit_user_id_wins_over_the_derived_one() -> None:
    """--user-id replaces the derived id everywhere the author appears."""
    p = comment_payload("x", repo="o/r", number=1, login="alice", user_id=583231)
    assert p["comment"]["user"]["id"] == p["sender"]["id"] == p["issue"]["user"]["id"] == 583231


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"repo": "no-slash"}, "--repo"),
        ({"repo": "a/b/c"}, "--repo"),
        ({"repo": "-bad/r"}, "--repo"),
        ({"login": "bad login"}, "--user"),
        ({"login": "-dash"}, "--user"),
        ({"number": 0}, "--number"),
        ({"user_id": 0}, "--user-id"),
    ],
)
def test_bad_inputs_are_refused_naming_the_option(kwargs: dict[str, object], named: str) -> None:
    """Malformed repository, login, number or id is a usage error naming the option."""
    args: dict[str, object] = {"repo": "o/r", "number": 1, "login": "alice"} | kwargs
    with pytest.raises(UsageError) as err:
        comment_payload("x", **args)  # type: ignore[arg-type]
    assert named in err.value.message
    assert err.value.exit_code == 2


def test_signature_is_hmac_sha256_over_the_exact_body_bytes() -> None:
    """X-Hub-Signature-256 verifies against the bytes that are sent, not against altered ones."""
    delivery = build_delivery(comment_payload("$ETH:1$", repo="o/r", number=2, login="a"), SECRET)
    header = delivery.headers["X-Hub-Signature-256"]
    expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert header == f"sha256={expected}"
    tampered = delivery.body.replace(b"$ETH:1$", b"$ETH:9$")
    assert hmac.new(SECRET.encode(), tampered, hashlib.sha256).hexdigest() != expected
    assert delivery.headers["X-GitHub-Event"] == "issue_comment"
    assert uuid.UUID(delivery.headers["X-GitHub-Delivery"]).version == 4


def test_delivery_arrives_byte_for_byte_and_verifies(local_server: LocalServer) -> None:
    """What github-app receives is exactly what was signed: a receiver's HMAC check passes."""

    @local_server.route("POST /webhook")
    def webhook(request: Request) -> tuple[int, object]:
        mac = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(f"sha256={mac}", request.headers["X-Hub-Signature-256"]):
            return 401, {"error": {"code": "bad_signature", "message": "bad", "hint": ""}}
        comment = request.json()["comment"]
        return 200, {
            "delivery": request.headers["X-GitHub-Delivery"],
            "intents": [
                {
                    "intent_id": "0x01",
                    "signing_url": f"http://x/sign?t={comment['id']}",
                    "denomination": "USDC",
                    "amount": "50",
                }
            ],
            "links": [],
            "rejected": [],
            "duplicate": False,
        }

    with httpx.Client(trust_env=False) as client:
        result = simulate_comment(
            client, local_server.url, SECRET, "$USDC:50$", repo="o/r", number=3, login="alice"
        )
    sent = local_server.requests[-1]
    assert json.loads(sent.body)["comment"]["body"] == "$USDC:50$"
    assert result.matched
    assert result.signing_urls == (f"http://x/sign?t={json.loads(sent.body)['comment']['id']}",)


@pytest.mark.parametrize(
    ("status", "answer", "matched", "reason_part"),
    [
        (202, {"ignored": "not a bounty event"}, False, "not a bounty event"),
        (
            200,
            {
                "delivery": "d",
                "intents": [],
                "links": [],
                "rejected": [{"text": "$XYZ:1$", "reason": "unknown denomination"}],
                "duplicate": False,
            },
            False,
            "unknown denomination",
        ),
        (
            200,
            {
                "delivery": "d",
                "intents": [],
                "links": [{"code": "abc"}],
                "rejected": [],
                "duplicate": False,
            },
            True,
            "",
        ),
    ],
)
def test_webhook_answers_are_read_into_a_result(
    local_server: LocalServer, status: int, answer: object, matched: bool, reason_part: str
) -> None:
    """202 ignored and a rejected-only 200 mean nothing matched, with github-app's reason."""
    local_server.routes["POST /webhook"] = lambda _r: (status, answer)
    with httpx.Client(trust_env=False) as client:
        delivery = build_delivery(comment_payload("x", repo="o/r", number=1, login="a"), SECRET)
        result = deliver(client, local_server.url, delivery)
    assert result.matched is matched
    assert reason_part in result.nothing_matched_reason()
