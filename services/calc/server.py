"""calc's gRPC servicer and the process around it."""

from __future__ import annotations

import logging

import grpc

from services.calc import arithmetic
from services.calc.settings import CalcSettings
from services.common.grpc_service import MAX_SUMMARIZE_ITEMS, serve_grpc
from services.common.lifecycle import Lifecycle
from services.protos import calc_pb2, calc_pb2_grpc

__all__ = ["CalcServicer", "run"]

log = logging.getLogger(__name__)


class CalcServicer(calc_pb2_grpc.CalcServicer):
    """Quote and Summarize; bad input is INVALID_ARGUMENT with the field named."""

    def __init__(self, fee_bps: int) -> None:
        self.fee_bps = fee_bps

    async def Quote(
        self,
        request: calc_pb2.QuoteRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> calc_pb2.QuoteReply:
        try:
            q = arithmetic.quote(request.denomination, request.amount, fee_bps=self.fee_bps)
        except arithmetic.InvalidInput as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return calc_pb2.QuoteReply(
            denomination=q.denomination,
            amount=str(q.amount),
            decimals=q.decimals,
            base_units=str(q.base_units),
            fee_bps=q.fee_bps,
            fee=str(q.fee),
            payout=str(q.payout),
        )

    async def Summarize(
        self,
        request: calc_pb2.SummarizeRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> calc_pb2.SummarizeReply:
        if len(request.items) > MAX_SUMMARIZE_ITEMS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"items: {len(request.items)} given, at most {MAX_SUMMARIZE_ITEMS} per call; "
                "split the items into batches and add up their totals",
            )
        items = ((item.denomination, item.amount) for item in request.items)
        try:
            totals = arithmetic.summarize(items, fee_bps=self.fee_bps)
        except arithmetic.InvalidInput as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return calc_pb2.SummarizeReply(
            totals=[
                calc_pb2.Total(
                    denomination=t.denomination,
                    decimals=t.decimals,
                    count=t.count,
                    amount=str(t.amount),
                    base_units=str(t.base_units),
                    fee=str(t.fee),
                    payout=str(t.payout),
                )
                for t in totals
            ],
            fee_bps=self.fee_bps,
        )


async def run(settings: CalcSettings) -> None:
    """Serve calc until SIGTERM/SIGINT. calc has no dependencies, so its lifecycle requires
    nothing and it is ready as soon as it listens."""
    servicer = CalcServicer(settings.calc_fee_bps)
    life = Lifecycle("calc")

    async def nothing_to_connect() -> None:
        pass

    log.info("starting", extra={"fee_bps": settings.calc_fee_bps})
    await serve_grpc(
        service_name="calc",
        health_services=[calc_pb2.DESCRIPTOR.services_by_name["Calc"].full_name],
        servicers=lambda server: calc_pb2_grpc.add_CalcServicer_to_server(servicer, server),
        host=settings.host,
        grpc_port=settings.grpc_port,
        metrics_port=settings.metrics_port,
        on_start=lambda: life.start(nothing_to_connect),
        on_stop=life.close,
        ready=life.ready,
    )
