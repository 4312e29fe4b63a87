"""The gateway application: FastAPI routes plus, in its lifespan, everything it runs.

Nothing connects at import time. The lifespan starts `services.common.lifecycle` in
the background: it connects to PostgreSQL (migrations applied, pool opened) and to
the bus as the `gateway` user, each retried with the shared capped backoff, opens
the gRPC channels to calc and identity, and starts the durable consumer (the
ledger's handlers), the outbox relay (publishes `bounty.recorded`) and a database
probe. /healthz answers at once; /readyz and the API once all of that is up.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common import bus as busmod
from services.common.db import open_database
from services.common.grpc_service import grpc_channel
from services.common.httpapp import install_common_routes
from services.common.lifecycle import Lifecycle
from services.common.metrics import observe_edge
from services.common.outbox import OutboxRelay
from services.common.topology import edge

from .api import ApiDeps, router
from .clients import CalcClient, IdentityClient
from .ledger import SERVICE, Ledger
from .settings import GatewaySettings

__all__ = ["MIGRATIONS", "create_app"]

log = logging.getLogger(__name__)
MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"
DB_PROBE_S: Final = 2.0
FRONTEND_HEADER: Final = "frontend"
BROWSER: Final = edge("browser", SERVICE)


class _Gateway:
    """One run of the service (a lifespan): its lifecycle and what /readyz looks at."""

    def __init__(self, app: FastAPI, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings
        self.life = Lifecycle(SERVICE)
        self.database_ok = False
        """The database answered the last probe (every `DB_PROBE_S`)."""
        self.bus: busmod.Bus | None = None
        self.life.require("database", lambda: self.database_ok)
        self.life.require("bus", lambda: self.bus is not None and self.bus.connected)

    async def startup(self) -> None:
        """Database, bus and gRPC channels, then the consumer, the relay and the probe."""
        cfg, life = self.settings, self.life
        pool = await life.connect(
            "database",
            # autocommit: a new intent's bounty.requested is one statement, its own
            # transaction; every other write opens one (ledger.transaction)
            lambda: open_database(cfg.database_url, MIGRATIONS, autocommit=True),
            close=lambda pool: pool.close(),
        )
        if pool is None:
            return
        bus = await life.connect_bus(cfg)
        if bus is None:
            return
        self.bus = bus
        # Channels connect lazily (and reconnect by themselves): nothing to retry here.
        calc_channel = grpc_channel(SERVICE, "calc", cfg.calc_addr)
        life.on_close("calc channel", lambda: calc_channel.close(None))
        identity_channel = grpc_channel(SERVICE, "identity", cfg.identity_addr)
        life.on_close("identity channel", lambda: identity_channel.close(None))
        relay = OutboxRelay(pool, bus)
        ledger = Ledger(pool, chain_id=cfg.chain_id, salt=cfg.eip712_salt, kick=relay.kick)
        life.spawn(bus.consume(ledger.handle, life.stopping), "consumer", vital=True)
        life.spawn(relay.run(life.stopping), "outbox-relay", vital=True)
        life.spawn(self._probe_database(pool), "db-probe", vital=True)
        self.app.state.deps = ApiDeps(
            pool=pool, calc=CalcClient(calc_channel), identity=IdentityClient(identity_channel)
        )
        life.on_close("routes", self._withdraw)
        log.info("gateway started", extra={"calc": cfg.calc_addr, "identity": cfg.identity_addr})

    async def _withdraw(self) -> None:
        """From here on the routes answer 503 "starting": what they use is about to close."""
        self.app.state.deps = None

    async def _probe_database(self, pool: AsyncConnectionPool[Any]) -> None:
        stop = self.life.stopping
        while not stop.is_set():
            try:
                async with pool.connection(timeout=DB_PROBE_S) as conn:
                    await conn.execute("SELECT 1")
                self.database_ok = True
            except Exception as exc:  # any failure means "not ready"; the probe keeps trying
                if self.database_ok:
                    log.warning("database unreachable", extra={"error": str(exc)})
                self.database_ok = False
            await self.life.pause(DB_PROBE_S)


class _CountApiRequests:
    """Counts `/api/` requests on the browser → gateway edge: frontend counts its own calls
    client-side; everyone else is "browser" (the CLI included).

    Plain ASGI: Starlette's `BaseHTTPMiddleware` runs each request in a task group of its
    own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope.get("path", "").startswith("/api/")
            or Headers(scope=scope).get("x-kdemo-client") == FRONTEND_HEADER
        ):
            await self.app(scope, receive, send)
            return
        with observe_edge(BROWSER):
            await self.app(scope, receive, send)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app; settings are read from the environment at start-up when not given."""
    running: dict[str, _Gateway] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # settings: read from the KDEMO_* environment when not given
        gateway = _Gateway(app, settings or GatewaySettings())
        running["gateway"] = gateway
        async with gateway.life.running(gateway.startup):
            yield

    # No /docs or /openapi.json, like the other services: Swagger UI loads its assets from a
    # CDN, and the schema is the tests' (tests/services/test_openapi_fuzz.py builds it).
    app = FastAPI(
        title="kdemo gateway",
        summary="The ledger and the public bounty API",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    app.add_middleware(_CountApiRequests)

    install_common_routes(
        app, ready=lambda: "gateway" in running and running["gateway"].life.ready()
    )
    app.include_router(router)
    return app
