"""`python -m services.identity`: the gRPC server, the link-event consumer, relay and sweeper."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import urlsplit

import grpc
from psycopg_pool import AsyncConnectionPool

from services.common import db
from services.common.bus import Bus
from services.common.failpoints import arm_or_exit
from services.common.grpc_service import serve_grpc
from services.common.lifecycle import Lifecycle
from services.common.logs import configure_logging
from services.common.outbox import OutboxRelay
from services.common.settings import load_or_exit
from services.protos import identity_pb2_grpc

from .pairing import SERVICE, Pairing
from .server import IdentityServicer
from .settings import IdentitySettings

__all__ = ["Identity", "main"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger(__name__)


class Identity:
    """Owns the pool, the bus connection and the background tasks for one process."""

    def __init__(self, settings: IdentitySettings) -> None:
        self.settings = settings
        self.life = Lifecycle(SERVICE)
        self.pool: AsyncConnectionPool | None = None
        self.bus: Bus | None = None
        self.pairing: Pairing | None = None
        # Ready once the database answered and the bus connection is up.
        self.life.require("database", lambda: self.pairing is not None and self.pairing.database_ok)
        self.life.require("bus", lambda: self.bus is not None and self.bus.connected)

    def ready(self) -> bool:
        return self.life.ready()

    def add_servicers(self, server: grpc.aio.Server) -> None:
        identity_pb2_grpc.add_IdentityServicer_to_server(IdentityServicer(self._pool), server)

    def _pool(self) -> AsyncConnectionPool:
        if self.pool is None:
            raise RuntimeError("identity is still starting; retry once it reports SERVING")
        return self.pool

    async def start(self) -> None:
        """Connect in the background (the gRPC server answers NOT_SERVING meanwhile)."""
        await self.life.start(self._startup)

    async def stop(self) -> None:
        await self.life.close()

    async def _startup(self) -> None:
        s = self.settings
        pool = await self.life.connect(
            "database",
            lambda: db.open_database(s.database_url, MIGRATIONS),
            close=lambda pool: pool.close(),
        )
        if pool is None:
            return
        self.pool = pool
        bus = await self.life.connect_bus(s)
        if bus is None:
            return
        self.bus = bus
        relay = OutboxRelay(pool, bus)
        pairing = Pairing(
            pool,
            relay,
            chain_id=s.chain_id,
            grace_s=s.link_pair_grace,
            expected_domain=urlsplit(s.public_url_frontend).netloc,
        )
        self.pairing = pairing
        stop = self.life.stopping
        self.life.spawn(relay.run(stop), "outbox-relay", vital=True)
        self.life.spawn(bus.consume(pairing.handle, stop), "consumer", vital=True)
        self.life.spawn(pairing.run_sweeper(stop), "sweeper", vital=True)
        log.info(
            "started",
            extra={
                "database": db.redact(s.database_url),
                "chain_id": s.chain_id,
                "pair_grace_s": s.link_pair_grace,
            },
        )


async def run(settings: IdentitySettings) -> None:
    app = Identity(settings)
    await serve_grpc(
        service_name=SERVICE,
        servicers=app.add_servicers,
        host=settings.host,
        grpc_port=settings.grpc_port,
        metrics_port=settings.metrics_port,
        on_start=app.start,
        on_stop=app.stop,
        ready=app.ready,
    )


def main() -> None:
    configure_logging(SERVICE)
    settings = load_or_exit(IdentitySettings, SERVICE)
    arm_or_exit(SERVICE)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
