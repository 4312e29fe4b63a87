"""services.common.lifecycle: capped backoff, one readiness, shutdown in reverse order."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from services.common import lifecycle, tasks
from services.common.lifecycle import Lifecycle, backoff


def test_backoff_doubles_from_half_a_second_up_to_ten() -> None:
    assert list(itertools.islice(backoff(), 7)) == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert list(itertools.islice(backoff(1.0, 60.0), 8))[-2:] == [60.0, 60.0]


async def test_connect_retries_until_the_dependency_answers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lifecycle, "BACKOFF_FIRST_S", 0.01)
    life = Lifecycle("demo")
    attempts = 0

    async def open_() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("refused")
        return "connection"

    with caplog.at_level(logging.WARNING):
        got = await life.connect("thing", open_, first=0.01)
    assert got == "connection"
    assert attempts == 3
    retries = [r for r in caplog.records if r.getMessage() == "thing not reachable yet; retrying"]
    assert [r.__dict__["retry_in_s"] for r in retries] == [0.01, 0.02]
    assert retries[0].__dict__["error"] == "refused"


async def test_stopping_ends_a_retry_at_once() -> None:
    life = Lifecycle("demo")

    async def never() -> None:
        raise ConnectionError("down")

    async def startup() -> None:
        assert await life.connect("thing", never, first=30.0) is None

    await life.start(startup)
    await asyncio.sleep(0.05)
    async with asyncio.timeout(2):
        await life.close()


async def test_ready_is_every_requirement_and_not_stopping() -> None:
    life = Lifecycle("demo")
    assert life.ready()  # nothing required: calc
    bus_up = False
    life.require("bus", lambda: bus_up)
    assert life.unmet() == ["bus"]
    bus_up = True
    assert life.ready()
    await life.close()
    assert life.unmet() == ["stopping"]


async def test_a_dead_vital_task_makes_the_service_unready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    killed: list[int] = []
    monkeypatch.setattr(tasks.os, "kill", lambda pid, sig: killed.append(sig))
    life = Lifecycle("demo")

    async def dies() -> None:
        raise RuntimeError("bug")

    task = life.spawn(dies(), "consumer", vital=True)
    await asyncio.gather(task, return_exceptions=True)
    assert life.unmet() == ["task consumer"]
    assert killed  # crash-only: the runtime restarts the service
    await life.close()


async def test_close_runs_in_reverse_order_and_survives_a_failing_closer() -> None:
    life = Lifecycle("demo")
    order: list[str] = []

    def opener(name: str) -> object:
        async def open_() -> str:
            return name

        return open_

    async def close(name: str) -> None:
        order.append(name)
        if name == "bus":
            raise OSError("already gone")

    async def startup() -> None:
        await life.connect("database", opener("database"), close=close)  # type: ignore[arg-type]
        await life.connect("bus", opener("bus"), close=close)  # type: ignore[arg-type]

        async def relay() -> None:
            await life.stopping.wait()
            order.append("relay")

        life.spawn(relay(), "relay")

    await life.start(startup)
    await asyncio.sleep(0.05)
    await life.close()
    assert order == ["relay", "bus", "database"]
