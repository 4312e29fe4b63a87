"""How the dashboard looks, fed by the recorded runtime (fixed times, so stable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from kdemo.testing.recorded import FIXED_NOW, RecordedRuntime
from kdemo.tui import DashboardApp
from kdemo.tui.widgets import JourneyTable
from tests.tui.conftest import wait_until

SnapCompare = Callable[..., bool]


def _app(*, up: bool = True) -> DashboardApp:
    return DashboardApp(RecordedRuntime.demo(up=up), clock=lambda: FIXED_NOW)


async def _settled(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, DashboardApp)
    await wait_until(pilot, lambda: app.stack_up is not None, "the first status")
    if app.stack_up:
        await wait_until(pilot, lambda: app.tap_stats.events == 6, "the recorded events")
        await wait_until(pilot, lambda: app.query_one(JourneyTable).row_count == 2, "both journeys")
        await wait_until(pilot, lambda: "gateway" in app.logs, "the detail pane's logs")
        await wait_until(pilot, lambda: "gateway" in app.traffic, "the first scrape")
    await pilot.pause()


@pytest.mark.parametrize("size", [(120, 35), (160, 45)])
def test_dashboard_layout(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """Graph, journeys, events and detail, at the smallest supported size and a larger one."""
    assert snap_compare(_app(), terminal_size=size, run_before=_settled)


def test_dashboard_when_the_stack_is_down(snap_compare: SnapCompare) -> None:
    """With the stack down every node shows down and the banner says how to bring it up."""
    assert snap_compare(_app(up=False), terminal_size=(120, 35), run_before=_settled)


def test_help_screen(snap_compare: SnapCompare) -> None:
    """`?` shows every key over the dashboard."""

    async def before(pilot: Pilot[Any]) -> None:
        await _settled(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(120, 35), run_before=before)
