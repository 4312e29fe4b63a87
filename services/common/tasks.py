"""Background tasks a service cannot live without.

Crash-only: when such a task dies, the service stops itself (SIGTERM, so it shuts
down cleanly) and the runtime starts it again, instead of staying up unready or,
worse, ready while consuming nothing. Nothing is lost: unacked messages are
redelivered and outbox rows wait.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Coroutine
from typing import Any

__all__ = ["stop_service", "vital_task"]

log = logging.getLogger(__name__)


def vital_task(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_stop_service_if_failed)
    return task


def _stop_service_if_failed(task: asyncio.Task[None]) -> None:
    if task.cancelled() or task.exception() is None:
        return
    stop_service(f"background task {task.get_name()} died: {task.exception()!r}")


def stop_service(reason: str) -> None:
    """Stop this service cleanly (SIGTERM to itself) so the runtime starts it again: for a
    state it cannot leave by itself. Safe from any thread."""
    log.error("stopping so the runtime restarts the service", extra={"reason": reason})
    os.kill(os.getpid(), signal.SIGTERM)
