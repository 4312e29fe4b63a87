"""frontend's identity-link side: SIWE message, signed post, link code on the bus, status."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from nats.js import JetStreamContext

from services.common import siwe
from tests.conftest import RunningService, Stack
from tests.services.test_frontend import (  # shared fixtures and helpers
    JSON,
    KEY_A,
    KEY_B,
    address_of,
    admin_js,
    client,
    count_on,
    error_of,
    frontend,
    last_event,
)

pytestmark = pytest.mark.stack
STREAM = "KDEMO"
__all__ = ["admin_js", "client", "frontend"]  # fixtures re-exported for pytest

OTHER_SECRET = "22" * 32


def personal_sign(text: str, key: str) -> str:
    signed = Account.sign_message(encode_defunct(text=text), private_key=key)
    return str(signed.signature.to_0x_hex())


def domain_of(svc: RunningService) -> str:
    return svc.url.removeprefix("http://")


def handmade_message(
    stack: Stack,
    svc: RunningService,
    *,
    key: str = KEY_A,
    login: str = "alice",
    domain: str | None = None,
    issued: datetime | None = None,
    ttl: int = 600,
    nonce: str | None = None,
    chain_id: int = 1,
) -> str:
    """A link message built like frontend builds it, with one thing changed."""
    issued = issued or datetime.now(UTC).replace(microsecond=0)
    return siwe.build_link_message(
        domain=domain or domain_of(svc),
        uri=f"{svc.url}/link",
        address=address_of(key),
        login=login,
        chain_id=chain_id,
        nonce=nonce or siwe.issue_nonce(stack.secrets.link_nonce_secret, ttl_s=ttl, now=issued),
        issued_at=issued,
        expires_at=issued + timedelta(seconds=ttl),
    )


async def post_link(client: httpx.AsyncClient, message: str, signature: str) -> httpx.Response:
    return await client.post(
        "/api/links", headers=JSON, json={"message": message, "signature": signature}
    )


# ---- GET /api/link-message ----


async def test_link_message_names_domain_login_and_a_fresh_nonce(
    stack: Stack, frontend: RunningService, client: httpx.AsyncClient
) -> None:
    """The SIWE message carries our public host, the login, chain id 1 and a verifiable nonce."""
    address = address_of(KEY_A)
    response = await client.get(
        "/api/link-message", params={"address": address.lower(), "login": "octo-cat"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"message", "nonce", "expires"}
    parsed = siwe.parse_message(body["message"])
    assert parsed.domain == domain_of(frontend)
    assert parsed.uri == f"{frontend.url}/link"
    assert parsed.address == address
    assert parsed.login == "octo-cat"
    assert parsed.chain_id == 1
    assert parsed.nonce == body["nonce"]
    assert parsed.expires_at == datetime.fromisoformat(body["expires"])
    lifetime = (parsed.expires_at - parsed.issued_at).total_seconds()
    assert lifetime == 900
    expiry = siwe.verify_nonce(body["nonce"], stack.secrets.link_nonce_secret)
    assert abs((expiry - parsed.expires_at).total_seconds()) <= 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"address": "0x1234", "login": "alice"}, "address", id="address-short"),
        pytest.param({"address": "11" * 20, "login": "alice"}, "address", id="address-no-0x"),
        pytest.param({"address": "0x" + "11" * 20, "login": "-alice"}, "login", id="login-hyphen"),
        pytest.param({"address": "0x" + "11" * 20, "login": "a" * 40}, "login", id="login-long"),
        pytest.param({"address": "0x" + "11" * 20}, "login", id="login-missing"),
        pytest.param({"login": "alice"}, "address", id="address-missing"),
    ],
)
async def test_link_message_refuses_bad_fields(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    """A bad or missing address or login is 400 naming the field."""
    response = await client.get("/api/link-message", params=params)
    assert response.status_code == 400
    assert error_of(response)["field"] == field


# ---- POST /api/links ----


async def test_signed_link_message_publishes_a_link_request(
    stack: Stack, client: httpx.AsyncClient, admin_js: JetStreamContext
) -> None:
    """A signed message is 201 with a 28-letter code, and `identity.link_requested` carries it."""
    address = address_of(KEY_B)
    got = (
        await client.get("/api/link-message", params={"address": address, "login": "bob"})
    ).json()
    signature = personal_sign(got["message"], KEY_B)
    response = await post_link(client, got["message"], signature)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"code", "expires", "comment"}
    code = body["code"]
    assert re.fullmatch(r"[a-z]{28}", code)
    assert body["comment"] == f"$link:{code}$"
    subject = f"kdemo.identity.link_requested.{code}"
    assert await count_on(admin_js, subject) == 1
    event = await last_event(admin_js, subject)
    assert event["id"] == f"identity.link_requested:{code}"
    assert event["data"] == {
        "code": code,
        "address": address,
        "login": "bob",
        "message": got["message"],
        "signature": signature,
        "nonce": got["nonce"],
        "expires_at": body["expires"],
    }


async def test_link_form_post_redirects_to_the_code(
    stack: Stack, frontend: RunningService, client: httpx.AsyncClient
) -> None:
    """A plain form post is answered 303 to the link page showing the new code."""
    message = handmade_message(stack, frontend)
    response = await client.post(
        "/api/links", data={"message": message, "signature": personal_sign(message, KEY_A)}
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/link\?code=[a-z]{28}", location)
    page = await client.get(location)
    assert page.status_code == 200
    assert f"$link:{location.rsplit('=', 1)[1]}$" in page.text


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        pytest.param(
            {"domain": "evil.example.com"}, 400, "domain_mismatch", "message", id="another-domain"
        ),
        pytest.param({"chain_id": 5}, 400, "chain_mismatch", "message", id="another-chain"),
        pytest.param(
            {"issued": datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)},
            400,
            "expired",
            "message",
            id="message-expired",
        ),
        pytest.param(
            {"nonce": siwe.issue_nonce(OTHER_SECRET, ttl_s=600)},
            400,
            "bad_nonce",
            "message",
            id="nonce-from-another-deployment",
        ),
        pytest.param(
            {"nonce": "abcdefgh12345678"}, 400, "bad_nonce", "message", id="nonce-made-up"
        ),
    ],
)
async def test_link_post_refuses_messages_it_did_not_issue(
    stack: Stack,
    frontend: RunningService,
    client: httpx.AsyncClient,
    change: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    """Another domain or chain, an expired message or a foreign nonce is refused with the reason."""
    message = handmade_message(stack, frontend, **change)
    response = await post_link(client, message, personal_sign(message, KEY_A))
    assert response.status_code == status, response.text
    error = error_of(response)
    assert (error["code"], error["field"]) == (code, field)


async def test_link_post_with_expired_nonce_is_gone(
    stack: Stack, frontend: RunningService, client: httpx.AsyncClient
) -> None:
    """A message still valid but carrying an expired nonce is 410: fetch a new message."""
    past = datetime.now(UTC) - timedelta(hours=1)
    nonce = siwe.issue_nonce(stack.secrets.link_nonce_secret, ttl_s=60, now=past)
    message = handmade_message(stack, frontend, nonce=nonce)
    response = await post_link(client, message, personal_sign(message, KEY_A))
    assert response.status_code == 410
    assert error_of(response)["code"] == "nonce_expired"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        pytest.param("wrong-signer", "signer_mismatch", "signature", id="wrong-signer"),
        pytest.param("bad-signature", "bad_signature", "signature", id="signature-short"),
        pytest.param("edited", "signer_mismatch", "signature", id="login-edited-after-signing"),
        pytest.param("garbage", "malformed", "message", id="not-a-siwe-message"),
    ],
)
async def test_link_post_refuses_bad_signatures(
    stack: Stack,
    frontend: RunningService,
    client: httpx.AsyncClient,
    body: str,
    code: str,
    field: str,
) -> None:
    """A signature by another key, a malformed one or an edited message is 400 with the reason."""
    message = handmade_message(stack, frontend)
    signature = personal_sign(message, KEY_A)
    if body == "wrong-signer":
        signature = personal_sign(message, KEY_B)
    elif body == "bad-signature":
        signature = "0xdeadbeef"
    elif body == "edited":
        message = message.replace("account alice on", "account mallory on")
    elif body == "garbage":
        message = "please link me"
    response = await post_link(client, message, signature)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["field"]) == (code, field)


async def _last_seq(js: JetStreamContext) -> int:
    return int((await js.stream_info(STREAM)).state.last_seq)


async def _fresh_link(client: httpx.AsyncClient, key: str, login: str) -> httpx.Response:
    got = (
        await client.get("/api/link-message", params={"address": address_of(key), "login": login})
    ).json()
    return await post_link(client, got["message"], personal_sign(got["message"], key))


@pytest.mark.parametrize("replay", ["same-post", "same-nonce-other-login", "form-post"])
async def test_replayed_link_message_is_refused_and_publishes_nothing(
    stack: Stack,
    frontend: RunningService,
    client: httpx.AsyncClient,
    admin_js: JetStreamContext,
    replay: str,
) -> None:
    """A signed message posted again (or its nonce signed again for another login) is 409
    `nonce_used` before anything is published: its code derives from the nonce, so the second
    link request is a bus duplicate. A later post is the stream's very next message."""
    message = handmade_message(stack, frontend, key=KEY_B, login="bob")
    first = await post_link(client, message, personal_sign(message, KEY_B))
    assert first.status_code == 201, first.text
    code = first.json()["code"]
    before = await _last_seq(admin_js)

    if replay == "same-post":
        again = await post_link(client, message, personal_sign(message, KEY_B))
    else:
        other = message.replace("account bob on", "account mallory on")
        form = {"message": other, "signature": personal_sign(other, KEY_B)}
        if replay == "form-post":
            again = await client.post("/api/links", data=form)
        else:
            again = await client.post("/api/links", headers=JSON, json=form)
    sentinel = await _fresh_link(client, KEY_A, "carol")

    assert again.status_code == 409, again.text
    if replay == "form-post":
        assert again.headers["content-type"].startswith("text/html")
        assert "GET /api/link-message" in again.text
    else:
        error = error_of(again)
        assert (error["code"], error["field"]) == ("nonce_used", "message")
        assert "GET /api/link-message" in error["hint"]
        assert code not in again.text  # a replayer learns nothing of the first code
    assert sentinel.status_code == 201, sentinel.text
    sentinel_subject = f"kdemo.identity.link_requested.{sentinel.json()['code']}"
    assert (await admin_js.get_last_msg(STREAM, sentinel_subject)).seq == before + 1
    assert await count_on(admin_js, f"kdemo.identity.link_requested.{code}") == 1


@pytest.mark.parametrize("missing", ["message", "signature"])
async def test_link_post_names_a_missing_field(client: httpx.AsyncClient, missing: str) -> None:
    """A post without `message` or `signature` is 400 naming it."""
    body = {"message": "m", "signature": "0x00"}
    del body[missing]
    response = await client.post("/api/links", headers=JSON, json=body)
    assert response.status_code == 400
    assert error_of(response)["field"] == missing


# ---- GET /api/links/<code> and the page ----


@pytest.mark.parametrize("code", ["short", "a" * 27, "A" * 28, "a" * 27 + "1"])
async def test_link_status_refuses_malformed_codes(client: httpx.AsyncClient, code: str) -> None:
    """A code that is not 28 lower-case letters is 400 on `code`, before asking identity."""
    response = await client.get(f"/api/links/{code}")
    assert response.status_code == 400
    assert error_of(response)["field"] == "code"


async def test_link_status_without_identity_is_503(client: httpx.AsyncClient) -> None:
    """When identity cannot be reached the status route answers 503, not a hang."""
    response = await client.get(f"/api/links/{siwe.new_link_code()}")
    assert response.status_code == 503
    assert error_of(response)["code"] == "identity_unavailable"


async def test_link_status_reports_identity_verdicts(
    stack: Stack, client: httpx.AsyncClient, start_service: Any
) -> None:
    """With identity up: an unknown code is 404, a requested one becomes `pending`."""
    start_service("identity")
    unknown = await client.get(f"/api/links/{siwe.new_link_code()}")
    assert unknown.status_code == 404
    assert error_of(unknown)["code"] == "unknown_code"
    got = (
        await client.get(
            "/api/link-message", params={"address": address_of(KEY_A), "login": "carol"}
        )
    ).json()
    posted = await post_link(client, got["message"], personal_sign(got["message"], KEY_A))
    code = posted.json()["code"]
    for _ in range(100):
        status = await client.get(f"/api/links/{code}")
        if status.status_code == 200 and status.json()["login"]:
            break  # identity has read the request from the bus
        await asyncio.sleep(0.1)
    assert status.status_code == 200, status.text
    body = status.json()
    assert set(body) == {"code", "state", "reason", "address", "login", "github_id"}
    assert body["code"] == code
    assert body["state"] == "pending"
    assert body["login"] == "carol"
    assert body["address"] == address_of(KEY_A)
    assert body["github_id"] is None


async def test_link_page_offers_login_wallet_and_cli(client: httpx.AsyncClient) -> None:
    """The link page asks for the GitHub login, connects the wallet and shows the CLI twin."""
    response = await client.get("/link")
    assert response.status_code == 200
    for text in (
        'id="login"',
        "Connect wallet",
        "Sign with wallet",
        "kdemo link-identity",
        "/static/wallet.js",
    ):
        assert text in response.text, text


async def test_link_page_refuses_a_malformed_code(client: httpx.AsyncClient) -> None:
    """`/link?code=` with something that is not a code is a 400 page."""
    response = await client.get("/link", params={"code": "<script>"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "<script>" not in response.text
