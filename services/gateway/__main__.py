"""`python -m services.gateway`: serve the ledger and the public bounty API."""

from __future__ import annotations

import asyncio
import sys

from pydantic import ValidationError

from services.common.httpapp import serve_http
from services.common.logs import configure_logging

from .app import create_app
from .settings import GatewaySettings

__all__ = ["main"]


def main() -> int:
    configure_logging("gateway")
    try:
        settings = GatewaySettings()  # read from the KDEMO_* environment
    except ValidationError as exc:
        for error in exc.errors():
            name = "KDEMO_" + "_".join(str(p) for p in error["loc"]).upper()
            reason = "not set" if error["type"] == "missing" else error["msg"]
            print(
                f"gateway: {name}: {reason}; the runtime passes it (see docs/architecture.md)",
                file=sys.stderr,
            )
        return 2
    asyncio.run(serve_http(create_app(settings), settings.host, settings.http_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
