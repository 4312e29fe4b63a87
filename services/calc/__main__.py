"""`python -m services.calc`: configure from the environment, log JSON lines, serve."""

from __future__ import annotations

import asyncio
import logging
import sys

from services.calc.server import run
from services.calc.settings import SettingsError, load_settings
from services.common.logs import configure_logging

__all__ = ["main"]


def main() -> int:
    configure_logging("calc")
    log = logging.getLogger("services.calc")
    try:
        settings = load_settings()
    except SettingsError as error:
        log.error("bad configuration: %s", error)
        return 2
    try:
        asyncio.run(run(settings))
    except OSError as error:
        log.error("cannot start: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
