"""Linking a wallet to a GitHub account: the page, the SIWE message, the signed post, the status.

frontend builds the EIP-4361 message (its own public host as the domain, a
stateless HMAC nonce), verifies the signed message and the nonce, then hands the
request to identity through the bus (`identity.link_requested`) with a one-time
code the user comments as `$link:<code>$`. identity pairs both halves and makes
nonces and codes single-use; frontend only reports its verdict (`LinkStatus`).
The code is derived from the message's nonce, so a replayed message is a bus
duplicate that frontend refuses (409) before anything new is published.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import grpc
from eth_utils.address import is_hex_address, to_checksum_address
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.common import siwe
from services.common.event_models import LinkRequested
from services.common.events import make_event
from services.common.httpapp import ApiError, error_responses
from services.common.timefmt import rfc3339
from services.protos import identity_pb2, identity_pb2_grpc

from .models import (
    AddressQuery,
    CodePath,
    CodeQuery,
    LinkCreated,
    LinkMessage,
    LinkRequest,
    LinkStatus,
    LoginQuery,
    page_responses,
    post_body,
    post_responses,
)
from .state import Frontend, FrontendDep, PageError, read_body, text_field

__all__ = ["IDENTITY_TIMEOUT_S", "link_message", "link_status", "router"]

log = logging.getLogger(__name__)
router = APIRouter()

IDENTITY_TIMEOUT_S = 3.0
_CODE = re.compile(rf"[a-z]{{{siwe.LINK_CODE_LENGTH}}}")
_STATES = {
    identity_pb2.LINK_STATE_PENDING: "pending",
    identity_pb2.LINK_STATE_LINKED: "linked",
    identity_pb2.LINK_STATE_REFUSED: "refused",
}
# SiweError reasons that concern the signature rather than the message text
_SIGNATURE_REASONS = {"bad_signature", "signer_mismatch"}


def link_message(frontend: Frontend, address: str, login: str) -> LinkMessage:
    """`GET /api/link-message`: the SIWE text naming (address, login), valid for the link TTL."""
    if not address.startswith("0x") or not is_hex_address(address):
        raise ApiError(
            400,
            "invalid_address",
            f"address: {address!r:.60} is not an Ethereum address",
            field="address",
            hint="send 0x followed by 40 hex digits",
        )
    settings = frontend.settings
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + timedelta(seconds=settings.link_ttl)
    nonce = siwe.issue_nonce(settings.link_nonce_secret, ttl_s=settings.link_ttl, now=now)
    try:
        message = siwe.build_link_message(
            domain=settings.public_domain,
            uri=settings.link_uri,
            address=address,
            login=login,
            chain_id=settings.chain_id,
            nonce=nonce,
            issued_at=now,
            expires_at=expires,
        )
    except siwe.SiweError as exc:
        field = {"bad_login": "login", "bad_address": "address"}.get(exc.reason)
        raise ApiError(
            400, exc.reason, exc.message, field=field, hint="fix the field and ask again"
        ) from exc
    return LinkMessage(message=message, nonce=nonce, expires=rfc3339(expires))


@router.get("/api/link-message", responses=error_responses(400))
async def get_link_message(
    address: AddressQuery, login: LoginQuery, frontend: FrontendDep
) -> LinkMessage:
    """The EIP-4361 message a wallet signs (personal_sign) to link itself to `login`."""
    return link_message(frontend, address, login)


def _verify(frontend: Frontend, message: str, signature: str) -> siwe.SiweMessage:
    settings = frontend.settings
    try:
        parsed = siwe.verify_link_message(
            message,
            signature,
            expected_domain=settings.public_domain,
            chain_id=settings.chain_id,
            now=datetime.now(UTC),
        )
        siwe.verify_nonce(parsed.nonce, settings.link_nonce_secret)
    except siwe.SiweError as exc:
        status = 410 if exc.reason == "nonce_expired" else 400
        field = "signature" if exc.reason in _SIGNATURE_REASONS else "message"
        raise ApiError(
            status,
            exc.reason,
            exc.message,
            field=field,
            hint="fetch a new message from GET /api/link-message and sign it "
            "unchanged with the wallet it names",
        ) from exc
    return parsed


@router.post(
    "/api/links",
    status_code=201,
    responses=post_responses(201, LinkCreated, 400, 409, 410, 413, 415, 503),
    openapi_extra=post_body(LinkRequest),
)
async def post_link(request: Request, frontend: FrontendDep) -> Response:
    """Verify a signed link message and publish `identity.link_requested` with its code."""
    body = await read_body(request)
    message = text_field(body, "message")
    signature = text_field(body, "signature").lower()
    parsed = _verify(frontend, message, signature)
    code = siwe.link_code_for(parsed.nonce, frontend.settings.link_nonce_secret)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(
        seconds=frontend.settings.link_ttl
    )
    event = make_event(
        "identity.link_requested",
        key=code,
        source="frontend",
        data=LinkRequested(
            code=code,
            address=parsed.address,
            login=parsed.login,
            message=message,
            signature=signature,
            nonce=parsed.nonce,
            expires_at=rfc3339(expires),
        ),
    )
    ack = await frontend.publish(event, "the link request")
    if ack.duplicate:
        # the nonce already made a request (the stream dropped this copy): a replay
        raise ApiError(
            409,
            "nonce_used",
            "message: its nonce was already used to request a link; each signed message "
            "requests one link",
            field="message",
            hint="fetch a new message from GET /api/link-message and sign it; a code you "
            "were already shown stays valid until it expires",
        )
    log.info(
        "link requested",
        extra={"code_prefix": code[:4], "address": parsed.address, "login": parsed.login},
    )
    if body.is_form:
        return RedirectResponse(f"/link?code={code}", status_code=303)
    return JSONResponse(
        {"code": code, "expires": rfc3339(expires), "comment": f"$link:{code}$"},
        status_code=201,
        headers={"Location": f"/api/links/{code}"},
    )


def _valid_code(code: str) -> str:
    if not _CODE.fullmatch(code):
        raise ApiError(
            400,
            "invalid_code",
            f"code: {code!r:.60} is not a link code ({siwe.LINK_CODE_LENGTH} lower-case letters)",
            field="code",
            hint="copy the code exactly as the link page showed it",
        )
    return code


async def link_status(frontend: Frontend, code: str) -> LinkStatus:
    """identity's verdict on a link code: pending, linked or refused (with the reason)."""
    stub = identity_pb2_grpc.IdentityStub(frontend.identity)
    try:
        # wait_for_ready: a call right after identity came back waits for the reconnect
        # (bounded by the timeout) instead of failing at once while the channel backs off.
        reply = await stub.LinkStatus(
            identity_pb2.LinkStatusRequest(code=code),
            timeout=IDENTITY_TIMEOUT_S,
            wait_for_ready=True,
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise ApiError(
                404,
                "unknown_code",
                f"code: identity does not know {code}",
                field="code",
                hint="request a new code on the link page; a fresh "
                "code may take a moment to reach identity",
            ) from exc
        raise ApiError(
            503,
            "identity_unavailable",
            f"identity cannot answer ({exc.code().name}: {exc.details()})",
            hint="try again in a moment",
        ) from exc
    address = reply.address
    return LinkStatus(
        code=code,
        state=_STATES.get(reply.state, "pending"),
        reason=reply.reason or None,
        address=to_checksum_address(address) if is_hex_address(address) else None,
        login=reply.login or None,
        github_id=reply.github_id or None,
    )


@router.get("/api/links/{code}", responses=error_responses(400, 404, 503))
async def get_link(code: CodePath, frontend: FrontendDep) -> LinkStatus:
    """How a link request is going, as identity sees it."""
    return await link_status(frontend, _valid_code(code))


@router.get("/link", response_class=HTMLResponse, responses=page_responses(400))
async def link_page(request: Request, frontend: FrontendDep, code: CodeQuery = "") -> Response:
    """The link page: GitHub login, wallet, the message to sign, then the code to comment."""
    if code and not _CODE.fullmatch(code):
        raise PageError(
            400,
            "Not a link code",
            f"{code[:60]!r} is not a link code ({siwe.LINK_CODE_LENGTH} letters).",
            "Start again from the link page.",
        )
    return frontend.templates.TemplateResponse(
        request,
        "link.html",
        {
            "code": code or None,
            "domain": frontend.settings.public_domain,
            "chain_id": frontend.settings.chain_id,
            "ttl_min": frontend.settings.link_ttl // 60,
        },
    )
