"""The frontend contract: exactly these routes, methods, statuses and JSON keys.

The CLI (`kdemo sign`, `kdemo link-identity`) and the pages' script depend on
them; a change here is a change to DESIGN.md's frontend section.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from nats.js import JetStreamContext
from starlette.routing import Mount

from kdemo.errors import KdemoError
from kdemo.flow.link import get_link_status, request_link
from kdemo.flow.wallet import Wallet, sign_intent
from services.common import eip712, siwe
from services.common.events import encode, make_event
from services.common.intent_tokens import generate_ed25519_keypair, issue_intent_token
from services.frontend.app import create_app
from services.frontend.settings import FrontendSettings
from tests.conftest import RunningService, Stack
from tests.services.test_frontend import (  # shared fixtures and helpers
    JSON,
    KEY_A,
    KEY_B,
    STREAM,
    address_of,
    admin_js,
    client,
    error_of,
    frontend,
    make_claims,
    token_for,
    typed_for,
)
from tests.services.test_frontend_link import handmade_message, personal_sign

pytestmark = pytest.mark.stack
__all__ = ["admin_js", "client", "frontend"]  # fixtures re-exported for pytest

ROUTES = {
    ("GET", "/sign"),
    ("GET", "/api/intents/{token}"),
    ("POST", "/api/signatures"),
    ("GET", "/link"),
    ("GET", "/api/link-message"),
    ("POST", "/api/links"),
    ("GET", "/api/links/{code}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
}
INTENT_KEYS = {
    "intent_id",
    "typed_data",
    "repository",
    "number",
    "kind",
    "html_url",
    "denomination",
    "amount",
    "deadline",
    "expires_at",
}
SIGNED_KEYS = {"status", "intent_id", "address", "redirect"}
LINK_MESSAGE_KEYS = {"message", "nonce", "expires"}
LINK_KEYS = {"code", "expires", "comment"}
LINK_STATUS_KEYS = {"code", "state", "reason", "address", "login", "github_id"}


async def until_not_503(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """GET `path` until frontend reaches identity again (its channel reconnects with backoff)."""
    for _ in range(40):
        response = await client.get(path)
        if response.status_code != 503:
            return response
        await asyncio.sleep(0.25)
    return response


def test_the_app_has_exactly_the_documented_routes(stack: Stack) -> None:
    """The app declares the documented routes and nothing else (plus /static for wallet.js)."""
    settings = FrontendSettings(
        intent_verify_key=stack.secrets.intent_verify_key,
        link_nonce_secret=stack.secrets.link_nonce_secret,
        eip712_salt=stack.secrets.eip712_salt,
    )
    app = create_app(settings)
    documented = {
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    }
    probes = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute) and not route.include_in_schema
        for method in route.methods
    }
    assert documented | probes == ROUTES
    mounts = [route.path for route in app.routes if isinstance(route, Mount)]
    assert mounts == ["/static"]


async def test_signing_contract(
    stack: Stack, client: httpx.AsyncClient, admin_js: JetStreamContext
) -> None:
    """/sign, /api/intents and /api/signatures answer the pinned statuses and keys."""
    claims = make_claims()
    token = token_for(stack, claims)
    forged = issue_intent_token(make_claims(), generate_ed25519_keypair()[0])
    expired = token_for(stack, make_claims(expires_at=1_700_000_000))

    for t, status in ((token, 200), (forged, 401), (expired, 410)):
        page = await client.get("/sign", params={"t": t})
        assert (page.status_code, page.headers["content-type"].split(";")[0]) == (
            status,
            "text/html",
        )

    intent = await client.get(f"/api/intents/{token}")
    assert intent.status_code == 200
    body = intent.json()
    assert set(body) == INTENT_KEYS
    assert set(body["typed_data"]) == {"types", "primaryType", "domain", "message"}
    assert isinstance(body["number"], int)
    assert all(isinstance(body[k], str) for k in ("amount", "deadline", "expires_at"))
    assert body["kind"] in ("issue", "pull_request")
    for t, status in ((forged, 401), (expired, 410)):
        assert (await client.get(f"/api/intents/{t}")).status_code == status

    typed = typed_for(stack, claims)
    post = {
        "token": token,
        "address": address_of(KEY_A),
        "signature": eip712.sign_typed_data(typed, KEY_A),
    }
    first = await client.post("/api/signatures", headers=JSON, json=post)
    again = await client.post("/api/signatures", headers=JSON, json=post)
    assert (first.status_code, set(first.json()), first.json()["status"]) == (
        200,
        SIGNED_KEYS,
        "signed",
    )
    assert (again.status_code, set(again.json()), again.json()["status"]) == (
        200,
        SIGNED_KEYS,
        "already_signed",
    )

    form = await client.post(
        "/api/signatures",
        data={
            "token": token,
            "address": address_of(KEY_B),
            "signature": eip712.sign_typed_data(typed, KEY_B),
        },
    )
    assert (form.status_code, form.headers["location"]) == (303, claims.html_url)

    bad = await client.post("/api/signatures", headers=JSON, json={**post, "signature": "0x1"})
    assert (bad.status_code, error_of(bad)["field"]) == (400, "signature")
    for t, status in ((forged, 401), (expired, 410)):
        answer = await client.post("/api/signatures", headers=JSON, json={**post, "token": t})
        assert (answer.status_code, error_of(answer)["field"]) == (status, "token")

    other = make_claims()
    planted = make_event(
        "bounty.signed",
        key=other.intent_id,
        wallet=address_of(KEY_A),
        source="frontend",
        data={
            "intent_id": other.intent_id,
            "address": address_of(KEY_A),
            "signature": "0x" + "1b" * 65,
            "message": typed_for(stack, other)["message"],
            "chain_id": "1",
            "author_id": other.author_id,
            "html_url": other.html_url,
            "signed_at": "2025-01-01T00:00:00Z",
        },
    )
    await admin_js.publish(
        planted.nats_subject, encode(planted), stream=STREAM, headers={"Nats-Msg-Id": planted.id}
    )
    conflict = await client.post(
        "/api/signatures",
        headers=JSON,
        json={
            "token": token_for(stack, other),
            "address": address_of(KEY_A),
            "signature": eip712.sign_typed_data(typed_for(stack, other), KEY_A),
        },
    )
    assert (conflict.status_code, error_of(conflict)["code"]) == (409, "already_signed")


async def test_linking_contract(
    stack: Stack, frontend: RunningService, client: httpx.AsyncClient, start_service: Any
) -> None:
    """/link, /api/link-message, /api/links and /api/links/<code> answer the pinned shapes."""
    assert (await client.get("/link")).status_code == 200
    message = await client.get(
        "/api/link-message", params={"address": address_of(KEY_A), "login": "dora"}
    )
    assert (message.status_code, set(message.json())) == (200, LINK_MESSAGE_KEYS)
    bad = await client.get("/api/link-message", params={"address": "x", "login": "dora"})
    assert (bad.status_code, error_of(bad)["field"]) == (400, "address")

    text = message.json()["message"]
    created = await client.post(
        "/api/links", headers=JSON, json={"message": text, "signature": personal_sign(text, KEY_A)}
    )
    assert (created.status_code, set(created.json())) == (201, LINK_KEYS)
    code = created.json()["code"]
    other = handmade_message(stack, frontend, domain="elsewhere.example")
    refused = await client.post(
        "/api/links",
        headers=JSON,
        json={"message": other, "signature": personal_sign(other, KEY_A)},
    )
    assert (refused.status_code, error_of(refused)["code"]) == (400, "domain_mismatch")
    # A form post of a fresh message (a message is single use: the same one again is 409).
    fresh = await client.get(
        "/api/link-message", params={"address": address_of(KEY_A), "login": "dora"}
    )
    again = fresh.json()["message"]
    form = await client.post(
        "/api/links", data={"message": again, "signature": personal_sign(again, KEY_A)}
    )
    assert form.status_code == 303
    assert form.headers["location"].startswith("/link?code=")

    assert (await client.get("/api/links/NOTACODE")).status_code == 400
    assert (await client.get(f"/api/links/{code}")).status_code == 503  # identity is down
    start_service("identity")
    unknown = await until_not_503(client, f"/api/links/{siwe.new_link_code()}")
    assert (unknown.status_code, error_of(unknown)["code"]) == (404, "unknown_code")
    for _ in range(100):
        status = await client.get(f"/api/links/{code}")
        if status.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert (status.status_code, set(status.json())) == (200, LINK_STATUS_KEYS)
    assert status.json()["state"] in ("pending", "linked", "refused")


@pytest.mark.parametrize(
    ("path", "status"), [("/healthz", 200), ("/readyz", 200), ("/metrics", 200)]
)
async def test_probe_routes(client: httpx.AsyncClient, path: str, status: int) -> None:
    """The probes and the metrics answer like every other service's."""
    assert (await client.get(path)).status_code == status


def test_cli_client_signs_and_links_through_the_contract(
    stack: Stack, frontend: RunningService, start_service: Any
) -> None:
    """The CLI's own client code (`kdemo sign`, `kdemo link-identity`) works against frontend."""
    claims = make_claims()
    url = f"{frontend.url}/sign?t={token_for(stack, claims)}"
    start_service("identity")
    with httpx.Client(timeout=10) as http:
        result = sign_intent(http, url, Wallet.from_key(KEY_B))
        assert result.redirect == claims.html_url
        assert result.answer["status"] == "signed"
        request = request_link(http, frontend.url, Wallet.from_key(KEY_B), "erin")
        assert request.address == address_of(KEY_B)
        for _ in range(100):
            # identity answers 404 (or pending without a login) until it has read the request
            with contextlib.suppress(KdemoError):
                status = get_link_status(http, frontend.url, request.code)
                if status.login is not None:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("identity never reported the link request")
        assert status.state == "pending"
        assert status.login == "erin"
