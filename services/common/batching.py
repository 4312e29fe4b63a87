"""Group commit: concurrent requests that each need one statement share one.

A request waits only while an earlier batch is in flight; then everything that
queued meanwhile goes in one call. Under light load each request is its own batch
(no added latency); under heavy load one round trip and one COMMIT serve many,
which is where the database's and the client's CPU per request went
(docs/performance.md).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Batcher"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Runs `submit`ted items through `run_batch`, several at a time.

    `run_batch(items)` must return one result per item, in their order, and must be
    all-or-nothing (one transaction). When a batch of several fails, each of its items
    is run again on its own, so that a failure reaches only the request that caused
    it and the others still get their answer.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        max_in_flight: int = 2,
        max_batch: int = 64,
    ) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self._run_batch = run_batch
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._queue: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._in_flight = 0
        self._flushers: set[asyncio.Task[None]] = set()
        self.batches = 0
        """How many calls of `run_batch` were made (for tests and benchmarks)."""

    async def submit(self, item: Item) -> Result:
        """`item`'s result, once the batch that carried it has run."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            flusher = asyncio.create_task(self._flush())
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        # A cancelled caller cancels its future: it is dropped if not taken yet.
        return await future

    async def _flush(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._queue:
                batch = self._take()
                if batch:
                    await self._run(batch)
                batch = []
        except BaseException:
            # Cancelled (shutdown): nobody may wait for ever on what this flusher held.
            for _, future in batch:
                future.cancel()
            raise
        finally:
            self._in_flight -= 1
            if self._queue and self._in_flight == 0:
                for _, future in self._queue:  # no flusher left to run them
                    future.cancel()
                self._queue.clear()

    def _take(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        while self._queue and len(batch) < self._max_batch:
            item, future = self._queue.popleft()
            if not future.done():  # its caller gave up before it was sent
                batch.append((item, future))
        return batch

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        self.batches += 1
        try:
            results = await self._run_batch([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            alone = await asyncio.gather(
                *(self._run_batch([item]) for item, _ in batch), return_exceptions=True
            )
            self.batches += len(batch)
            for (_, future), outcome in zip(batch, alone, strict=True):
                if isinstance(outcome, BaseException):
                    _settle(future, outcome)
                else:
                    _settle(future, outcome[0])
            return
        if len(results) != len(batch):
            error = RuntimeError(f"a batch of {len(batch)} returned {len(results)} results")
            for _, future in batch:
                _settle(future, error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(future: asyncio.Future[Result], outcome: Result | BaseException) -> None:
    if future.done():  # its caller was cancelled while the batch ran
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
