"""serve_grpc: readiness mirrored into grpc.health.v1 and /readyz, hooks, graceful stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Awaitable, Callable

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.grpc_service import READY_POLL_S, serve_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _health(addr: str) -> int:
    async with grpc.aio.insecure_channel(addr) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="demo"), timeout=2
        )
        status: int = reply.status
        return status


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    # Polls state owned by another component (a server), which offers no event to await.
    while not await condition():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def test_readiness_hooks_and_sigterm() -> None:
    """Health follows ready() (NOT_SERVING, then SERVING), /healthz answers throughout,
    on_start and on_stop run once each, and SIGTERM makes serve_grpc return."""
    grpc_port, metrics_port = _free_port(), _free_port()
    addr, base = f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{metrics_port}"
    is_ready = False
    calls: list[str] = []

    async def on_start() -> None:
        calls.append("start")

    async def on_stop() -> None:
        calls.append("stop")

    task = asyncio.create_task(
        serve_grpc(
            service_name="demo",
            servicers=lambda server: None,
            host="127.0.0.1",
            grpc_port=grpc_port,
            metrics_port=metrics_port,
            on_start=on_start,
            on_stop=on_stop,
            ready=lambda: is_ready,
        )
    )
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:

        async def started() -> bool:
            try:
                return calls == ["start"] and (await http.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        async with asyncio.timeout(10):
            await _until(started)
        assert (await http.get("/readyz")).status_code == 503
        assert await _health(addr) == NOT_SERVING

        is_ready = True

        async def serving() -> bool:
            return bool(await _health(addr) == SERVING)

        async with asyncio.timeout(10 * READY_POLL_S + 5):
            await _until(serving)
        assert (await http.get("/readyz")).status_code == 200

    os.kill(os.getpid(), signal.SIGTERM)  # routed to serve_grpc's loop handler
    await asyncio.wait_for(task, timeout=15)
    assert calls == ["start", "stop"]


@pytest.mark.parametrize("busy_one", ["KDEMO_GRPC_PORT", "KDEMO_METRICS_PORT"])
async def test_busy_port_is_named(busy_one: str) -> None:
    """A port already in use fails start-up with an error naming the variable that sets it."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        grpc_port = taken if busy_one == "KDEMO_GRPC_PORT" else _free_port()
        metrics_port = taken if busy_one == "KDEMO_METRICS_PORT" else _free_port()
        with pytest.raises(OSError, match=busy_one):
            await asyncio.wait_for(
                serve_grpc(
                    service_name="demo",
                    servicers=lambda server: None,
                    host="127.0.0.1",
                    grpc_port=grpc_port,
                    metrics_port=metrics_port,
                    ready=lambda: True,
                ),
                timeout=15,
            )
