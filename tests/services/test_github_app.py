"""github-app's webhook, seen from GitHub's side: a real process, database and bus.

Every bad input of the design's table is here, with the rows and events it must
(or must not) leave behind.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import nats
import psycopg
import pytest
from psycopg.rows import dict_row

from kdemo.flow.payloads import comment_payload, github_user_id, new_comment_id
from kdemo.flow.webhook import build_delivery, signature_header
from services.common import eip712
from services.common.events import decode
from services.common.intent_tokens import verify_intent_token
from tests.conftest import RunningService, Stack, launch

pytestmark = pytest.mark.stack

LINK_CODE = "abcdefghijklmnopqrstuvwxyzab"


# -- helpers shared by the github-app test modules ------------------------------------------


def unique_repo() -> str:
    return f"Acme-{uuid.uuid4().hex[:10]}/Widgets"


def send(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/webhook", content=body, headers=headers, timeout=30)


def deliver(
    url: str,
    secret: str,
    payload: dict[str, Any],
    *,
    event: str = "issue_comment",
    delivery_id: str | None = None,
) -> httpx.Response:
    delivery = build_delivery(payload, secret, event=event)
    headers = dict(delivery.headers)
    if delivery_id is not None:
        headers["X-GitHub-Delivery"] = delivery_id
    return send(url, delivery.body, headers)


def query(stack: Stack, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(stack.database_url("github_app"), row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


async def _subject_counts(stack: Stack, subjects: str) -> dict[str, int]:
    nc = await nats.connect(**stack.connect_kwargs("admin"))
    try:
        info = await nc.jetstream().stream_info("KDEMO", subjects_filter=subjects)
        return dict(info.state.subjects or {})
    finally:
        await nc.close()


def bus_count(stack: Stack, subject: str) -> int:
    """How many messages the stream holds on exactly `subject` (read as the admin user)."""
    return asyncio.run(_subject_counts(stack, subject)).get(subject, 0)


async def _stream_last_seq(stack: Stack) -> int:
    nc = await nats.connect(**stack.connect_kwargs("admin"))
    try:
        return int((await nc.jetstream().stream_info("KDEMO")).state.last_seq)
    finally:
        await nc.close()


def stream_last_seq(stack: Stack) -> int:
    return asyncio.run(_stream_last_seq(stack))


async def _last_seq_on(stack: Stack, subject: str) -> int:
    nc = await nats.connect(**stack.connect_kwargs("admin"))
    try:
        return int((await nc.jetstream().get_last_msg("KDEMO", subject)).seq)
    finally:
        await nc.close()


def last_seq_on(stack: Stack, subject: str) -> int:
    """The stream sequence of the last message on exactly `subject`."""
    return asyncio.run(_last_seq_on(stack, subject))


def wait_relayed(stack: Stack, event_id: str, *, within_s: float = 10.0) -> None:
    """Wait until the outbox no longer holds `event_id`: the relay deletes a row only on the
    bus's PubAck, so the event is on the stream."""
    deadline = time.monotonic() + within_s
    while query(stack, "SELECT 1 FROM outbox WHERE id = %s", (event_id,)):
        assert time.monotonic() < deadline, f"{event_id} still in the outbox after {within_s} s"
        time.sleep(0.05)


def wait_outbox_empty(stack: Stack, *, within_s: float = 10.0) -> None:
    """Wait until github-app's outbox is empty: everything it committed is on the stream."""
    deadline = time.monotonic() + within_s
    while rows := query(stack, "SELECT id FROM outbox"):
        assert time.monotonic() < deadline, f"still in the outbox after {within_s} s: {rows}"
        time.sleep(0.05)


def relayed_count(stack: Stack, event_id: str, *, within_s: float = 10.0) -> int:
    """How many messages the stream holds for `event_id` once the relay is done with it.

    An event leaves github-app only through the outbox, written in the transaction the
    webhook's answer waited for, and the relay deletes a row only on the bus's PubAck: once the
    row is gone, nothing more can be published for the event, so the count is final."""
    wait_relayed(stack, event_id, within_s=within_s)
    name, key = event_id.split(":", 1)
    return bus_count(stack, f"kdemo.{name}.{key}")


async def _last_event(stack: Stack, subject: str) -> dict[str, Any]:
    nc = await nats.connect(**stack.connect_kwargs("admin"))
    try:
        msg = await nc.jetstream().get_last_msg("KDEMO", subject)
        assert msg.data is not None
        event = decode(msg.data, subject)  # validates the schema, as a consumer would
        return {
            "id": event.id,
            "type": event.type,
            "data": event.data,
            "msg_id": (msg.headers or {}).get("Nats-Msg-Id"),
        }
    finally:
        await nc.close()


def last_event(stack: Stack, subject: str) -> dict[str, Any]:
    return asyncio.run(_last_event(stack, subject))


def user(login: str, uid: int | None = None, kind: str = "User") -> dict[str, Any]:
    return {"login": login, "id": uid or github_user_id(login), "type": kind}


def thread_payload(
    event: str, body: str, *, repo: str, number: int = 7, login: str = "octocat"
) -> dict[str, Any]:
    """`issues.opened`, `pull_request.opened` or `pull_request_review_comment.created`."""
    kind = "issues" if event == "issues" else "pull"
    html = f"https://github.com/{repo}/{kind}/{number}"
    author = user(login)
    thread = {
        "id": new_comment_id(),
        "number": number,
        "html_url": html,
        "body": body,
        "user": author,
    }
    base = {"repository": {"full_name": repo}, "sender": author}
    if event == "issues":
        return base | {"action": "opened", "issue": thread}
    if event == "pull_request":
        return base | {"action": "opened", "pull_request": thread}
    cid = new_comment_id()
    comment = {"id": cid, "html_url": f"{html}#discussion_r{cid}", "body": body, "user": author}
    return base | {
        "action": "created",
        "pull_request": thread | {"body": "no bounty here"},
        "comment": comment,
    }


# -- the service under test -----------------------------------------------------------------


@pytest.fixture(scope="module")
def app(stack: Stack) -> Iterator[RunningService]:
    """One github-app process for this module's tests (each uses its own repository)."""
    svc = launch(stack, "github-app")
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def secret(stack: Stack) -> str:
    return stack.secrets.webhook_secret


# -- a bounty, end to end ---------------------------------------------------------------------


def test_comment_records_one_intent_and_publishes_it(
    app: RunningService, stack: Stack, secret: str
) -> None:
    """A signed `$USDC:50$` comment answers 200 with a signing URL, one row and one event."""
    repo = unique_repo()
    payload = comment_payload(
        "Fixing this is worth $USDC:50$ to me.", repo=repo, number=12, login="Alice"
    )
    response = deliver(app.url, secret, payload)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["duplicate"] is False
    assert answer["links"] == []
    assert answer["rejected"] == []
    [intent] = answer["intents"]
    expected_id = eip712.intent_id(repo.lower(), 12, "issue_comment", payload["comment"]["id"], 0)
    assert intent["intent_id"] == expected_id
    assert (intent["denomination"], intent["amount"]) == ("USDC", "50")
    frontend = stack.env_for("github-app")["KDEMO_PUBLIC_URL_FRONTEND"]
    assert intent["signing_url"].startswith(f"{frontend}/sign?t=")

    claims = verify_intent_token(
        intent["signing_url"].split("?t=", 1)[1], stack.secrets.intent_verify_key
    )
    assert (claims.intent_id, claims.repository, claims.number) == (expected_id, repo.lower(), 12)
    assert (claims.kind, claims.source, claims.author_login) == ("issue", "issue_comment", "Alice")
    assert claims.author_id == github_user_id("Alice")
    assert claims.amount == 50

    [row] = query(stack, "SELECT * FROM intents WHERE intent_id = %s", (expected_id,))
    assert row["repository"] == repo.lower()
    assert row["amount"] == 50
    assert row["source_url"] == payload["comment"]["html_url"]
    assert row["html_url"] == payload["issue"]["html_url"]
    assert int(row["expires_at"].timestamp()) == claims.expires_at
    assert abs(claims.expires_at - time.time() - 86400) < 60

    subject = f"kdemo.bounty.requested.{expected_id}"
    assert relayed_count(stack, f"bounty.requested:{expected_id}") == 1
    event = last_event(stack, subject)
    assert event["msg_id"] == f"bounty.requested:{expected_id}"
    assert event["data"]["signing_url"] == intent["signing_url"]
    assert event["data"]["deadline"] == claims.expires_at
    assert event["data"]["author"] == {"id": github_user_id("Alice"), "login": "Alice"}
    assert query(stack, "SELECT id FROM outbox WHERE id = %s", (event["id"],)) == []


@pytest.mark.parametrize(
    ("event", "source", "kind"),
    [
        ("issues", "issue", "issue"),
        ("pull_request", "pull_request", "pull_request"),
        ("pull_request_review_comment", "review_comment", "pull_request"),
    ],
)
def test_every_create_action_is_a_source(
    app: RunningService, stack: Stack, secret: str, event: str, source: str, kind: str
) -> None:
    """An opened issue or pull request and a review comment each record an intent of their kind."""
    repo = unique_repo()
    payload = thread_payload(event, "Bounty: $DAI:7$", repo=repo)
    response = deliver(app.url, secret, payload, event=event)

    assert response.status_code == 200, response.text
    [intent] = response.json()["intents"]
    origin = (
        payload["comment"]
        if source == "review_comment"
        else payload.get("issue", payload.get("pull_request"))
    )
    assert intent["intent_id"] == eip712.intent_id(repo.lower(), 7, source, origin["id"], 0)
    [row] = query(
        stack,
        "SELECT kind, source, source_url FROM intents WHERE intent_id = %s",
        (intent["intent_id"],),
    )
    assert (row["kind"], row["source"], row["source_url"]) == (kind, source, origin["html_url"])


def test_comment_on_a_pull_request_is_of_kind_pull_request(
    app: RunningService, stack: Stack, secret: str
) -> None:
    """An `issue_comment` whose issue carries `pull_request` records a pull_request intent."""
    payload = comment_payload(
        "$ETH:1$", repo=unique_repo(), number=3, login="bob", pull_request=True
    )
    response = deliver(app.url, secret, payload)

    [intent] = response.json()["intents"]
    [row] = query(
        stack, "SELECT kind, source FROM intents WHERE intent_id = %s", (intent["intent_id"],)
    )
    assert (row["kind"], row["source"]) == ("pull_request", "issue_comment")


def test_several_bounties_in_one_comment_are_separate_intents(
    app: RunningService, stack: Stack, secret: str
) -> None:
    """Each bounty in a comment gets its own intent, numbered by its match index."""
    repo = unique_repo()
    payload = comment_payload("$USDC:5$ now and $ETH:2$ later", repo=repo, number=1, login="bob")
    answer = deliver(app.url, secret, payload).json()

    assert [(i["denomination"], i["amount"]) for i in answer["intents"]] == [
        ("USDC", "5"),
        ("ETH", "2"),
    ]
    rows = query(
        stack,
        "SELECT match_index, denomination FROM intents WHERE repository = %s ORDER BY match_index",
        (repo.lower(),),
    )
    assert [(r["match_index"], r["denomination"]) for r in rows] == [(0, "USDC"), (1, "ETH")]


# -- de-duplication -------------------------------------------------------------------------


def test_same_delivery_twice_answers_the_stored_response(
    app: RunningService, stack: Stack, secret: str
) -> None:
    """A repeated delivery id gets the first answer marked duplicate, and nothing new happens:
    no second intent or delivery row, no outbox row, not one more message on the stream."""
    payload = comment_payload("$USDC:9$", repo=unique_repo(), number=2, login="carol")
    delivery = build_delivery(payload, secret)
    first = send(app.url, delivery.body, delivery.headers).json()
    intent_id = first["intents"][0]["intent_id"]
    event_id = f"bounty.requested:{intent_id}"
    assert relayed_count(stack, event_id) == 1
    before = stream_last_seq(stack)

    second = send(app.url, delivery.body, delivery.headers).json()

    assert second["duplicate"] is True
    assert {**second, "duplicate": False} == first  # the whole answer, as stored
    # the answer waited for its transaction, and events leave only through the outbox in it
    assert query(stack, "SELECT 1 FROM outbox WHERE id = %s", (event_id,)) == []
    assert stream_last_seq(stack) == before
    assert len(query(stack, "SELECT 1 FROM intents WHERE intent_id = %s", (intent_id,))) == 1
    rows = query(stack, "SELECT 1 FROM deliveries WHERE delivery_id = %s", (delivery.delivery_id,))
    assert len(rows) == 1


def test_same_comment_under_two_delivery_ids_is_one_intent(
    app: RunningService, stack: Stack, secret: str
) -> None:
    """A delivery replayed under a new delivery id (GitHub's redelivery, or a captured one: the
    id is not signed) answers the same intent and signing URL, and records nothing new: no
    second intent, no second `bounty.requested`."""
    repo = unique_repo()
    payload = comment_payload("$USDC:11$", repo=repo, number=4, login="dave")
    first = deliver(app.url, secret, payload).json()
    intent_id = first["intents"][0]["intent_id"]
    event_id = f"bounty.requested:{intent_id}"
    wait_relayed(stack, event_id)
    before = stream_last_seq(stack)

    second = deliver(app.url, secret, payload).json()

    # the answer waited for its transaction, and events leave only through the outbox in that
    # transaction: with no row queued for the intent, nothing more can be published for it
    assert query(stack, "SELECT 1 FROM outbox WHERE id = %s", (event_id,)) == []
    assert stream_last_seq(stack) == before
    assert bus_count(stack, f"kdemo.bounty.requested.{intent_id}") == 1
    assert second["duplicate"] is False
    assert second["intents"] == first["intents"]
    assert len(query(stack, "SELECT 1 FROM intents WHERE repository = %s", (repo.lower(),))) == 1
    deliveries = query(
        stack,
        "SELECT delivery_id FROM deliveries WHERE delivery_id IN (%s, %s)",
        (first["delivery"], second["delivery"]),
    )
    assert len(deliveries) == 2  # each answer is kept, to be replayed for its own id


@pytest.mark.parametrize("same_delivery_id", [True, False])
def test_concurrent_redeliveries_record_one_intent(
    app: RunningService, stack: Stack, secret: str, same_delivery_id: bool
) -> None:
    """Six deliveries of one comment at once, under one id or six, make one intent and one event."""
    payload = comment_payload("$WBTC:3$", repo=unique_repo(), number=8, login="otto")
    delivery_id = str(uuid.uuid4())
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(
                lambda _: deliver(
                    app.url, secret, payload, delivery_id=delivery_id if same_delivery_id else None
                ),
                range(6),
            )
        )

    assert {a.status_code for a in answers} == {200}
    intents = {json.dumps(a.json()["intents"], sort_keys=True) for a in answers}
    assert len(intents) == 1
    duplicates = sum(a.json()["duplicate"] for a in answers)
    assert duplicates == (5 if same_delivery_id else 0)
    intent_id = answers[0].json()["intents"][0]["intent_id"]
    assert len(query(stack, "SELECT 1 FROM intents WHERE intent_id = %s", (intent_id,))) == 1
    assert relayed_count(stack, f"bounty.requested:{intent_id}") == 1


# -- identity links -------------------------------------------------------------------------


def test_link_pattern_publishes_a_confirmation_and_no_bounty(
    app: RunningService, stack: Stack, secret: str
) -> None:
    """`$link:<code>$` confirms the link for the comment's author and is never a bounty."""
    code = "".join(chr(ord("a") + (b % 26)) for b in uuid.uuid4().bytes * 2)[:28]
    repo = unique_repo()
    payload = comment_payload(f"linking: $link:{code}$", repo=repo, number=5, login="erin")
    response = deliver(app.url, secret, payload)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["links"] == [{"code": code}]
    assert answer["intents"] == []
    assert answer["rejected"] == []
    assert query(stack, "SELECT 1 FROM intents WHERE repository = %s", (repo.lower(),)) == []
    subject = f"kdemo.identity.link_confirmed.{code}"
    assert relayed_count(stack, f"identity.link_confirmed:{code}") == 1
    data = last_event(stack, subject)["data"]
    assert (data["code"], data["github_id"], data["login"]) == (
        code,
        github_user_id("erin"),
        "erin",
    )
    assert data["comment_url"] == payload["comment"]["html_url"]


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=", "sha256=" + "0" * 64, "sha1=abc", "wrong-secret", "tampered"],
)
def test_bad_signature_is_401_and_leaves_no_trace(
    app: RunningService, stack: Stack, secret: str, signature: str | None
) -> None:
    """A missing, empty or wrong signature is refused before parsing: no row, no event. A good
    delivery sent after it is the stream's very next message."""
    repo = unique_repo()
    payload = comment_payload("$USDC:50$", repo=repo, number=1, login="mallory")
    delivery = build_delivery(payload, secret)
    headers = dict(delivery.headers)
    body = delivery.body
    if signature is None:
        del headers["X-Hub-Signature-256"]
    elif signature == "wrong-secret":
        headers["X-Hub-Signature-256"] = signature_header("another-secret-0123456789", body)
    elif signature == "tampered":
        body = body.replace(b"$USDC:50$", b"$USDC:90$")
    else:
        headers["X-Hub-Signature-256"] = signature
    wait_outbox_empty(stack)  # what earlier tests committed is out: the stream is quiet
    before = stream_last_seq(stack)

    response = send(app.url, body, headers)
    sentinel = deliver(
        app.url, secret, comment_payload("$USDC:1$", repo=unique_repo(), number=1, login="sam")
    )

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["field"] == "X-Hub-Signature-256"
    assert error["code"] in {"signature_missing", "signature_invalid"}
    assert "KDEMO_GITHUB_WEBHOOK_SECRET" in error["hint"]
    assert (
        query(stack, "SELECT 1 FROM deliveries WHERE delivery_id = %s", (delivery.delivery_id,))
        == []
    )
    assert query(stack, "SELECT 1 FROM intents WHERE repository = %s", (repo.lower(),)) == []
    intent_id = eip712.intent_id(repo.lower(), 1, "issue_comment", payload["comment"]["id"], 0)
    # Anything the refused delivery had committed would be in the outbox ahead of the
    # sentinel's event, and so on the stream before it.
    assert sentinel.status_code == 200, sentinel.text
    [later] = sentinel.json()["intents"]
    assert relayed_count(stack, f"bounty.requested:{later['intent_id']}") == 1
    assert last_seq_on(stack, f"kdemo.bounty.requested.{later['intent_id']}") == before + 1
    assert bus_count(stack, f"kdemo.bounty.requested.{intent_id}") == 0


def _signed(secret: str, body: bytes, event: str = "issue_comment") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature_header(secret, body),
    }


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"\xff\xfe garbage", b"[1, 2]", b"payload=x", b"[" * 200_000]
)
def test_malformed_json_is_400(app: RunningService, secret: str, body: bytes) -> None:
    """A signed body that is not a JSON object (or nests absurdly deep) is refused, naming it."""
    response = send(app.url, body, _signed(secret, body))

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


def _without(payload: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    node = out
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    del node[last]
    return out


def _with(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    node = out
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return out


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda p: _without(p, "comment.user.id"), "comment.user.id", "missing"),
        (lambda p: _with(p, "comment.user.id", "42"), "comment.user.id", "integer"),
        (lambda p: _with(p, "comment.user.id", True), "comment.user.id", "integer"),
        (lambda p: _with(p, "comment.id", -3), "comment.id", "positive"),
        (lambda p: _without(p, "issue.number"), "issue.number", "missing"),
        (lambda p: _with(p, "issue", "seven"), "issue.number", "missing"),
        (lambda p: _without(p, "comment.body"), "comment.body", "missing"),
        (lambda p: _with(p, "comment.body", 5), "comment.body", "string"),
        (lambda p: _with(p, "repository.full_name", 17), "repository.full_name", "string"),
        (
            lambda p: _with(p, "repository.full_name", "no-slash"),
            "repository.full_name",
            "OWNER/NAME",
        ),
        (lambda p: _with(p, "action", 3), "action", "string"),
        (lambda p: _without(p, "sender"), "sender.login", "missing"),
        (lambda p: _with(p, "comment.html_url", "javascript:x"), "comment.html_url", "URL"),
        (lambda p: _with(p, "comment.user.login", "not a login"), "comment.user.login", "login"),
    ],
)
def test_missing_or_mistyped_field_is_400_naming_it(
    app: RunningService, stack: Stack, secret: str, change: Any, field: str, words: str
) -> None:
    """A counted event whose field is missing or of the wrong type is refused, naming the field."""
    repo = unique_repo()
    payload = change(comment_payload("$USDC:50$", repo=repo, number=1, login="frank"))
    response = deliver(app.url, secret, payload)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert words in error["message"]
    assert field in error["message"]
    assert query(stack, "SELECT 1 FROM intents WHERE repository = %s", (repo.lower(),)) == []


@pytest.mark.parametrize("header", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_missing_github_header_is_400(app: RunningService, secret: str, header: str) -> None:
    """A signed delivery without GitHub's event or delivery header is refused, naming it."""
    body = json.dumps(
        comment_payload("$USDC:1$", repo=unique_repo(), number=1, login="gina")
    ).encode()
    headers = _signed(secret, body)
    del headers[header]
    response = send(app.url, body, headers)

    assert response.status_code == 400
    assert response.json()["error"]["field"] == header


def test_body_over_25_mb_is_413_by_content_length(app: RunningService, secret: str) -> None:
    """A declared body over 25 MB is refused before it is read."""
    body = b" " * (25 * 1024 * 1024 + 1)
    response = send(app.url, body, _signed(secret, body))

    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"


def test_body_over_25_mb_is_413_while_streaming(app: RunningService, secret: str) -> None:
    """A chunked body without Content-Length is counted as it arrives and refused past 25 MB."""

    def chunks() -> Iterator[bytes]:
        for _ in range(26):
            yield b" " * (1024 * 1024)

    headers = _signed(secret, b"")
    response = httpx.post(f"{app.url}/webhook", content=chunks(), headers=headers, timeout=30)

    assert response.status_code == 413
    assert "25 MB" in response.json()["error"]["message"]


def _bot(payload: dict[str, Any]) -> dict[str, Any]:
    return _with(payload, "sender", user("helper", 99, kind="Bot"))


@pytest.mark.parametrize(
    ("event", "change", "reason"),
    [
        ("issue_comment", lambda p: _with(p, "action", "edited"), "only issue_comment.created"),
        ("issue_comment", lambda p: _with(p, "action", "deleted"), "only issue_comment.created"),
        ("issues", lambda p: _with(p, "action", "closed"), "only issues.opened"),
        ("ping", lambda p: {"zen": "Keep it logically awesome.", "hook_id": 1}, "ping"),
        ("push", lambda p: p, "cannot announce a bounty"),
        ("issue_comment", _bot, "bot"),
        ("issue_comment", lambda p: _with(p, "sender", user("renovate[bot]", 98)), "bot"),
        (
            "issue_comment",
            lambda p: _with(p, "comment.body", "thanks, no money"),
            "no bounty or link pattern",
        ),
        (
            "issue_comment",
            lambda p: _with(p, "comment.body", "`$USDC:50$` in code"),
            "no bounty or link pattern",
        ),
        (
            "issue_comment",
            lambda p: _with(p, "comment.body", "> $USDC:50$ quoted"),
            "no bounty or link pattern",
        ),
        (
            "issue_comment",
            lambda p: _with(p, "comment.body", "```\n$USDC:50$\n```"),
            "no bounty or link pattern",
        ),
    ],
)
def test_non_bounty_deliveries_are_202_ignored(
    app: RunningService, stack: Stack, secret: str, event: str, change: Any, reason: str
) -> None:
    """Edits, other events, bots and text without a pattern are ignored with the reason."""
    repo = unique_repo()
    payload = change(comment_payload("$USDC:50$", repo=repo, number=1, login="hank"))
    delivery = build_delivery(payload, secret, event=event)
    response = send(app.url, delivery.body, delivery.headers)

    assert response.status_code == 202, response.text
    assert reason in response.json()["ignored"]
    assert query(stack, "SELECT 1 FROM intents WHERE repository = %s", (repo.lower(),)) == []
    assert (
        query(stack, "SELECT 1 FROM deliveries WHERE delivery_id = %s", (delivery.delivery_id,))
        == []
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("$usdc:050$", "leading zeros"),
        ("$USDC:-5$", "no sign"),
        ("$USDC:1.5$", "whole units"),
        ("$X:5$", "too short"),
        ("$USDC:1000000000000000001$", "at most 10^18"),
        ("$ABC:5$", "supported: DAI, ETH, EURC, USDC, USDT, WBTC, WETH"),
        ("$LINK:5$", "reserved"),
    ],
)
def test_near_misses_are_rejected_with_the_reason(
    app: RunningService, stack: Stack, secret: str, text: str, reason: str
) -> None:
    """Text that looks like a bounty but breaks a rule answers 200 with the reason, no intent."""
    repo = unique_repo()
    payload = comment_payload(f"I offer {text} for this", repo=repo, number=1, login="ivy")
    response = deliver(app.url, secret, payload)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["intents"] == []
    assert answer["links"] == []
    [rejected] = answer["rejected"]
    assert rejected["text"] == text
    assert reason in rejected["reason"]
    assert query(stack, "SELECT 1 FROM intents WHERE repository = %s", (repo.lower(),)) == []


def test_at_most_10_to_the_18_is_accepted(app: RunningService, secret: str) -> None:
    """The largest amount the grammar allows is recorded, as a decimal string."""
    payload = comment_payload(
        "$ETH:1000000000000000000$", repo=unique_repo(), number=1, login="jack"
    )
    [intent] = deliver(app.url, secret, payload).json()["intents"]

    assert intent["amount"] == "1000000000000000000"


# -- operations -----------------------------------------------------------------------------


def test_health_readiness_and_edge_metrics(app: RunningService, secret: str) -> None:
    """/healthz and /readyz answer 200; /metrics counts the webhook, SQL and NATS edges."""
    before = app.edge_requests()
    deliver(app.url, secret, comment_payload("$USDC:3$", repo=unique_repo(), number=1, login="kim"))
    # the outbox relay publishes after the answer: wait_edges_grown polls for it
    edges = {("github", "github-app"): 1, ("github-app", "postgres"): 1, ("github-app", "nats"): 1}
    app.wait_edges_grown(before, edges)

    assert httpx.get(f"{app.url}/healthz").status_code == 200
    assert httpx.get(f"{app.url}/readyz").status_code == 200
