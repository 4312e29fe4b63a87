"""`python -m services.github_app`: read the settings, refuse bad ones clearly, serve."""

from __future__ import annotations

import sys

import uvloop

from services.common.failpoints import arm_or_exit
from services.common.httpapp import serve_http
from services.common.logs import configure_logging
from services.common.settings import load_or_exit

from .app import create_app
from .settings import GithubAppSettings

__all__ = ["main"]


def main() -> int:
    configure_logging("github-app")
    settings = load_or_exit(GithubAppSettings, "github-app")
    arm_or_exit("github-app")
    # uvloop: the webhook's answer time is what GitHub sees. (The gRPC services and
    # their clients stay on asyncio's loop, which grpc.aio supports.)
    uvloop.run(serve_http(create_app(settings), settings.host, settings.http_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
