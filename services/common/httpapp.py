"""The HTTP side every FastAPI service shares: health, readiness, metrics, errors, server.

Errors are one JSON shape, `{"error": {"code", "message", "field", "hint"}}`, with
the documented status code, so a user (or the CLI) always learns which field was
wrong, why, and what to do about it. An exception nobody expected is that shape too
(500, `internal_error`), logged with its traceback, instead of Starlette's plain text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import CONTENT_TYPE_LATEST, observe_edge, render_metrics
from .topology import Edge, edge

__all__ = [
    "ApiError",
    "ErrorBody",
    "Strict",
    "edge_client",
    "error_body",
    "error_responses",
    "install_common_routes",
    "read_limited_body",
    "refuse_declared_excess",
    "serve_http",
]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered to the client: status, machine code, message, field and hint."""

    def __init__(
        self, status: int, code: str, message: str, *, field: str | None = None, hint: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.hint = hint


def error_body(code: str, message: str, field: str | None = None, hint: str = "") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, "hint": hint}}


class Strict(BaseModel):
    """A documented answer: its schema lists every key, so an undocumented one fails the
    OpenAPI conformance tests instead of going unnoticed."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Strict):
    code: str
    message: str
    field: str | None
    hint: str


class ErrorBody(Strict):
    """Every error answer: what is wrong, which field, and what to do about it."""

    error: ErrorDetail


_HTML: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}


def error_responses(*statuses: int, html: bool = False) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the error statuses a route answers, with the error body; `html` when a
    plain form post gets the same error as a page."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": HTTPStatus(status).phrase}
        if html:
            entry["content"] = dict(_HTML)
        responses[status] = entry
    return responses


def refuse_declared_excess(request: Request, limit: int, too_large: ApiError) -> None:
    """Raise `too_large` when the Content-Length says the body is over `limit` bytes, before
    any of it is read. (A malformed Content-Length never gets here: the HTTP server
    refuses it.)"""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large


async def read_limited_body(request: Request, limit: int, too_large: ApiError) -> bytes:
    """The raw body, never more than `limit` bytes of it held: `too_large` is raised for a
    Content-Length over the limit, or as soon as a streamed (chunked) body passes it."""
    refuse_declared_excess(request, limit, too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class _UnexpectedErrors:
    """Answers an exception no handler took as a JSON 500 in the error shape, and logs it.

    Plain ASGI rather than `exception_handler(Exception)`: Starlette re-raises after such a
    handler, so the server would log the same failure a second time. When the answer has
    already begun, nothing can be said any more: the exception goes on to the server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception(
                "unexpected error answering a request",
                extra={"method": scope.get("method"), "path": scope.get("path")},
            )
            if started:
                raise
            answer = JSONResponse(
                error_body(
                    "internal_error",
                    "the service failed unexpectedly while answering this request",
                    hint="retry in a moment; if it keeps failing, the service's log has the cause",
                ),
                status_code=500,
            )
            await answer(scope, receive, send)


def install_common_routes(app: FastAPI, *, ready: Callable[[], bool]) -> None:
    """/healthz (alive), /readyz (dependencies reachable), /metrics, and the error shape
    (an unexpected exception included)."""
    _document_400_not_422(app)
    app.add_middleware(_UnexpectedErrors)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        if ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "starting"}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return PlainTextResponse(render_metrics(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(ApiError)
    async def on_api_error(_: Request, exc: ApiError) -> Response:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field, exc.hint), status_code=exc.status
        )

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        message = f"{field or 'request'}: {first.get('msg')}"
        hint = "check the request against the API documentation"
        return JSONResponse(
            error_body("invalid_request", message, field or None, hint), status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return JSONResponse(
            error_body("http_error", str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )


def _document_400_not_422(app: FastAPI) -> None:
    """Drop FastAPI's default 422 from the OpenAPI: a request that fails validation is
    answered 400 with the error body (`on_validation_error`), never 422."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class _EdgeTransport(httpx.AsyncBaseTransport):
    """Counts and times every request as an edge of the topology, on the client side."""

    def __init__(self, edge: Edge) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._edge = edge

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with observe_edge(self._edge):
            return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def edge_client(
    source: str, target: str, base_url: str, *, timeout: float = 5.0
) -> httpx.AsyncClient:
    """An HTTP client whose requests are counted on the declared edge `source` → `target`
    (its protocol, HTTP or HTTPS, is the topology's; an undeclared edge is a KeyError)."""
    return httpx.AsyncClient(
        base_url=base_url,
        transport=_EdgeTransport(edge(source, target)),
        timeout=timeout,
        headers={"X-Kdemo-Client": source},
    )


async def serve_http(app: FastAPI, host: str, port: int) -> None:
    """Run uvicorn in this event loop; our JSON logging stays in charge (log_config=None)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
    )
    server = uvicorn.Server(config)
    await server.serve()


def run(app: FastAPI, host: str, port: int) -> None:
    asyncio.run(serve_http(app, host, port))
