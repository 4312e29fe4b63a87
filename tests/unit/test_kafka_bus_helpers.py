"""The Kafka bus's concurrency helpers, without a broker (services/common/kafka_bus.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.common.kafka_bus import _LocksById, _to_thread_to_the_end


async def test_a_cancelled_call_in_a_thread_returns_only_once_the_thread_did() -> None:
    """A service shut down while frontend's read-back starts: the clean-up that follows the
    cancellation closes the consumer the start is using, so it must wait for the start."""
    release = threading.Event()
    returned = threading.Event()

    def start() -> None:
        release.wait(10)
        returned.set()

    call = asyncio.create_task(_to_thread_to_the_end(start))
    await asyncio.sleep(0.1)
    call.cancel()
    await asyncio.sleep(0.3)
    assert not call.done()  # still waiting for the thread
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert returned.is_set()


async def test_a_publish_holds_up_repeats_of_its_own_event_only() -> None:
    locks = _LocksById()
    slow_holds = asyncio.Event()
    slow_may_finish = asyncio.Event()
    order: list[str] = []

    async def publish(event_id: str, name: str, *, slow: bool = False) -> None:
        async with locks.hold(event_id):
            if slow:
                slow_holds.set()
                await slow_may_finish.wait()
            order.append(name)

    slow = asyncio.create_task(publish("a", "slow a", slow=True))
    await slow_holds.wait()
    repeat = asyncio.create_task(publish("a", "repeat of a"))
    await asyncio.wait_for(publish("b", "b"), 1)  # not behind the slow one
    await asyncio.sleep(0.05)
    assert order == ["b"]  # the repeat waits for the slow publish of its id
    slow_may_finish.set()
    await asyncio.gather(slow, repeat)
    assert order == ["b", "slow a", "repeat of a"]
    assert len(locks) == 0  # nothing kept once nobody holds or awaits a lock
