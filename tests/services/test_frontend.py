"""frontend's signing side, against the real process and a real nats-server.

gateway and identity are not running here: the signing page must still work
(without totals), and nothing on the signing path needs them.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from eth_account import Account
from nats.js import JetStreamContext

from services.common import eip712, siwe
from services.common.events import decode, encode, make_event
from services.common.intent_tokens import (
    IntentClaims,
    generate_ed25519_keypair,
    issue_intent_token,
)
from tests.conftest import RunningService, Stack, launch

pytestmark = pytest.mark.stack

STREAM = "KDEMO"
KEY_A = "0x" + "a1" * 32
KEY_B = "0x" + "b2" * 32


# ---- shared helpers (also imported by the other frontend test modules) ----


@pytest.fixture(scope="module")
def frontend(stack: Stack) -> Iterator[RunningService]:
    """One frontend process for the module: the tests never share an intent or a code."""
    svc = launch(stack, "frontend")
    yield svc
    svc.stop()


@pytest.fixture
async def client(frontend: RunningService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=frontend.url, timeout=10) as http:
        yield http


@pytest.fixture
async def admin_js(stack: Stack) -> AsyncIterator[JetStreamContext]:
    """A JetStream context as the admin bus user, to read (and plant) events."""
    nc = await nats.connect(**stack.connect_kwargs("admin"))
    yield nc.jetstream()
    await nc.drain()


def make_claims(**overrides: Any) -> IntentClaims:
    """Claims of a fresh intent on a repository no other test uses."""
    repository = f"octo-{uuid.uuid4().hex[:10]}/demo"
    number = random.randint(1, 100_000)
    source_id = random.randint(1, 10**12)
    claims = IntentClaims(
        intent_id=eip712.intent_id(repository, number, "issue_comment", source_id, 0),
        repository=repository,
        number=number,
        kind="issue",
        source="issue_comment",
        source_id=source_id,
        html_url=f"https://github.com/{repository}/issues/{number}",
        denomination="USDC",
        amount=50,
        author_id=4242,
        author_login="alice",
        expires_at=int(time.time()) + 3600,
    )
    return replace(claims, **overrides)


def token_for(stack: Stack, claims: IntentClaims) -> str:
    return issue_intent_token(claims, stack.secrets.intent_signing_key)


def typed_for(stack: Stack, claims: IntentClaims, **overrides: Any) -> dict[str, Any]:
    """The typed data frontend should serve for `claims` (overrides tamper with it)."""
    fields: dict[str, Any] = {
        "intent_id": claims.intent_id,
        "repository": claims.repository,
        "number": claims.number,
        "source": claims.source,
        "source_id": claims.source_id,
        "denomination": claims.denomination,
        "amount": claims.amount,
        "deadline": claims.expires_at,
        "chain_id": 1,
        "salt": stack.secrets.eip712_salt,
    }
    fields.update(overrides)
    return eip712.bounty_typed_data(**fields)


def address_of(key: str) -> str:
    return str(Account.from_key(key).address)


def signed_subject(intent_id: str, address: str) -> str:
    return f"kdemo.bounty.signed.{intent_id}.{address.lower()}"


async def count_on(js: JetStreamContext, subject: str) -> int:
    """How many messages the stream holds on exactly `subject`."""
    info = await js.stream_info(STREAM, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


async def last_event(js: JetStreamContext, subject: str) -> dict[str, Any]:
    """The last event on `subject`, decoded and schema-checked like a consumer would."""
    msg = await js.get_msg(STREAM, subject=subject)
    event = decode(msg.data or b"", subject)
    return {"id": event.id, "data": event.data, "headers": msg.headers or {}}


JSON = {"Accept": "application/json"}


async def post_signature(
    client: httpx.AsyncClient,
    token: str,
    key: str,
    signature: str | None = None,
    typed: dict[str, Any] | None = None,
    stack: Stack | None = None,
) -> httpx.Response:
    address = address_of(key)
    if signature is None:
        assert typed is not None
        signature = eip712.sign_typed_data(typed, key)
    return await client.post(
        "/api/signatures",
        headers=JSON,
        json={"token": token, "address": address, "signature": signature},
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "field", "hint"}
    return error


# ---- GET /api/intents/<token> ----


async def test_intent_json_is_rebuilt_from_the_verified_token(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    """The intent document carries the one builder's typed data with this deployment's salt."""
    claims = make_claims(amount=10**18, denomination="ETH")
    response = await client.get(f"/api/intents/{token_for(stack, claims)}")
    assert response.status_code == 200
    body = response.json()
    assert body["typed_data"] == typed_for(stack, claims)
    assert body["typed_data"]["message"]["amount"] == str(10**18)
    assert body["typed_data"]["domain"]["salt"] == stack.secrets.eip712_salt
    assert body["intent_id"] == claims.intent_id
    assert body["amount"] == str(10**18)
    assert body["deadline"] == str(claims.expires_at)
    assert body["html_url"] == claims.html_url


def _expired_claims() -> IntentClaims:
    return make_claims(expires_at=int(time.time()) - 5)


@pytest.mark.parametrize(
    ("make_token", "status", "code"),
    [
        pytest.param(
            lambda s: issue_intent_token(make_claims(), generate_ed25519_keypair()[0]),
            401,
            "token_invalid",
            id="forged",
        ),
        pytest.param(lambda s: token_for(s, _expired_claims()), 410, "token_expired", id="expired"),
        pytest.param(
            lambda s: siwe.issue_nonce(s.secrets.link_nonce_secret, ttl_s=600),
            401,
            "token_invalid",
            id="link-nonce",
        ),
        pytest.param(
            lambda s: token_for(s, make_claims())[:-4] + "AAAA", 401, "token_invalid", id="tampered"
        ),
    ],
)
async def test_intent_refuses_bad_tokens(
    stack: Stack,
    client: httpx.AsyncClient,
    make_token: Callable[[Stack], str],
    status: int,
    code: str,
) -> None:
    """Forged, tampered or foreign tokens are 401 and expired ones 410, with the JSON error."""
    response = await client.get(f"/api/intents/{make_token(stack)}")
    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code
    assert error["field"] == "token"


# ---- POST /api/signatures ----


async def test_signature_publishes_exactly_one_event(
    stack: Stack, client: httpx.AsyncClient, admin_js: JetStreamContext
) -> None:
    """A valid signature is 200 and one `bounty.signed` whose data rebuilds the typed data."""
    claims = make_claims()
    token = token_for(stack, claims)
    typed = typed_for(stack, claims)
    response = await post_signature(client, token, KEY_A, typed=typed)
    assert response.status_code == 200, response.text
    address = address_of(KEY_A)
    assert response.json() == {
        "status": "signed",
        "intent_id": claims.intent_id,
        "address": address,
        "redirect": claims.html_url,
    }
    subject = signed_subject(claims.intent_id, address)
    assert await count_on(admin_js, subject) == 1
    event = await last_event(admin_js, subject)
    assert event["id"] == f"bounty.signed:{claims.intent_id}:{address.lower()}"
    assert event["headers"]["Nats-Msg-Id"] == event["id"]
    data = event["data"]
    assert data["message"] == typed["message"]
    assert data["address"] == address
    assert data["chain_id"] == "1"
    assert data["author_id"] == claims.author_id
    assert eip712.recover_signer(typed, data["signature"]) == address


async def test_same_wallet_same_signature_is_idempotent(
    stack: Stack, client: httpx.AsyncClient, admin_js: JetStreamContext
) -> None:
    """Posting the same signature twice is 200 `already_signed` and still one event: the
    signature of another intent posted after it is the stream's very next message."""
    claims = make_claims()
    token = token_for(stack, claims)
    signature = eip712.sign_typed_data(typed_for(stack, claims), KEY_A)
    first = await post_signature(client, token, KEY_A, signature)
    before = int((await admin_js.stream_info(STREAM)).state.last_seq)
    second = await post_signature(client, token, KEY_A, signature.upper().replace("0X", "0x"))
    later = make_claims()
    sentinel = await post_signature(
        client, token_for(stack, later), KEY_A, typed=typed_for(stack, later)
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["status"] == "signed"
    assert second.json()["status"] == "already_signed"
    assert sentinel.status_code == 200, sentinel.text
    sentinel_msg = await admin_js.get_last_msg(
        STREAM, signed_subject(later.intent_id, address_of(KEY_A))
    )
    assert sentinel_msg.seq == before + 1
    assert await count_on(admin_js, signed_subject(claims.intent_id, address_of(KEY_A))) == 1


async def test_same_wallet_other_signature_conflicts(
    stack: Stack, client: httpx.AsyncClient, admin_js: JetStreamContext
) -> None:
    """When the bus already holds another signature from this wallet, the post is 409."""
    claims = make_claims()
    token = token_for(stack, claims)
    typed = typed_for(stack, claims)
    address = address_of(KEY_A)
    earlier = eip712.sign_typed_data(
        typed_for(stack, claims, deadline=claims.expires_at - 1), KEY_A
    )
    planted = make_event(
        "bounty.signed",
        key=claims.intent_id,
        wallet=address,
        source="frontend",
        data={
            "intent_id": claims.intent_id,
            "address": address,
            "signature": earlier,
            "message": typed["message"],
            "chain_id": "1",
            "author_id": claims.author_id,
            "html_url": claims.html_url,
            "signed_at": "2025-01-01T00:00:00Z",
        },
    )
    await admin_js.publish(
        planted.nats_subject, encode(planted), stream=STREAM, headers={"Nats-Msg-Id": planted.id}
    )
    response = await post_signature(client, token, KEY_A, typed=typed)
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "already_signed"
    assert claims.html_url in error["message"]
    assert await count_on(admin_js, signed_subject(claims.intent_id, address)) == 1


async def test_another_wallet_is_another_offer(
    stack: Stack, client: httpx.AsyncClient, admin_js: JetStreamContext
) -> None:
    """A second wallet's signature of the same intent is 200 `offer` and a second event;
    the first wallet signing again is still `already_signed`."""
    claims = make_claims()
    token = token_for(stack, claims)
    typed = typed_for(stack, claims)
    statuses = []
    for key in (KEY_A, KEY_B, KEY_A):
        response = await post_signature(client, token, key, typed=typed)
        assert response.status_code == 200
        statuses.append(response.json()["status"])
    assert statuses == ["signed", "offer", "already_signed"]
    counts = [
        await count_on(admin_js, signed_subject(claims.intent_id, address_of(k)))
        for k in (KEY_A, KEY_B)
    ]
    assert counts == [1, 1]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"amount": 5000}, id="amount-changed"),
        pytest.param({"deadline": 2**40}, id="deadline-changed"),
        pytest.param({"salt": "0x" + "00" * 32}, id="other-deployment-salt"),
        pytest.param({"chain_id": 5}, id="other-chain"),
    ],
)
async def test_signature_over_other_data_is_refused(
    stack: Stack, client: httpx.AsyncClient, admin_js: JetStreamContext, tamper: dict[str, Any]
) -> None:
    """A signature over typed data that differs from the token's is 400 on `signature`."""
    claims = make_claims()
    response = await post_signature(
        client, token_for(stack, claims), KEY_A, typed=typed_for(stack, claims, **tamper)
    )
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["field"]) == ("signature_mismatch", "signature")
    assert f"not made by {address_of(KEY_A)}" in error["message"]
    assert await count_on(admin_js, signed_subject(claims.intent_id, address_of(KEY_A))) == 0


def _sibling(claims: IntentClaims) -> IntentClaims:
    """The comment's next bounty: same issue and comment, match index 1, a larger amount."""
    intent = eip712.intent_id(claims.repository, claims.number, claims.source, claims.source_id, 1)
    return replace(claims, intent_id=intent, amount=claims.amount * 100)


@pytest.mark.parametrize(
    "make_other",
    [
        pytest.param(lambda a: make_claims(), id="another-issue"),
        pytest.param(_sibling, id="next-bounty-of-the-same-comment"),
    ],
)
async def test_signature_for_another_intent_is_refused_and_publishes_nothing(
    stack: Stack,
    client: httpx.AsyncClient,
    admin_js: JetStreamContext,
    make_other: Callable[[IntentClaims], IntentClaims],
) -> None:
    """A genuine signature of intent A posted with intent B's token is 400 `signature_mismatch`:
    frontend checks it against the typed data it rebuilds from B's token. Nothing is published:
    the same signature then posted for A is the stream's very next message."""
    a = make_claims()
    b = make_other(a)
    signature = eip712.sign_typed_data(typed_for(stack, a), KEY_A)
    address = address_of(KEY_A)
    before = int((await admin_js.stream_info(STREAM)).state.last_seq)

    replayed = await post_signature(client, token_for(stack, b), KEY_A, signature)
    genuine = await post_signature(client, token_for(stack, a), KEY_A, signature)

    assert replayed.status_code == 400, replayed.text
    error = error_of(replayed)
    assert (error["code"], error["field"]) == ("signature_mismatch", "signature")
    assert genuine.status_code == 200, genuine.text
    assert genuine.json()["status"] == "signed"
    signed_a = await admin_js.get_last_msg(STREAM, signed_subject(a.intent_id, address))
    assert signed_a.seq == before + 1
    assert await count_on(admin_js, signed_subject(b.intent_id, address)) == 0


async def test_signature_by_another_key_is_refused(stack: Stack, client: httpx.AsyncClient) -> None:
    """A signature made by key B but posted for wallet A is 400."""
    claims = make_claims()
    signature = eip712.sign_typed_data(typed_for(stack, claims), KEY_B)
    response = await post_signature(client, token_for(stack, claims), KEY_A, signature)
    assert response.status_code == 400
    assert error_of(response)["code"] == "signature_mismatch"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        pytest.param(
            {"address": "0x" + "11" * 20, "signature": "0x" + "22" * 65},
            400,
            "token",
            id="token-missing",
        ),
        pytest.param(
            {"token": "T", "signature": "0x" + "22" * 65}, 400, "address", id="address-missing"
        ),
        pytest.param(
            {"token": "T", "address": "0x" + "11" * 20}, 400, "signature", id="signature-missing"
        ),
        pytest.param(
            {"token": "T", "address": "0x1234", "signature": "0x" + "22" * 65},
            400,
            "address",
            id="address-short",
        ),
        pytest.param(
            {"token": "T", "address": "0x" + "11" * 20, "signature": "0xdead"},
            400,
            "signature",
            id="signature-short",
        ),
        pytest.param(
            {"token": "T", "address": "0x" + "11" * 20, "signature": 7},
            400,
            "signature",
            id="signature-not-text",
        ),
        pytest.param(
            {"token": "not-a-token", "address": "0x" + "11" * 20, "signature": "0x" + "22" * 65},
            401,
            "token",
            id="token-garbage",
        ),
    ],
)
async def test_malformed_signature_posts_name_the_field(
    stack: Stack, client: httpx.AsyncClient, body: dict[str, Any], status: int, field: str
) -> None:
    """Every malformed post is refused with the status and the field that is wrong."""
    if body.get("token") == "T":
        body = {**body, "token": token_for(stack, make_claims())}
    response = await client.post("/api/signatures", headers=JSON, json=body)
    assert response.status_code == status
    assert error_of(response)["field"] == field


async def test_bad_checksum_address_is_refused(stack: Stack, client: httpx.AsyncClient) -> None:
    """A mixed-case address with a wrong EIP-55 checksum is a typo, refused on `address`."""
    claims = make_claims()
    good = address_of(KEY_A)
    flipped = good[:2] + "".join(c.swapcase() if c.isalpha() else c for c in good[2:])
    signature = eip712.sign_typed_data(typed_for(stack, claims), KEY_A)
    response = await client.post(
        "/api/signatures",
        headers=JSON,
        json={"token": token_for(stack, claims), "address": flipped, "signature": signature},
    )
    assert response.status_code == 400
    assert error_of(response)["field"] == "address"


async def test_expired_token_post_is_gone(stack: Stack, client: httpx.AsyncClient) -> None:
    """A signature posted with an expired token is 410, even if the signature is right."""
    claims = _expired_claims()
    response = await post_signature(
        client, token_for(stack, claims), KEY_A, typed=typed_for(stack, claims)
    )
    assert response.status_code == 410


async def test_form_post_redirects_to_the_issue(
    stack: Stack, client: httpx.AsyncClient, admin_js: JetStreamContext
) -> None:
    """A plain form post is answered 303 to the issue, and the event is published."""
    claims = make_claims(
        kind="pull_request", source="review_comment", html_url="https://github.com/o/r/pull/3"
    )
    signature = eip712.sign_typed_data(typed_for(stack, claims), KEY_B)
    response = await client.post(
        "/api/signatures",
        data={
            "token": token_for(stack, claims),
            "address": address_of(KEY_B).lower(),
            "signature": signature,
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == claims.html_url
    assert await count_on(admin_js, signed_subject(claims.intent_id, address_of(KEY_B))) == 1


async def test_form_post_error_is_an_html_page(stack: Stack, client: httpx.AsyncClient) -> None:
    """A plain form post with a bad signature gets an HTML page that says why."""
    claims = make_claims()
    response = await client.post(
        "/api/signatures",
        data={
            "token": token_for(stack, claims),
            "address": address_of(KEY_A),
            "signature": "0x" + "22" * 65,
        },
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "signature" in response.text


# ---- GET /sign ----


async def test_sign_page_describes_the_intent_without_gateway(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    """The page names repository, number, amount, denomination and deadline; totals unavailable."""
    claims = make_claims(denomination="DAI", amount=1234)
    response = await client.get("/sign", params={"t": token_for(stack, claims)})
    assert response.status_code == 200
    page = response.text
    for text in (
        claims.repository,
        f"#{claims.number}",
        "1234 DAI",
        "Sign with wallet",
        "Totals unavailable",
        "kdemo sign",
        "/static/wallet.js",
        claims.intent_id,
    ):
        assert text in page, text
    assert "https://" not in page.replace(claims.html_url, "")  # no CDN, no external font
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("make_token", "status", "title"),
    [
        pytest.param(
            lambda s: issue_intent_token(make_claims(), generate_ed25519_keypair()[0]),
            401,
            "not valid",
            id="forged",
        ),
        pytest.param(lambda s: token_for(s, _expired_claims()), 410, "expired", id="expired"),
        pytest.param(lambda s: "", 400, "No signing token", id="missing"),
    ],
)
async def test_sign_page_errors_are_pages(
    stack: Stack,
    client: httpx.AsyncClient,
    make_token: Callable[[Stack], str],
    status: int,
    title: str,
) -> None:
    """A forged token is a 401 page, an expired one a 410 page, a missing one a 400 page."""
    response = await client.get("/sign", params={"t": make_token(stack)})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert title in response.text


async def test_static_wallet_script_is_local(client: httpx.AsyncClient) -> None:
    """wallet.js is served locally and speaks EIP-6963 and the two signing methods."""
    response = await client.get("/static/wallet.js")
    assert response.status_code == 200
    for text in (
        "eip6963:requestProvider",
        "window.ethereum",
        "eth_requestAccounts",
        "eth_signTypedData_v4",
        "personal_sign",
        "application/json",
    ):
        assert text in response.text, text


async def test_metrics_count_incoming_and_bus_edges(
    stack: Stack, frontend: RunningService, client: httpx.AsyncClient
) -> None:
    """/metrics counts browser→frontend requests and frontend→nats publishes."""
    before = await asyncio.to_thread(frontend.edge_requests)
    claims = make_claims()
    response = await post_signature(
        client, token_for(stack, claims), KEY_A, typed=typed_for(stack, claims)
    )
    assert response.status_code == 200, response.text
    grown = {("browser", "frontend"): 1, ("frontend", "nats"): 1}
    await asyncio.to_thread(frontend.wait_edges_grown, before, grown)
    assert json.loads((await client.get("/readyz")).text) == {"status": "ready"}


async def test_sign_page_shows_gateway_totals(
    stack: Stack, client: httpx.AsyncClient, start_service: Callable[..., RunningService]
) -> None:
    """With gateway up, the page lists the issue's totals and this intent's signature."""
    for name in ("calc", "identity", "gateway"):
        start_service(name)
    claims = make_claims(denomination="USDC", amount=777)
    token = token_for(stack, claims)
    response = await post_signature(client, token, KEY_A, typed=typed_for(stack, claims))
    assert response.status_code == 200
    for _ in range(60):
        page = (await client.get("/sign", params={"t": token})).text
        if address_of(KEY_A).lower() in page.lower():
            break
        await asyncio.sleep(0.25)
    assert "Totals unavailable" not in page
    assert "<td>USDC</td><td>1</td><td>777</td>" in page
    assert f"signed by <code>{address_of(KEY_A).lower()}" in page.lower()


def test_wallet_script_parses_in_node() -> None:
    """wallet.js is valid JavaScript (node parses it without running it)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = Path(__file__).resolve().parents[2] / "services/frontend/static/wallet.js"
    result = subprocess.run(
        [node, "--check", str(script)], capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KDEMO_EIP712_SALT", "0x1234"),
        ("KDEMO_LINK_NONCE_SECRET", "not-hex"),
        ("KDEMO_INTENT_VERIFY_KEY", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"),
        ("KDEMO_PUBLIC_URL_FRONTEND", "ftp://example"),
    ],
)
def test_bad_settings_stop_the_process_naming_the_variable(
    stack: Stack, variable: str, value: str
) -> None:
    """A bad setting makes the process exit 2 with one line naming the variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDEMO_")}
    env |= stack.env_for("frontend", {variable: value})
    result = subprocess.run(
        [sys.executable, "-m", "services.frontend"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    assert variable in result.stderr
