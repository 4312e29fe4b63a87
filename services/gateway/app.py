"""The gateway application: FastAPI routes plus, in its lifespan, everything it runs.

Nothing connects at import time. The lifespan waits for PostgreSQL, applies the
migrations, opens the pool, connects to the bus as the `gateway` user, opens the
gRPC channels to calc and identity, and starts two tasks: the durable consumer
(the ledger's handlers) and the outbox relay (publishes `bounty.recorded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from psycopg_pool import AsyncConnectionPool

from services.common import bus as busmod
from services.common.db import apply_migrations, open_pool, wait_for_database
from services.common.grpc_service import grpc_channel
from services.common.httpapp import install_common_routes
from services.common.metrics import observe_edge
from services.common.outbox import OutboxRelay
from services.common.tasks import vital_task
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


@dataclass
class _Health:
    """What /readyz reports: the database answered recently and the bus is connected."""

    db_ok: bool = False
    bus: busmod.Bus | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def ready(self) -> bool:
        return (
            self.db_ok
            and self.bus is not None
            and self.bus.nc.is_connected
            and all(not task.done() for task in self.tasks)
        )


async def _probe_database(
    pool: AsyncConnectionPool[Any], health: _Health, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            async with pool.connection(timeout=DB_PROBE_S) as conn:
                await conn.execute("SELECT 1")
            health.db_ok = True
        except Exception as exc:  # any failure means "not ready"; the probe keeps trying
            if health.db_ok:
                log.warning("database unreachable", extra={"error": str(exc)})
            health.db_ok = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), DB_PROBE_S)


def _watch(task: asyncio.Task[None]) -> None:
    """A background task that dies makes the service unready; say why in the log."""
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "background task stopped", extra={"task": task.get_name()}, exc_info=task.exception()
        )


async def _close_bus(bus: busmod.Bus) -> None:
    """Close without draining: the consumer and the relay have stopped, nothing is in flight.

    (Draining a connection with a bound pull subscription waits forever in nats-py for
    messages it never hands out, which held shutdown up until SIGKILL.)
    """
    with contextlib.suppress(Exception):  # already closed by the server going away is fine
        await bus.nc.close()


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app; settings are read from the environment at start-up when not given."""
    health = _Health()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or GatewaySettings()  # read from the KDEMO_* environment
        await wait_for_database(cfg.database_url)
        await asyncio.to_thread(apply_migrations, cfg.database_url, MIGRATIONS)
        pool = await open_pool(cfg.database_url)
        bus = await busmod.connect(
            SERVICE, cfg.nats_url, cfg.nats_user, cfg.nats_password, stream=cfg.nats_stream
        )
        calc_channel = grpc_channel(SERVICE, "calc", cfg.calc_addr)
        identity_channel = grpc_channel(SERVICE, "identity", cfg.identity_addr)
        relay = OutboxRelay(pool, bus)
        ledger = Ledger(pool, chain_id=cfg.chain_id, salt=cfg.eip712_salt, kick=relay.kick)
        stop = asyncio.Event()
        health.bus = bus
        health.tasks = [
            vital_task(bus.consume(ledger.handle, stop), "consumer"),
            vital_task(relay.run(stop), "outbox-relay"),
            asyncio.create_task(_probe_database(pool, health, stop), name="db-probe"),
        ]
        for task in health.tasks:
            task.add_done_callback(_watch)
        app.state.deps = ApiDeps(
            pool=pool, calc=CalcClient(calc_channel), identity=IdentityClient(identity_channel)
        )
        log.info("gateway started", extra={"calc": cfg.calc_addr, "identity": cfg.identity_addr})
        try:
            yield
        finally:
            app.state.deps = None
            stop.set()
            await asyncio.gather(*health.tasks, return_exceptions=True)
            await calc_channel.close(None)
            await identity_channel.close(None)
            await _close_bus(bus)
            await pool.close()
            log.info("gateway stopped")

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

    @app.middleware("http")
    async def count_api_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # frontend counts its own calls client-side; everyone else is "browser" (CLI included)
        if (
            not request.url.path.startswith("/api/")
            or request.headers.get("x-kdemo-client") == FRONTEND_HEADER
        ):
            return await call_next(request)
        with observe_edge(BROWSER):
            return await call_next(request)

    install_common_routes(app, ready=health.ready)
    app.include_router(router)
    return app
