"""The group-commit batcher on its own: who shares a call, what a failure reaches, and
what happens to a caller that gives up. (With a real database: test_github_app_group_commit.)"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.common.batching import Batcher


class Calls:
    """A `run_batch` that records each batch and can be held until released."""

    def __init__(self, *, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_on = fail_on

    async def __call__(self, items: Sequence[str]) -> list[str]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.fail_on in items:
            raise ValueError(f"{self.fail_on} is refused")
        return [item.upper() for item in items]


async def first_in_flight() -> tuple[Calls, Batcher[str, str], asyncio.Task[str]]:
    """A batcher with at most one call in flight, and that call, of "a", held."""
    calls = Calls()
    calls.release.clear()
    batcher: Batcher[str, str] = Batcher(calls, max_in_flight=1)
    first = asyncio.create_task(batcher.submit("a"))
    await asyncio.sleep(0)  # the caller queues "a" and starts a flusher
    await asyncio.sleep(0)  # the flusher sends it
    return calls, batcher, first


async def test_one_at_a_time_each_is_its_own_batch() -> None:
    calls = Calls()
    batcher: Batcher[str, str] = Batcher(calls)
    assert [await batcher.submit(item) for item in ("a", "b", "c")] == ["A", "B", "C"]
    assert calls.batches == [["a"], ["b"], ["c"]]


async def test_those_that_arrive_during_a_call_share_the_next() -> None:
    calls, batcher, first = await first_in_flight()
    rest = [asyncio.create_task(batcher.submit(item)) for item in "bcde"]
    await asyncio.sleep(0)
    calls.release.set()
    assert await first == "A"
    assert await asyncio.gather(*rest) == ["B", "C", "D", "E"]
    assert calls.batches == [["a"], ["b", "c", "d", "e"]]
    assert batcher.batches == 2


async def test_a_batch_holds_at_most_max_batch() -> None:
    calls = Calls()
    batcher: Batcher[str, str] = Batcher(calls, max_in_flight=1, max_batch=2)
    answers = await asyncio.gather(*(batcher.submit(item) for item in "abcde"))
    assert answers == ["A", "B", "C", "D", "E"]
    assert calls.batches == [["a", "b"], ["c", "d"], ["e"]]


async def test_a_failure_reaches_only_its_own_caller() -> None:
    calls = Calls(fail_on="c")
    batcher: Batcher[str, str] = Batcher(calls, max_in_flight=1)
    outcomes = await asyncio.gather(
        *(batcher.submit(item) for item in "abcd"), return_exceptions=True
    )
    assert outcomes[:2] == ["A", "B"]
    assert outcomes[3] == "D"
    assert isinstance(outcomes[2], ValueError)
    assert str(outcomes[2]) == "c is refused"
    # the whole batch failed, then each ran alone
    assert calls.batches == [["a", "b", "c", "d"], ["a"], ["b"], ["c"], ["d"]]


async def test_a_caller_that_gives_up_before_its_batch_is_not_sent() -> None:
    calls, batcher, first = await first_in_flight()
    gives_up = asyncio.create_task(batcher.submit("b"))
    stays = asyncio.create_task(batcher.submit("c"))
    await asyncio.sleep(0)
    gives_up.cancel()
    calls.release.set()
    assert (await first, await stays) == ("A", "C")
    with pytest.raises(asyncio.CancelledError):
        await gives_up
    assert calls.batches == [["a"], ["c"]]


async def test_a_wrong_number_of_results_fails_every_caller() -> None:
    async def short(items: Sequence[str]) -> list[str]:
        return list(items)[1:]

    batcher: Batcher[str, str] = Batcher(short, max_in_flight=1)
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in "ab"), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes


async def test_stopping_a_flusher_leaves_nobody_waiting() -> None:
    _, batcher, held = await first_in_flight()
    queued = asyncio.create_task(batcher.submit("b"))
    await asyncio.sleep(0)
    for flusher in list(batcher._flushers):  # what a shutdown does to the loop's tasks
        flusher.cancel()
    for task in (held, queued):
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
