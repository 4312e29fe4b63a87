"""identity's gRPC servicer: `Lookup(addresses)` for gateway, `LinkStatus(code)` for frontend."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

import grpc
from psycopg_pool import AsyncConnectionPool

from services.common.grpc_service import MAX_LOOKUP_ADDRESSES
from services.common.metrics import observe_edge
from services.common.timefmt import rfc3339
from services.protos import identity_pb2, identity_pb2_grpc

from . import store
from .pairing import DATABASE

__all__ = ["IdentityServicer"]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_CODE = re.compile(r"[a-z]{28}")
_STATES: Final = {
    "linked": identity_pb2.LINK_STATE_LINKED,
    "refused": identity_pb2.LINK_STATE_REFUSED,
}


class IdentityServicer(identity_pb2_grpc.IdentityServicer):
    """Answers from the identity database; writes happen only in the event handlers.

    `pool` returns the connection pool: the servicer is registered before start-up
    opens it, and the server reports NOT_SERVING until then.
    """

    def __init__(self, pool: Callable[[], AsyncConnectionPool]) -> None:
        self._pool = pool

    async def Lookup(
        self, request: identity_pb2.LookupRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> identity_pb2.LookupReply:
        if len(request.addresses) > MAX_LOOKUP_ADDRESSES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"addresses: {len(request.addresses)} given, at most {MAX_LOOKUP_ADDRESSES} "
                "per call; split the addresses into batches",
            )
        wanted: list[str] = []
        for index, address in enumerate(request.addresses):
            if not _ADDRESS.fullmatch(address):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"addresses[{index}]: {address!r:.60} is not an Ethereum address; "
                    "pass 0x followed by 40 hex digits",
                )
            wanted.append(address.lower())
        with observe_edge(DATABASE):
            async with self._pool().connection() as conn:
                links = await store.lookup_links(conn, sorted(set(wanted)))
        return identity_pb2.LookupReply(
            accounts=[
                identity_pb2.Account(
                    address=link.address,
                    github_id=link.github_id,
                    login=link.login,
                    linked_at=rfc3339(link.linked_at, "milliseconds"),
                )
                for link in links
            ]
        )

    async def LinkStatus(
        self,
        request: identity_pb2.LinkStatusRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> identity_pb2.LinkStatusReply:
        code = request.code
        if not _CODE.fullmatch(code):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"code: {code!r:.60} is not a link code; pass the 28 lower-case letters "
                "shown on the link page",
            )
        with observe_edge(DATABASE):
            async with self._pool().connection() as conn:
                outcome = await store.get_outcome(conn, code)
                req = await store.get_request(conn, code)
                conf = None if outcome else await store.get_confirmation(conn, code)
        reply = identity_pb2.LinkStatusReply(code=code)
        if req is not None:
            reply.address = req.address
            reply.login = req.login
            reply.expires_at = rfc3339(req.expires_at, "milliseconds")
        if outcome is not None:
            reply.state = _STATES[outcome.state]
            reply.reason = outcome.reason or ""
            reply.address = outcome.address or reply.address
            reply.login = outcome.login or reply.login
            reply.github_id = outcome.github_id or 0
            return reply
        if req is None and conf is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"code: {code} is unknown to identity; it appears once the link request "
                "has been received",
            )
        reply.state = identity_pb2.LINK_STATE_PENDING
        if conf is not None:
            reply.github_id = conf.github_id
            reply.login = reply.login or conf.login
        return reply
