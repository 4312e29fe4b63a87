"""What every frontend route shares: the clients built in the lifespan, and request helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qs

import grpc
import httpx
from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates

from services.common.bus import Bus, BusError, Published
from services.common.events import Event
from services.common.httpapp import ApiError, read_limited_body

from .settings import FrontendSettings

__all__ = [
    "Body",
    "Frontend",
    "FrontendDep",
    "PageError",
    "get_frontend",
    "is_form_post",
    "read_body",
    "text_field",
    "wants_json",
]

MAX_BODY = 64 * 1024
"""A signature post or a SIWE message is a few kilobytes; anything larger is junk."""


@dataclass
class Frontend:
    """The service's clients, built in the lifespan and shared by every request."""

    settings: FrontendSettings
    templates: Jinja2Templates
    gateway: httpx.AsyncClient
    identity: grpc.aio.Channel
    bus: Bus | None = field(default=None)

    @property
    def ready(self) -> bool:
        return self.bus is not None and self.bus.connected

    async def publish(self, event: Event, what: str) -> Published:
        """Publish `event`; the bus away or failing is a 503 that says nothing was recorded."""
        if self.bus is None:
            raise ApiError(
                503,
                "bus_unavailable",
                "the event bus is not connected yet",
                hint="try again in a moment",
            )
        try:
            return await self.bus.publish(event)
        except BusError as exc:
            raise ApiError(
                503,
                "bus_unavailable",
                f"cannot publish {what} ({exc or type(exc).__name__})",
                hint="try again in a moment; nothing was recorded",
            ) from exc


async def get_frontend(request: Request) -> Frontend:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
    # for every request
    frontend: Frontend = request.app.state.frontend
    return frontend


FrontendDep = Annotated[Frontend, Depends(get_frontend)]


class PageError(Exception):
    """An error answered as an HTML page (for people), with the status the API would use."""

    def __init__(self, status: int, title: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.hint = hint


def wants_json(request: Request) -> bool:
    """JSON for API clients (Accept or a JSON body); a 303 or an HTML page for plain forms."""
    accept = request.headers.get("accept", "")
    content_type = request.headers.get("content-type", "")
    return "application/json" in accept or content_type.startswith("application/json")


def is_form_post(request: Request) -> bool:
    """A plain HTML form post (no script): it gets redirects and HTML pages, not JSON."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/x-www-form-urlencoded" and not wants_json(request)


@dataclass(frozen=True)
class Body:
    fields: dict[str, Any]
    is_form: bool
    """A plain HTML form post: answered with a redirect or an HTML page, not JSON."""


async def read_body(request: Request) -> Body:
    """The fields of a JSON object or a url-encoded form post; 400/415 naming what is wrong."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/x-www-form-urlencoded", "application/json", ""):
        raise ApiError(  # before a byte of the body is read
            415,
            "unsupported_media_type",
            f"content-type: {content_type!r} is not accepted",
            field="content-type",
            hint="send application/json or application/x-www-form-urlencoded",
        )
    too_large = ApiError(
        413,
        "body_too_large",
        f"body: more than {MAX_BODY} bytes",
        field="body",
        hint="send only the documented fields",
    )
    raw = await read_limited_body(request, MAX_BODY, too_large)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400,
            "invalid_request",
            f"body: not UTF-8 (byte {exc.start} is {raw[exc.start]:#04x})",
            field="body",
            hint="send the body encoded as UTF-8",
        ) from exc
    if content_type == "application/x-www-form-urlencoded":
        parsed = parse_qs(text, keep_blank_values=True, strict_parsing=False)
        return Body({k: v[0] for k, v in parsed.items()}, is_form=is_form_post(request))
    try:
        data = json.loads(text or "null")
    except ValueError as exc:
        raise ApiError(
            400,
            "invalid_request",
            f"body: not valid JSON ({exc})",
            field="body",
            hint="send a JSON object with the documented fields",
        ) from exc
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "invalid_request",
            f"body: expected a JSON object, got {type(data).__name__}",
            field="body",
            hint="send a JSON object with the documented fields",
        )
    return Body(data, is_form=False)


def text_field(body: Body, name: str) -> str:
    """A required string field of a posted body; 400 naming it when missing or not text."""
    value = body.fields.get(name)
    if value is None or value == "":
        raise ApiError(
            400, "invalid_request", f"{name}: missing", field=name, hint=f"send the {name} field"
        )
    if not isinstance(value, str):
        raise ApiError(
            400,
            "invalid_request",
            f"{name}: expected a string, got {type(value).__name__}",
            field=name,
            hint=f"send {name} as a JSON string",
        )
    return value
