"""github-app's HTTP side: `POST /webhook`, health, readiness and metrics.

Everything that talks to the outside (database pool, bus, outbox relay, reply
poster, GitHub client) is built in the lifespan, never at import time, and
connects in the background (`services.common.lifecycle`): /healthz answers at
once, /readyz once the database is migrated (the bus is not needed to take a
webhook). The webhook's request path touches only
the database; events and replies leave later, from their outboxes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import Gauge

from services.common.bus import Bus
from services.common.db import open_database
from services.common.failpoints import failpoint
from services.common.grammar import find_bounties
from services.common.httpapp import (
    ApiError,
    edge_client,
    install_common_routes,
    read_limited_body,
    refuse_declared_excess,
)
from services.common.lifecycle import Lifecycle
from services.common.metrics import observe_edge
from services.common.outbox import OutboxRelay
from services.common.topology import edge

from .intents import Recorder, RecorderConfig
from .models import WEBHOOK_DOCS
from .replies import SERVICE, OwnAccount, ReplyPoster, fetch_own_account
from .settings import GithubAppSettings
from .webhook import (
    MAX_BODY_BYTES,
    Ignored,
    classify,
    parse_json,
    require_signature,
    verify_signature,
)

__all__ = ["OWN_ACCOUNT_KNOWN", "GithubApp", "create_app"]

log = logging.getLogger(__name__)

MIGRATIONS: Final = Path(__file__).parent / "migrations"
OWN_ACCOUNT_KNOWN = Gauge(
    "kdemo_github_app_own_account_known",
    "1 once github-app knows its own GitHub account (GET /user), so it ignores its comments.",
)
GITHUB: Final = edge("github", SERVICE)
_HEADER_HINT = "GitHub sends this header with every delivery; send the delivery as GitHub does"


class GithubApp:
    """The running service: its connections, background tasks and the webhook handler."""

    def __init__(self, settings: GithubAppSettings) -> None:
        self.settings = settings
        self.life = Lifecycle(SERVICE)
        self.pool: psycopg_pool.AsyncConnectionPool[Any] | None = None
        self.bus: Bus | None = None
        self.relay: OutboxRelay | None = None
        self.poster: ReplyPoster | None = None
        self.recorder: Recorder | None = None
        self.github: httpx.AsyncClient | None = None
        self.own: OwnAccount | None = None
        self._secret = settings.github_webhook_secret.get_secret_value().encode()
        # Ready once the database takes intents: the bus is not needed to answer a webhook.
        # Events wait in the outbox while the bus is away; GitHub would not redeliver a
        # comment refused in that moment, so refusing it would lose it.
        self.life.require("database", lambda: self.recorder is not None)

    def ready(self) -> bool:
        return self.life.ready()

    # -- lifecycle -------------------------------------------------------------------------

    async def startup(self) -> None:
        """Database (migrated), then the bus; webhooks are taken as soon as the first is."""
        s = self.settings
        token = s.github_token
        if token is not None:
            github = edge_client(SERVICE, "github-api", s.github_api_url, timeout=10.0)
            github.headers.update(
                {
                    "Authorization": f"Bearer {token.get_secret_value()}",
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28",
                    "User-Agent": "kdemo-github-app",
                }
            )
            self.github = github
            self.life.on_close("GitHub client", github.aclose)
            self.life.spawn(self._learn_own_account(github), "own-account")

        pool = await self.life.connect(
            "database",
            # autocommit: a webhook is one statement (Recorder), its own transaction
            lambda: open_database(s.database_url, MIGRATIONS, autocommit=True),
            close=lambda pool: pool.close(),
        )
        if pool is None:
            return  # stopped while starting
        self.pool = pool
        if self.github is not None:
            self.poster = ReplyPoster(pool, self.github)
            self.life.spawn(self.poster.run(self.life.stopping), "reply-poster")
        self.recorder = Recorder(
            pool,
            RecorderConfig(
                signing_key=s.intent_signing_key.get_secret_value(),
                ttl_s=s.intent_ttl,
                frontend_url=s.public_url_frontend,
                replies=self.github is not None,
            ),
        )
        # Webhooks are taken from here on; events wait in the outbox until the bus answers.
        bus = await self.life.connect_bus(s)
        if bus is None:
            return  # stopped while connecting
        self.bus = bus
        if s.relay_enabled:
            self.relay = OutboxRelay(pool, bus)
            self.life.spawn(self.relay.run(self.life.stopping), "outbox-relay")
        else:
            log.warning("outbox relay disabled (KDEMO_RELAY_ENABLED=false): events stay queued")

    async def _learn_own_account(self, client: httpx.AsyncClient) -> None:
        # Not a dependency (webhooks are taken without it) and GitHub rate-limits: the same
        # capped backoff, slower and capped at a minute.
        own = await self.life.connect(
            "GitHub's /user (the app's own account)",
            lambda: fetch_own_account(client),
            first=1.0,
            cap=60.0,
            retry_on=(httpx.HTTPError, ValueError),
        )
        if own is None:
            return
        self.own = own
        OWN_ACCOUNT_KNOWN.set(1)
        log.info("own GitHub account known", extra={"login": own.login, "github_id": own.id})

    # -- the webhook -----------------------------------------------------------------------

    async def handle_webhook(self, request: Request) -> Response:
        refuse_declared_excess(request, MAX_BODY_BYTES, _too_large())
        signature = require_signature(request.headers.get("x-hub-signature-256"))
        body = await read_limited_body(request, MAX_BODY_BYTES, _too_large())
        verify_signature(self._secret, body, signature)  # before anything else is looked at
        if not self.ready() or self.recorder is None:
            raise ApiError(
                503,
                "starting",
                "github-app is not ready yet (its database is not reachable)",
                hint="retry in a few seconds; GitHub can redeliver from its UI",
            )

        event = _header(request, "X-GitHub-Event")
        delivery = _header(request, "X-GitHub-Delivery")
        outcome = classify(event, parse_json(body))
        if isinstance(outcome, Ignored):
            return _ignored(outcome.reason)
        own = self.own
        if own is not None and own.id in (outcome.author_id, outcome.sender_id):
            return _ignored(f"written by kdemo's own account {own.login}")
        parsed = find_bounties(outcome.body)
        if not (parsed.matches or parsed.links or parsed.rejected):
            return _ignored("no bounty or link pattern")
        try:
            recorded = await self.recorder.record(delivery, outcome, parsed)
        except psycopg.errors.DiskFull as exc:  # nothing was recorded: the transaction rolled back
            log.error("database disk full, delivery refused", extra={"error": str(exc)})
            raise ApiError(
                503,
                "database_full",
                "github-app's database is out of disk space; the delivery was not recorded",
                hint="free space on the disk holding PostgreSQL's data, then redeliver the webhook",
            ) from exc
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            log.warning("database unavailable for a delivery", extra={"error": str(exc)})
            raise ApiError(
                503,
                "database_unavailable",
                "github-app cannot reach its database",
                hint="redeliver the webhook once github-app is ready",
            ) from exc
        failpoint("webhook.after_record")  # committed; GitHub has no answer yet
        if recorded.new_events and self.relay is not None:
            self.relay.kick()
        if recorded.new_replies and self.poster is not None:
            self.poster.kick()
        log.info(
            "delivery recorded",
            extra={
                "delivery": delivery,
                "event": f"{outcome.event}.{outcome.action}",
                "repository": outcome.repository,
                "number": outcome.number,
                "intents": len(recorded.response.get("intents", ())),
                "links": len(recorded.response.get("links", ())),
                "duplicate": recorded.duplicate,
            },
        )
        # orjson: the same compact UTF-8 JSON as JSONResponse's, in a tenth of the time
        return Response(orjson.dumps(recorded.response), media_type="application/json")


def _ignored(reason: str) -> Response:
    return JSONResponse({"ignored": reason}, status_code=202)


def _header(request: Request, name: str) -> str:
    value = (request.headers.get(name) or "").strip()
    if not value:
        raise ApiError(
            400,
            "missing_header",
            f"{name} header is missing or empty",
            field=name,
            hint=_HEADER_HINT,
        )
    if len(value) > 200:
        raise ApiError(
            400,
            "invalid_header",
            f"{name} header is longer than 200 characters",
            field=name,
            hint=_HEADER_HINT,
        )
    return value


def _too_large() -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"body: larger than GitHub's limit of {MAX_BODY_BYTES} bytes (25 MB)",
        field="body",
        hint="GitHub never sends more; check what is delivering this",
    )


def create_app(settings: GithubAppSettings | None = None) -> FastAPI:
    """The FastAPI app; settings are read (from the environment by default) at start-up."""
    holder: dict[str, GithubApp] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = GithubApp(settings if settings is not None else GithubAppSettings())
        holder["service"] = service
        async with service.life.running(service.startup):
            yield

    app = FastAPI(
        title="kdemo github-app", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    install_common_routes(app, ready=lambda: "service" in holder and holder["service"].ready())

    @app.post("/webhook", **WEBHOOK_DOCS)
    async def webhook(request: Request) -> Response:
        """GitHub's webhook deliveries (the github → github-app edge, counted here)."""
        with observe_edge(GITHUB):
            return await holder["service"].handle_webhook(request)

    return app
