"""The frontend application: pages and JSON routes, clients built in the lifespan.

Nothing connects at import time: `create_app` only wires routes, and the lifespan
(`services.common.lifecycle`) opens the bus connection (retried in the background
with the shared capped backoff, so `/healthz` answers while NATS is away and
`/readyz` says when the bus is there), the gRPC channel to identity and the HTTP
client to gateway, and closes them in the reverse order.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.grpc_service import grpc_channel
from services.common.httpapp import ApiError, edge_client, error_body, install_common_routes
from services.common.lifecycle import Lifecycle
from services.common.metrics import EDGE_ERRORS, edge_labels, observe_edge
from services.common.topology import edge

from . import linking, signing
from .settings import FrontendSettings
from .state import Frontend, PageError, is_form_post

__all__ = ["SERVICE", "create_app"]

SERVICE = "frontend"
BROWSER = edge("browser", SERVICE)
log = logging.getLogger(__name__)
_HERE = Path(__file__).resolve().parent
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
# Everything is served from this origin: no CDN, no inline script, no framing. No
# form-action: a plain form post is redirected to GitHub, which form-action would block.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # The signing URL carries the token: never hand it to GitHub as a referrer.
    "Referrer-Policy": "no-referrer",
}


class _BrowserEdge:
    """Counts requests from browsers and the CLI on the browser → frontend edge, and gives
    every answer the security headers (and pages and answers `no-store`).

    Plain ASGI: Starlette's `BaseHTTPMiddleware` runs each request in a task group of its
    own, which cost about a tenth of frontend's CPU per signature."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in _PROBES:
            await self.app(scope, receive, send)
            return
        # pages and answers carry tokens and codes: no shared or browser cache keeps them
        no_store = not path.startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] >= 500:
                    EDGE_ERRORS.labels(*edge_labels(BROWSER)).inc()
                headers = MutableHeaders(scope=message)
                headers.update(_SECURITY_HEADERS)
                if no_store:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        with observe_edge(BROWSER):
            await self.app(scope, receive, with_headers)


def create_app(settings: FrontendSettings | None = None) -> FastAPI:
    """The frontend app; `settings` default to the environment, read when the app starts."""
    templates = Jinja2Templates(directory=_HERE / "templates")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current = settings or FrontendSettings()
        life = Lifecycle(SERVICE)
        frontend = Frontend(
            settings=current,
            templates=templates,
            gateway=edge_client(SERVICE, "gateway", current.gateway_url, timeout=2.0),
            identity=grpc_channel(SERVICE, "identity", current.identity_addr),
        )
        # The clients connect on first use (the channel reconnects by itself): closed last.
        life.on_close("identity channel", lambda: frontend.identity.close(None))
        life.on_close("gateway client", frontend.gateway.aclose)
        life.require("bus", lambda: frontend.ready)
        app.state.frontend = frontend
        app.state.life = life

        async def startup() -> None:
            frontend.bus = await life.connect_bus(current)

        log.info("starting", extra={"public_url": current.public_url_frontend})
        async with life.running(startup):
            yield

    app = FastAPI(
        title="kdemo frontend", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    def ready() -> bool:
        life: Lifecycle | None = getattr(app.state, "life", None)
        return life is not None and life.ready()

    install_common_routes(app, ready=ready)

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> Response:
        """JSON for API clients; an HTML page for a person who posted a plain form."""
        if is_form_post(request):
            return _error_page(
                templates,
                request,
                PageError(exc.status, "That did not work", exc.message, exc.hint),
            )
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field, exc.hint), status_code=exc.status
        )

    @app.exception_handler(PageError)
    async def on_page_error(request: Request, exc: PageError) -> Response:
        return _error_page(templates, request, exc)

    app.add_middleware(_BrowserEdge)
    app.include_router(signing.router)
    app.include_router(linking.router)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    return app


def _error_page(templates: Jinja2Templates, request: Request, exc: PageError) -> Response:
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": exc.status, "title": exc.title, "message": exc.message, "hint": exc.hint},
        status_code=exc.status,
    )
