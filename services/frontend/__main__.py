"""`python -m services.frontend`: serve the pages and the JSON routes until SIGTERM."""

from __future__ import annotations

import asyncio
import sys

from pydantic import ValidationError

from services.common.httpapp import serve_http
from services.common.logs import configure_logging

from .app import SERVICE, create_app
from .settings import FrontendSettings


def _settings() -> FrontendSettings | None:
    try:
        return FrontendSettings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "KDEMO_" + "_".join(str(p) for p in error["loc"]).upper()
            print(f"frontend: {name}: {error['msg']}", file=sys.stderr)
        print("frontend: set the variables above (see docs/architecture.md)", file=sys.stderr)
        return None


def main() -> int:
    configure_logging(SERVICE)
    settings = _settings()
    if settings is None:
        return 2
    asyncio.run(serve_http(create_app(settings), settings.host, settings.http_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
