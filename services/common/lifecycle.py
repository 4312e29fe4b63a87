"""One start-up and one shutdown for every service, HTTP or gRPC.

A service's dependencies (database, bus, ...) may come up after it, so nothing is
connected before the service listens: `start` runs the service's start-up in the
background while /healthz (or the gRPC server) already answers. Each dependency is
opened with `connect`, retried with the same capped backoff (0.5 s doubling to 10 s)
until it works or the service stops, and each failed attempt is logged with its
reason. What the service needs in order to answer is declared with `require`; `ready`
is the one aggregate that /readyz and the gRPC health status report: every
requirement met, every vital background task alive, and not stopping.

`close` stops everything in the reverse order it was opened: the start-up is cancelled
if it is still going, the stop event ends the background tasks (each may finish for a
few seconds before it is cancelled), then what was opened after them closes before
what they used (the relay stops before the bus and the pool close).

There is no retry library in the lockfile (tenacity, backoff): the loop is a few
lines, and it must stop at once when the service stops, which `pause` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .tasks import vital_task

if TYPE_CHECKING:
    from .bus import Bus
    from .settings import BusSettings

__all__ = [
    "BACKOFF_CAP_S",
    "BACKOFF_FIRST_S",
    "TASK_GRACE_S",
    "Lifecycle",
    "backoff",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

BACKOFF_FIRST_S: Final = 0.5
"""The wait after a dependency's first failed attempt."""
BACKOFF_CAP_S: Final = 10.0
"""The longest wait between two attempts: a dependency that comes back is used within it."""
TASK_GRACE_S: Final = 5.0
"""How long a background task may take to finish after the stop event before it is cancelled."""


def backoff(first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_CAP_S) -> Iterator[float]:
    """The waits between attempts: `first`, doubling, never more than `cap`."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, cap)


class Lifecycle:
    """The dependencies, readiness and background tasks of one service process."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.stopping = asyncio.Event()
        """Set when shutdown begins; background tasks run until it is set."""
        self._requirements: list[tuple[str, Callable[[], bool]]] = []
        self._vital: list[asyncio.Task[None]] = []
        self._closers: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        self._startup: asyncio.Task[None] | None = None

    # -- readiness -------------------------------------------------------------------------

    def require(self, what: str, met: Callable[[], bool]) -> None:
        """`met()` must hold for the service to be ready (e.g. "bus": the bus is connected)."""
        self._requirements.append((what, met))

    def unmet(self) -> list[str]:
        """What keeps the service from being ready, by name (empty once it is ready)."""
        missing = ["stopping"] if self.stopping.is_set() else []
        missing += [what for what, met in self._requirements if not met()]
        missing += [f"task {task.get_name()}" for task in self._vital if task.done()]
        return missing

    def ready(self) -> bool:
        """The one readiness the service reports (/readyz, grpc.health.v1)."""
        return not self.unmet()

    # -- start-up --------------------------------------------------------------------------

    async def start(self, startup: Callable[[], Awaitable[None]]) -> None:
        """Run `startup` (which connects the dependencies) in the background and return."""
        self._startup = vital_task(self._run_startup(startup), "start-up")

    async def _run_startup(self, startup: Callable[[], Awaitable[None]]) -> None:
        try:
            await startup()
        except Exception:  # a bug, not a dependency away (`connect` retries those)
            log.exception("start-up failed")
            raise  # vital: the service stops and the runtime restarts it
        if not self.stopping.is_set():
            log.info("started", extra={"service": self.service})

    async def connect(
        self,
        what: str,
        open_: Callable[[], Awaitable[T]],
        *,
        close: Callable[[T], Awaitable[None]] | None = None,
        first: float = BACKOFF_FIRST_S,
        cap: float = BACKOFF_CAP_S,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
    ) -> T | None:
        """Open one dependency with `open_()`, retrying on `retry_on` with the capped backoff
        until it works; None when the service stops first. `close(resource)` is run on
        shutdown, in the reverse order of opening."""
        for delay in backoff(first, cap):
            if self.stopping.is_set():
                return None
            try:
                resource = await open_()
            except retry_on as exc:
                log.warning(
                    f"{what} not reachable yet; retrying",
                    extra={"error": str(exc) or type(exc).__name__, "retry_in_s": delay},
                )
                await self.pause(delay)
                continue
            if close is not None:
                self.on_close(what, functools.partial(close, resource))
            log.info(f"{what} connected")
            return resource
        raise AssertionError("unreachable: backoff() never ends")

    async def connect_bus(self, settings: BusSettings) -> Bus | None:
        """Connect to the bus `settings` choose (`KDEMO_BUS`: NATS or Kafka) as this service,
        retried like any dependency and closed on shutdown; None when the service stops
        first. The service sees only the `Bus` interface."""
        from .bus import BusError, connect_bus  # calc has no bus: never loaded there

        async def close(bus: Bus) -> None:
            await bus.close()

        # Only the bus being away (or refusing the login) is waited out: anything else is a
        # bug or a bad setting, which fails start-up and is said once (see _run_startup).
        return await self.connect(
            "bus", lambda: connect_bus(self.service, settings), close=close, retry_on=(BusError,)
        )

    def on_close(self, what: str, closer: Callable[[], Awaitable[None]]) -> None:
        """Run `closer()` on shutdown, before whatever was registered earlier."""
        self._closers.append((what, closer))

    def spawn(
        self, coro: Coroutine[Any, Any, None], name: str, *, vital: bool = False
    ) -> asyncio.Task[None]:
        """A background task that ends with the service (it should return once `stopping`
        is set). A vital one is part of readiness, and its death restarts the service
        (`services.common.tasks.vital_task`)."""
        task = vital_task(coro, name) if vital else asyncio.create_task(coro, name=name)
        if vital:
            self._vital.append(task)
        self.on_close(f"task {name}", lambda: _finish(task))
        return task

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less when the service stops meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    # -- shutdown --------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop: cancel a start-up still going, then close everything, newest first."""
        self.stopping.set()
        if self._startup is not None:
            await _finish(self._startup, grace_s=0.0)
        while self._closers:
            what, closer = self._closers.pop()
            try:
                await closer()
            except Exception as exc:  # closing a broken connection may fail; the rest must close
                log.warning(f"closing {what} failed", extra={"error": str(exc)})
        log.info("stopped", extra={"service": self.service})

    @contextlib.asynccontextmanager
    async def running(self, startup: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
        """`start(startup)` on entry and `close()` on exit: the body of an HTTP lifespan."""
        await self.start(startup)
        try:
            yield
        finally:
            await self.close()


async def _finish(task: asyncio.Task[None], grace_s: float = TASK_GRACE_S) -> None:
    """Let `task` end by itself within `grace_s`, else cancel it; either way, wait for it."""
    if not task.done():
        await asyncio.wait({task}, timeout=grace_s)
    task.cancel()
    results = await asyncio.gather(task, return_exceptions=True)
    failure = results[0]
    if isinstance(failure, Exception):
        log.warning(f"task {task.get_name()} had failed", extra={"error": repr(failure)})
