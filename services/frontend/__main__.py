"""`python -m services.frontend`: serve the pages and the JSON routes until SIGTERM."""

from __future__ import annotations

import sys

import uvloop

from services.common.httpapp import serve_http
from services.common.logs import configure_logging
from services.common.settings import load_or_exit

from .app import SERVICE, create_app
from .settings import FrontendSettings


def main() -> int:
    configure_logging(SERVICE)
    settings = load_or_exit(FrontendSettings, SERVICE)
    # uvloop, as github-app and gateway: each signature is a few bus and gRPC round trips
    uvloop.run(serve_http(create_app(settings), settings.host, settings.http_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
