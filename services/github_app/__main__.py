"""`python -m services.github_app`: read the settings, refuse bad ones clearly, serve."""

from __future__ import annotations

import logging
import sys

import uvloop
from pydantic import ValidationError

from services.common.httpapp import serve_http
from services.common.logs import configure_logging

from .app import create_app
from .settings import GithubAppSettings

__all__ = ["main"]

log = logging.getLogger("services.github_app")


def _explain(exc: ValidationError) -> list[str]:
    """One line per bad setting, naming its environment variable, the reason and the fix."""
    lines = []
    for error in exc.errors():
        name = "KDEMO_" + "_".join(str(p) for p in error["loc"]).upper()
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            reason = "missing; set it in the environment (the runtime normally does)"
        lines.append(f"{name}: {reason}")
    return lines


def main() -> int:
    configure_logging("github-app")
    try:
        settings = GithubAppSettings()
    except ValidationError as exc:
        for line in _explain(exc):
            log.error("invalid setting", extra={"problem": line})
            print(f"github-app: {line}", file=sys.stderr)
        return 2
    # uvloop: the webhook's answer time is what GitHub sees. (The gRPC services and
    # their clients stay on asyncio's loop, which grpc.aio supports.)
    uvloop.run(serve_http(create_app(settings), settings.host, settings.http_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
