"""`python -m services.identity`: the gRPC server, the link-event consumer, relay and sweeper."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import urlsplit

import grpc
from psycopg_pool import AsyncConnectionPool

from services.common import db
from services.common.bus import Bus, connect
from services.common.failpoints import arm_or_exit
from services.common.grpc_service import serve_grpc
from services.common.logs import configure_logging
from services.common.outbox import OutboxRelay
from services.common.settings import load_or_exit
from services.common.tasks import vital_task
from services.protos import identity_pb2_grpc

from .pairing import SERVICE, Pairing
from .server import IdentityServicer
from .settings import IdentitySettings

__all__ = ["Identity", "main"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUS_DRAIN_S = 2.0
"""How long shutdown waits for the bus connection to drain (the consumer has stopped)."""
log = logging.getLogger(__name__)


class Identity:
    """Owns the pool, the bus connection and the background tasks for one process."""

    def __init__(self, settings: IdentitySettings) -> None:
        self.settings = settings
        self.pool: AsyncConnectionPool | None = None
        self.bus: Bus | None = None
        self.pairing: Pairing | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def ready(self) -> bool:
        """Ready once the database answered and the bus connection is up."""
        return (
            self.pairing is not None
            and self.pairing.database_ok
            and self.bus is not None
            and self.bus.nc.is_connected
        )

    def add_servicers(self, server: grpc.aio.Server) -> None:
        identity_pb2_grpc.add_IdentityServicer_to_server(IdentityServicer(self._pool), server)

    def _pool(self) -> AsyncConnectionPool:
        if self.pool is None:
            raise RuntimeError("identity is still starting; retry once it reports SERVING")
        return self.pool

    async def start(self) -> None:
        s = self.settings
        await db.wait_for_database(s.database_url)
        await asyncio.to_thread(db.apply_migrations, s.database_url, MIGRATIONS)
        pool = await db.open_pool(s.database_url)
        bus = await connect(SERVICE, s.nats_url, s.nats_user, s.nats_password, stream=s.nats_stream)
        relay = OutboxRelay(pool, bus)
        pairing = Pairing(
            pool,
            relay,
            chain_id=s.chain_id,
            grace_s=s.link_pair_grace,
            expected_domain=urlsplit(s.public_url_frontend).netloc,
        )
        self.pool, self.bus, self.pairing = pool, bus, pairing
        self._tasks = [
            vital_task(relay.run(self._stop), "outbox-relay"),
            vital_task(bus.consume(pairing.handle, self._stop), "consumer"),
            vital_task(pairing.run_sweeper(self._stop), "sweeper"),
        ]
        log.info(
            "started",
            extra={
                "database": db.redact(s.database_url),
                "chain_id": s.chain_id,
                "pair_grace_s": s.link_pair_grace,
            },
        )

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.bus is not None:
            try:
                await asyncio.wait_for(self.bus.close(), BUS_DRAIN_S)
            except TimeoutError:
                # nats-py's drain can wait forever on a pull subscription's inbox
                # after a JetStream publish; nothing is pending here any more.
                log.info("bus drain timed out; closing", extra={"after_s": BUS_DRAIN_S})
            await self.bus.nc.close()
        if self.pool is not None:
            await self.pool.close()


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
