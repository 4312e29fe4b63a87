"""frontend's JSON bodies and answers, as documented in its OpenAPI.

The routes read their bodies themselves (JSON or a plain form, counted while they
stream in), so the body models only describe those; the JSON answers of the GET
routes are these models, and the OpenAPI conformance tests check every answer
against them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, Field

from services.common import siwe
from services.common.httpapp import Strict, error_responses

__all__ = [
    "AddressQuery",
    "CodePath",
    "CodeQuery",
    "IntentDocument",
    "LinkCreated",
    "LinkMessage",
    "LinkRequest",
    "LinkStatus",
    "LoginQuery",
    "SignatureAnswer",
    "SignatureRequest",
    "TokenQuery",
    "page_responses",
    "post_body",
    "post_responses",
]

_ADDRESS = r"^0x[0-9a-fA-F]{40}$"
_CODE = f"[a-z]{{{siwe.LINK_CODE_LENGTH}}}"

# Parameters the handlers check themselves, with clearer errors than FastAPI's: the
# OpenAPI states each rule (`json_schema_extra`), the handler enforces it.
AddressQuery = Annotated[
    str,
    Query(description="the wallet: 0x + 40 hex digits", json_schema_extra={"pattern": _ADDRESS}),
]
LoginQuery = Annotated[
    str,
    Query(
        description="the GitHub login the message names",
        json_schema_extra={"pattern": "^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$", "maxLength": 39},
    ),
]
CodePath = Annotated[
    str, Path(description="the link code", json_schema_extra={"pattern": f"^{_CODE}$"})
]
CodeQuery = Annotated[
    str,
    Query(
        description="a link code, to show its state", json_schema_extra={"pattern": f"^({_CODE})?$"}
    ),
]
TokenQuery = Annotated[
    str, Query(description="the signing token, as posted", json_schema_extra={"minLength": 1})
]


class SignatureRequest(BaseModel):
    """`POST /api/signatures`: the token from the signing URL and what the wallet returned."""

    token: str = Field(min_length=1, description="the `t` of the signing URL, unchanged")
    address: str = Field(pattern=_ADDRESS, description="the signing wallet (EIP-55 or one case)")
    signature: str = Field(
        pattern=r"^0x[0-9a-fA-F]{130}$", description="eth_signTypedData_v4 of the intent"
    )


class LinkRequest(BaseModel):
    """`POST /api/links`: the message from `GET /api/link-message`, signed (personal_sign)."""

    message: str = Field(min_length=1, description="the EIP-4361 text, unchanged")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class TypedData(Strict):
    """`eth_signTypedData_v4` JSON of the EIP-712 `Bounty`; every uint256 is decimal text."""

    types: dict[str, list[dict[str, str]]]
    primaryType: Literal["Bounty"]  # EIP-712 spells it so
    domain: dict[str, str]
    message: dict[str, str]


class IntentDocument(Strict):
    intent_id: str
    typed_data: TypedData
    repository: str
    number: int
    kind: Literal["issue", "pull_request"]
    html_url: str
    denomination: str
    amount: str
    deadline: str
    expires_at: str


class SignatureAnswer(Strict):
    status: Literal["signed", "offer", "already_signed"] = Field(
        description="`signed`: recorded, the first wallet to sign this intent; `offer`: "
        "recorded, another wallet signed it first (the funder is the author's linked wallet, "
        "else the first signer); `already_signed`: this wallet's same signature was recorded "
        "before, nothing new"
    )
    intent_id: str
    address: str
    redirect: str = Field(description="the issue or pull request, where the browser goes next")


class LinkMessage(Strict):
    message: str
    nonce: str
    expires: str


class LinkCreated(Strict):
    code: str
    expires: str
    comment: str = Field(description="the exact text to comment on GitHub: `$link:<code>$`")


class LinkStatus(Strict):
    code: str
    state: Literal["pending", "linked", "refused"]
    reason: str | None
    address: str | None
    login: str | None
    github_id: int | None


def post_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a body read by `state.read_body`: JSON or a plain form."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema},
            },
        }
    }


_PAGE: dict[str, Any] = {"content": {"text/html": {"schema": {"type": "string"}}}}


def post_responses(ok: int, model: type[BaseModel], *errors: int) -> dict[int | str, Any]:
    """A JSON answer for API clients; 303 and HTML error pages for a plain form post."""
    return {
        ok: {"model": model},
        303: {"description": "a plain form post: where the browser goes next"},
        **error_responses(*errors, html=True),
    }


def page_responses(*errors: int) -> dict[int | str, Any]:
    """A page's errors are pages too."""
    return {status: {**_PAGE, "description": "the error, as a page"} for status in errors}
