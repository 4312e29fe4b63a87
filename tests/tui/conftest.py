"""Fixtures for the dashboard tests: one real local stack per session, and a way to wait."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from kdemo.runtime import get_runtime
from kdemo.runtime.base import Runtime
from kdemo.tui import DashboardApp
from kdemo.tui.widgets import TopologyGraph

WAIT_S = 30.0


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], bool], what: str, *, within_s: float = WAIT_S
) -> None:
    """Let the app run until `condition` holds; fail naming `what` after `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def node_state(app: DashboardApp, node: str) -> str | None:
    """The state the topology graph draws for `node` (None before the first status)."""
    view = app.query_one(TopologyGraph).views.get(node)
    return view.state if view is not None else None


def _quiet(_message: str) -> None:
    return


@pytest.fixture(scope="package")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A real local stack (services, nats, postgres), up once, purged at the end."""
    state_dir: Path = tmp_path_factory.mktemp("tui-stack") / "state"
    runtime = get_runtime(state_dir)
    runtime.up(_quiet)
    try:
        yield runtime
    finally:
        runtime.down(purge=True)


@pytest.fixture
def down_stack(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose stack has never been brought up (purged after the test)."""
    runtime = get_runtime(tmp_path / "state")
    try:
        yield runtime
    finally:
        runtime.down(purge=True)
