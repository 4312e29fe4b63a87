"""A background loop that works while there is work and otherwise sleeps until kicked.

The outbox relay and github-app's reply poster both drain a table: they call
`step()` again at once while it finds rows, and otherwise wait for `kick()` (after
a commit that added rows) or for the poll interval, whichever comes first.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging

__all__ = ["Poller"]

log = logging.getLogger(__name__)


class Poller(abc.ABC):
    def __init__(self, *, poll_interval: float, name: str) -> None:
        self._poll_interval = poll_interval
        self._name = name
        self._wake = asyncio.Event()

    def kick(self) -> None:
        """Wake the loop now (a commit just added work)."""
        self._wake.set()

    @abc.abstractmethod
    async def step(self) -> bool:
        """Do one round of work; True when there was some (so look again at once)."""

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                busy = await self.step()
            except Exception as exc:  # bus or database away: keep the rows, try again later
                log.warning(f"{self._name} failed", extra={"error": str(exc)})
                busy = False
            if busy:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)
