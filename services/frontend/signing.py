"""Signing an intent: the page, the typed data to sign, and the signature post.

The token in the signing URL is the only source of the intent's fields: frontend
verifies it (Ed25519, github-app's key) and rebuilds the EIP-712 `Bounty` from
its claims with the one builder in `services.common.eip712`; nothing a browser
posts besides the address and the signature is trusted.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

import httpx
from eth_utils.address import is_checksum_address, is_hex_address, to_checksum_address
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.common import eip712
from services.common.bus import BusError
from services.common.event_models import BountyMessage, BountySigned
from services.common.events import Event, EventInvalid, data_as, make_event
from services.common.httpapp import ApiError, error_responses
from services.common.intent_tokens import (
    IntentClaims,
    TokenError,
    TokenExpired,
    TokenInvalid,
    verify_intent_token,
)
from services.common.timefmt import rfc3339_from_unix, utc_now_rfc3339

from .models import (
    IntentDocument,
    SignatureAnswer,
    SignatureRequest,
    TokenQuery,
    TypedData,
    page_responses,
    post_body,
    post_responses,
)
from .state import Frontend, FrontendDep, PageError, read_body, text_field

__all__ = [
    "SignOutcome",
    "fetch_issue_bounties",
    "intent_document",
    "record_signature",
    "router",
    "typed_data_for",
    "verify_token",
]

log = logging.getLogger(__name__)
router = APIRouter()
SignOutcome = Literal["signed", "offer", "already_signed"]


def verify_token(frontend: Frontend, token: str) -> IntentClaims:
    """The verified claims of a signing token; ApiError 401 (forged) or 410 (expired)."""
    try:
        return verify_intent_token(token, frontend.settings.intent_verify_key)
    except TokenExpired as exc:
        raise ApiError(
            410,
            "token_expired",
            exc.message,
            field="token",
            hint="comment the bounty again to get a fresh signing URL",
        ) from exc
    except TokenInvalid as exc:
        raise ApiError(
            401,
            "token_invalid",
            exc.message,
            field="token",
            hint="open the signing URL exactly as it was posted",
        ) from exc


def typed_data_for(frontend: Frontend, claims: IntentClaims) -> dict[str, Any]:
    """The EIP-712 `Bounty` of a verified intent, for this deployment's chain id and salt."""
    return eip712.bounty_typed_data(
        intent_id=claims.intent_id,
        repository=claims.repository,
        number=claims.number,
        source=claims.source,
        source_id=claims.source_id,
        denomination=claims.denomination,
        amount=claims.amount,
        deadline=claims.expires_at,
        chain_id=frontend.settings.chain_id,
        salt=frontend.settings.eip712_salt,
    )


def intent_document(frontend: Frontend, claims: IntentClaims) -> IntentDocument:
    """`GET /api/intents/<token>`: the typed data to sign and the intent in plain fields."""
    return IntentDocument(
        intent_id=claims.intent_id,
        typed_data=TypedData.model_validate(typed_data_for(frontend, claims)),
        repository=claims.repository,
        number=claims.number,
        kind=claims.kind,
        html_url=claims.html_url,
        denomination=claims.denomination,
        amount=str(claims.amount),
        deadline=str(claims.expires_at),
        expires_at=rfc3339_from_unix(claims.expires_at),
    )


async def fetch_issue_bounties(frontend: Frontend, claims: IntentClaims) -> dict[str, Any] | None:
    """gateway's bounties and totals on the intent's issue; None when gateway cannot tell."""
    owner, name = claims.repository.split("/", 1)
    repo = f"{quote(owner, safe='')}/{quote(name, safe='')}"
    path = f"/api/repos/{repo}/issues/{claims.number}/bounties"
    try:
        response = await frontend.gateway.get(path, headers={"Accept": "application/json"})
        if response.status_code != 200:
            log.info("gateway has no totals", extra={"status": response.status_code, "path": path})
            return None
        answer = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.info("gateway unreachable", extra={"error": str(exc) or type(exc).__name__})
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("totals"), list):
        return None
    return answer


def _describe_deadline(unix: int) -> str:
    when = datetime.fromtimestamp(unix, UTC)
    left = int((when - datetime.now(UTC)).total_seconds())
    hours, rest = divmod(max(0, left), 3600)
    span = f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min"
    return f"{when:%Y-%m-%d %H:%M} UTC (in {span})"


@router.get("/sign", response_class=HTMLResponse, responses=page_responses(400, 401, 410))
async def sign_page(request: Request, frontend: FrontendDep, t: TokenQuery = "") -> Response:
    """The signing page: what will be signed, in words, and a button for the wallet."""
    if not t:
        raise PageError(
            400,
            "No signing token",
            "This address has no t=<token> parameter.",
            "Open the signing URL exactly as it was posted on the issue.",
        )
    try:
        claims = verify_token(frontend, t)
    except ApiError as exc:
        if exc.status == 410:
            return _expired_page(request, frontend, t, exc)
        raise PageError(exc.status, "Signing link not valid", exc.message, exc.hint) from exc
    issue = await fetch_issue_bounties(frontend, claims)
    bounties = [b for b in (issue or {}).get("bounties", []) if isinstance(b, dict)]
    this_intent = [b for b in bounties if b.get("intent_id") == claims.intent_id]
    signing_url = f"{frontend.settings.public_url_frontend}/sign?{urlencode({'t': t})}"
    signers = _signers(this_intent)
    return frontend.templates.TemplateResponse(
        request,
        "sign.html",
        {
            "claims": claims,
            "token": t,
            "thread": "pull request" if claims.kind == "pull_request" else "issue",
            "deadline": _describe_deadline(claims.expires_at),
            "deadline_iso": rfc3339_from_unix(claims.expires_at),
            "totals": None if issue is None else issue["totals"],
            "this_intent": this_intent,
            "signers": signers,
            "signer_addresses": ",".join(s["address"].lower() for s in signers),
            "signing_url": signing_url,
            "chain_id": frontend.settings.chain_id,
        },
    )


def _signers(this_intent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every wallet gateway has seen sign this intent: the funder first, then the offers."""
    out: list[dict[str, Any]] = []
    for bounty in this_intent:
        funder = bounty.get("funder")
        parties = [funder] if isinstance(funder, dict) else []
        parties += [o for o in bounty.get("offers") or [] if isinstance(o, dict)]
        for index, party in enumerate(parties):
            address = party.get("address")
            if isinstance(address, str) and is_hex_address(address):
                out.append(
                    {
                        "address": to_checksum_address(address),
                        "login": party.get("login"),
                        "verified": bool(party.get("verified")),
                        "role": "funder" if index == 0 else "offer",
                    }
                )
    return out


def _expired_page(request: Request, frontend: Frontend, token: str, exc: ApiError) -> Response:
    """410 with what the expired link was for, when the token is genuine but past its `exp`."""
    try:
        # judged at time 0: the signature and the claims are checked, only `exp` is not
        claims = verify_intent_token(token, frontend.settings.intent_verify_key, now=0)
    except TokenError:
        raise PageError(410, "Signing link expired", exc.message, exc.hint) from exc
    return frontend.templates.TemplateResponse(
        request,
        "expired.html",
        {
            "claims": claims,
            "thread": "pull request" if claims.kind == "pull_request" else "issue",
            "expired_at": f"{datetime.fromtimestamp(claims.expires_at, UTC):%Y-%m-%d %H:%M} UTC",
            "hint": exc.hint,
        },
        status_code=410,
    )


@router.get("/api/intents/{token}", responses=error_responses(401, 410))
async def get_intent(token: str, frontend: FrontendDep) -> IntentDocument:
    """The typed data a wallet signs for this token, with the intent's fields."""
    return intent_document(frontend, verify_token(frontend, token))


def _address(value: str) -> str:
    if not value.startswith("0x") or not is_hex_address(value):
        raise ApiError(
            400,
            "invalid_address",
            f"address: {value!r:.60} is not an Ethereum address",
            field="address",
            hint="send 0x followed by 40 hex digits",
        )
    if value != value.lower() and value[2:] != value[2:].upper() and not is_checksum_address(value):
        raise ApiError(
            400,
            "invalid_address",
            f"address: {value} has a wrong EIP-55 checksum (a typo?)",
            field="address",
            hint="send the address exactly as the wallet reports it",
        )
    return str(to_checksum_address(value))


def _recover(typed: dict[str, Any], signature: str) -> str:
    try:
        return eip712.recover_signer(typed, signature)
    except eip712.SignatureError as exc:
        raise ApiError(
            400,
            "invalid_signature",
            str(exc),
            field="signature",
            hint="send the 0x-prefixed 65-byte signature the wallet returned",
        ) from exc


async def _published_signature(frontend: Frontend, event: Event) -> str:
    """The signature carried by the event already on the bus for this (intent, wallet)."""
    assert frontend.bus is not None
    try:
        found = await frontend.bus.find(event)
    except BusError as exc:
        raise ApiError(
            503,
            "bus_unavailable",
            f"cannot read back the earlier signature ({exc})",
            hint="try again in a moment",
        ) from exc
    if found is None:
        return ""  # not a signature this service could have published: it cannot match
    try:
        earlier = data_as(found, BountySigned)
    except EventInvalid:
        return ""
    return earlier.signature.lower()


async def _another_wallet_signed(frontend: Frontend, event: Event) -> bool:
    """Whether the bus already holds a signature of this intent by another wallet.

    Only tells a first signature from an offer, so a bus that cannot answer never fails
    the post: the answer is then "signed".
    """
    assert frontend.bus is not None
    return await frontend.bus.another_with_key(event)


async def record_signature(frontend: Frontend, claims: IntentClaims, event: Event) -> SignOutcome:
    """Publish `bounty.signed` once per (intent, wallet); a repeat is fine, a change is 409.

    A new signature is `offer` when another wallet signed the intent before it (the
    funder is the author's linked wallet, else the first signer: see gateway).
    """
    offer = frontend.bus is not None and await _another_wallet_signed(frontend, event)
    ack = await frontend.publish(event, "the signature")
    if not ack.duplicate:
        return "offer" if offer else "signed"
    signed = data_as(event, BountySigned)
    earlier = await _published_signature(frontend, event)
    if earlier == signed.signature:
        return "already_signed"
    raise ApiError(
        409,
        "already_signed",
        f"wallet {signed.address} already signed this intent with another signature; "
        f"each wallet signs an intent once ({claims.html_url})",
        field="signature",
        hint=f"nothing more to do: see {claims.html_url}, or sign with another wallet",
    )


@router.post(
    "/api/signatures",
    responses=post_responses(200, SignatureAnswer, 400, 401, 409, 410, 413, 415, 503),
    openapi_extra=post_body(SignatureRequest),
)
async def post_signature(request: Request, frontend: FrontendDep) -> Response:
    """Verify a wallet's signature of the token's intent and publish `bounty.signed`."""
    body = await read_body(request)
    token = text_field(body, "token")
    address_text = text_field(body, "address")
    signature = text_field(body, "signature").lower()
    claims = verify_token(frontend, token)
    address = _address(address_text)
    typed = typed_data_for(frontend, claims)
    signer = _recover(typed, signature)
    if signer != address:
        raise ApiError(
            400,
            "signature_mismatch",
            f"the signature was not made by {address} for this intent (typed data changed, "
            "another deployment's salt, or another key)",
            field="signature",
            hint="sign the typed data from GET /api/intents/<token> unchanged, with this wallet",
        )
    event = make_event(
        "bounty.signed",
        key=claims.intent_id,
        wallet=address,
        source="frontend",
        data=BountySigned(
            intent_id=claims.intent_id,
            address=address,
            signature=signature,
            message=BountyMessage.model_validate(typed["message"]),
            chain_id=typed["domain"]["chainId"],
            author_id=claims.author_id,
            html_url=claims.html_url,
            signed_at=utc_now_rfc3339("auto"),
        ),
    )
    outcome = await record_signature(frontend, claims, event)
    log.info(
        "signature recorded",
        extra={"intent_id": claims.intent_id, "address": address, "outcome": outcome},
    )
    if body.is_form:
        return RedirectResponse(claims.html_url, status_code=303)
    return JSONResponse(
        {
            "status": outcome,
            "intent_id": claims.intent_id,
            "address": address,
            "redirect": claims.html_url,
        }
    )
