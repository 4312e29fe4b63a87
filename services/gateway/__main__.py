"""`python -m services.gateway`: serve the ledger and the public bounty API."""

from __future__ import annotations

import sys

import uvloop

from services.common.failpoints import arm_or_exit
from services.common.httpapp import serve_http
from services.common.logs import configure_logging
from services.common.settings import load_or_exit

from .app import create_app
from .settings import GatewaySettings

__all__ = ["main"]


def main() -> int:
    configure_logging("gateway")
    settings = load_or_exit(GatewaySettings, "gateway")
    arm_or_exit("gateway")
    # uvloop: gateway's consumer makes a few database round trips per event, and each
    # wake-up costs less on it (docs/performance.md); grpc.aio's clients run on any loop.
    uvloop.run(serve_http(create_app(settings), settings.host, settings.http_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
