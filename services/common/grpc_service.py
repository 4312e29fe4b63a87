"""Shared scaffolding of the gRPC services (calc, identity) and their clients.

`serve_grpc` runs a grpc.aio server with the standard `grpc.health.v1` service
(what Kubernetes' native gRPC probes ask) next to a small HTTP server for
`/metrics`, `/healthz` and `/readyz`, and stops both gracefully on SIGTERM or
SIGINT. `grpc_channel` opens a client channel that records every call on the
topology edge it belongs to (`kdemo_edge_requests_total{from,to,protocol="gRPC"}`).

Hostile input stops at the door: a request larger than `MAX_RECEIVE_BYTES` is
RESOURCE_EXHAUSTED (gRPC refuses it before it is parsed), bytes that are not the
method's protobuf message are INVALID_ARGUMENT, and the per-call item limits
(`MAX_LOOKUP_ADDRESSES`, `MAX_SUMMARIZE_ITEMS`) are shared by the servers that
enforce them and the clients that batch under them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Final, cast

import grpc
import uvicorn
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The stubs for grpc_health declare only the thread-based servicer; the asyncio
# one ships in the same package as `health.aio`.
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.metrics import CONTENT_TYPE_LATEST, observe_edge, render_metrics
from services.common.topology import Edge, Protocol, edge

__all__ = [
    "MAX_LOOKUP_ADDRESSES",
    "MAX_RECEIVE_BYTES",
    "MAX_SUMMARIZE_ITEMS",
    "READY_POLL_S",
    "SHUTDOWN_GRACE_S",
    "grpc_channel",
    "metrics_app",
    "serve_grpc",
]

log = logging.getLogger(__name__)

READY_POLL_S = 0.25
"""How often readiness is re-evaluated and mirrored into the gRPC health status."""
SHUTDOWN_GRACE_S = 5.0
"""How long in-flight RPCs may finish after SIGTERM before they are cancelled."""
MAX_LOOKUP_ADDRESSES: Final = 1000
"""Addresses per identity `Lookup`; gateway splits longer lists into batches."""
MAX_SUMMARIZE_ITEMS: Final = 1000
"""Items per calc `Summarize`; gateway splits longer lists into batches."""
MAX_RECEIVE_BYTES: Final = 1024 * 1024
"""The largest request a server reads (larger ones are RESOURCE_EXHAUSTED, unparsed). A full
batch is under 50 KB (1000 addresses of 44 bytes, or 1000 items of at most 35), so 1 MiB
leaves ample room, and a hostile caller can make a server buffer a quarter of what gRPC's
4 MiB default would."""

Hook = Callable[[], Awaitable[None]]


def metrics_app(ready: Callable[[], bool]) -> Starlette:
    """The HTTP side: `/metrics` (Prometheus), `/healthz` (alive), `/readyz` (ready())."""

    async def metrics(_: Request) -> Response:
        return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        if ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ]
    )


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: serve_grpc owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_grpc(
    *,
    service_name: str,
    servicers: Callable[[grpc.aio.Server], None],
    host: str,
    grpc_port: int,
    metrics_port: int,
    on_start: Hook | None = None,
    on_stop: Hook | None = None,
    ready: Callable[[], bool],
    health_services: Sequence[str] = (),
) -> None:
    """Serve until SIGTERM/SIGINT, then drain and return.

    `servicers` registers the service's servicers on the server. Health answers
    for "" (the whole server), `service_name` and every name in `health_services`
    (the fully qualified gRPC service names, e.g. "kdemo.calc.v1.Calc"). Both listeners are
    up before `on_start` runs (so liveness answers while it connects to its
    dependencies); health reports SERVING only while `ready()` is true and
    NOT_SERVING from the moment shutdown begins. `on_stop` runs after the gRPC
    server has drained (also when `on_start` failed, to release what it opened).
    """
    stopping = asyncio.Event()

    def is_ready() -> bool:
        return not stopping.is_set() and ready()

    server = grpc.aio.server(
        interceptors=[_RefuseUndecodable()],
        options=[("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)],
    )
    servicers(server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    health_names = tuple(dict.fromkeys(("", service_name, *health_services)))
    for name in health_names:
        await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    address = f"{host}:{grpc_port}"
    try:
        server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(
            f"{service_name}: cannot listen for gRPC on {address} ({error}); "
            "choose a free port with KDEMO_GRPC_PORT"
        ) from error
    try:
        # Bound here rather than by uvicorn, which exits the process when it cannot bind.
        listener = socket.create_server((host, metrics_port))
    except OSError as error:
        raise OSError(
            f"{service_name}: cannot serve metrics on {host}:{metrics_port} ({error.strerror}); "
            "choose a free port with KDEMO_METRICS_PORT"
        ) from error

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await server.start()
    http = _HttpServer(
        uvicorn.Config(metrics_app(is_ready), log_config=None, lifespan="off", access_log=False)
    )
    http_task = asyncio.create_task(_serve_http(http, listener), name=f"{service_name}-http")
    try:
        while not http.started:
            if http_task.done():
                raise OSError(f"{service_name}: the metrics server failed to start")
            await asyncio.sleep(0.01)
        log.info("listening", extra={"grpc": address, "metrics": f"{host}:{metrics_port}"})
        if on_start is not None:
            await on_start()
        await _mirror_readiness(health, health_names, is_ready, stopping)
        log.info("shutting down", extra={"grace_s": SHUTDOWN_GRACE_S})
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        stopping.set()
        await health.enter_graceful_shutdown()
        await server.stop(SHUTDOWN_GRACE_S)
        try:
            if on_stop is not None:
                await on_stop()
        finally:
            http.should_exit = True
            await http_task
    log.info("stopped")


async def _serve_http(http: uvicorn.Server, listener: socket.socket) -> None:
    try:
        await http.serve(sockets=[listener])
    except SystemExit:
        # uvicorn signals a failed start-up with sys.exit; raised from a task it would
        # stop the whole event loop, so it is logged here and seen as `not started`.
        log.exception("metrics server stopped")
    finally:
        listener.close()


async def _mirror_readiness(
    health: Any, names: tuple[str, ...], ready: Callable[[], bool], stopping: asyncio.Event
) -> None:
    """Keep the gRPC health status equal to ready() until shutdown begins."""
    last: bool | None = None
    while not stopping.is_set():
        now = ready()
        if now != last:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if now
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in names:
                await health.set(name, status)
            log.info("ready" if now else "not ready")
            last = now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), READY_POLL_S)


class _RefuseUndecodable(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Bytes that do not parse as the method's request are INVALID_ARGUMENT.

    Left to gRPC, a DecodeError raised while deserialising is answered UNKNOWN, as if
    the server had failed; it is the caller's input that is wrong. So unary handlers
    get the raw bytes and parse them here, where the answer can say so.
    """

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        # None (an unknown method, answered UNIMPLEMENTED) and streaming handlers pass as they are
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer
        behaviour = cast(Callable[[Any, Any], Awaitable[Any]], handler.unary_unary)
        method = handler_call_details.method

        async def parsed(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                request = parse(raw)
            except DecodeError as error:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"request: the {len(raw)} bytes sent to {method} are not its protobuf "
                    f"message ({error}); send a request built with the stubs generated "
                    "from services/protos",
                )
            return await behaviour(request, context)

        return grpc.unary_unary_rpc_method_handler(
            parsed, response_serializer=handler.response_serializer
        )


class _EdgeInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Counts and times every unary call on a declared gRPC edge."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        with observe_edge(self.edge):
            call = await continuation(client_call_details, request)
            # Awaiting the call waits for the answer (or raises AioRpcError), so the
            # latency covers the whole round trip and failures count as errors.
            await call
        return call


def grpc_channel(source_node: str, target_node: str, addr: str) -> grpc.aio.Channel:
    """An insecure grpc.aio channel to `addr` ("host:port") whose calls are recorded
    as the topology edge `source_node` → `target_node` (a KeyError if it is undeclared)."""
    declared = edge(source_node, target_node)
    if declared.protocol is not Protocol.GRPC:
        raise ValueError(f"{source_node} -> {target_node} is declared {declared.protocol}")
    # grpc-stubs types interceptors loosely and asks callers to cast.
    interceptor = cast(grpc.aio.ClientInterceptor, _EdgeInterceptor(declared))
    # A restarted peer (the runtime brings killed nodes back) should be reached again within
    # seconds; gRPC's default reconnect backoff grows to two minutes.
    options = [
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]
    return grpc.aio.insecure_channel(addr, interceptors=[interceptor], options=options)
