"""What fits at the smallest supported size, 120x35, fed by the recorded runtime: full event
names, every journey stage, and a graph drawn with few crossings."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from kdemo.testing.recorded import FIXED_NOW, RecordedRuntime, cloud_event
from kdemo.tui import DashboardApp
from kdemo.tui.widgets import EventFeed, JourneyTable, TopologyGraph
from tests.tui.conftest import wait_until

CROSSINGS_BEFORE = 35
"""Crossings (┼, and ╪ where a line passes a bar) the graph had while every edge to nats and
postgres was its own line from the box's right side (before trunks, at both sizes)."""
CROSSINGS_NOW = 7
"""What the trunks and the crossing-minimising search give today: a regression fails."""


def crossings(text: str) -> int:
    """Crossings in rendered graph text: a line across another (┼) or across a bar (╪)."""
    return text.count("┼") + text.count("╪")


def _runtime() -> RecordedRuntime:
    """The demo story and two more events with the longest names the feed must show whole."""
    runtime = RecordedRuntime.demo()
    refused = {"code": "y" * 28, "reason": "the link code was already used"}
    runtime._events.append(
        cloud_event("identity.link_refused", "y" * 28, refused, FIXED_NOW - 5, seq=7)
    )
    runtime._events.append(
        cloud_event("identity.link_confirmed", "z" * 28, {"code": "z" * 28}, FIXED_NOW - 4, seq=8)
    )
    return runtime


async def _settled(pilot: Pilot[None], app: DashboardApp) -> None:
    await wait_until(pilot, lambda: app.tap_stats.events == 8, "the recorded events")
    await wait_until(pilot, lambda: app.query_one(JourneyTable).row_count == 2, "both journeys")
    await pilot.pause()


def _lines(table: DataTable[object]) -> list[str]:
    return [table.render_line(y).text for y in range(table.size.height)]


def _fits(table: DataTable[object]) -> bool:
    """Every column is on screen: nothing to scroll to sideways."""
    return table.virtual_size.width <= table.scrollable_content_region.width


async def test_full_event_names_and_every_journey_stage_fit_at_120x35() -> None:
    """At 120x35 the feed shows each event's whole name (the time column goes first) and the
    journeys table shows every stage through `attributed` with its funder (the amount goes
    first), with nothing hidden past the right edge."""
    app = DashboardApp(_runtime(), clock=lambda: FIXED_NOW)
    async with app.run_test(size=(120, 35)) as pilot:
        await _settled(pilot, app)
        feed = app.query_one(EventFeed).query_one("#feed-table", DataTable)
        journeys = app.query_one(JourneyTable)
        feed_text = "\n".join(_lines(feed))
        for name in (
            "bounty.requested",
            "bounty.recorded",
            "identity.link_refused",
            "identity.link_confirmed",
            "☠ dlq.bounty.signed",
        ):
            assert f" {name} " in feed_text, (name, feed_text)
        assert " key " in feed_text  # the key column, cut to what is left
        assert _fits(feed)
        journey_text = "\n".join(_lines(journeys))
        assert "attributed" in journey_text
        assert "1m13s @alice" in journey_text, journey_text
        assert "…42.0s" in journey_text
        assert _fits(journeys)


@pytest.mark.parametrize("size", [(120, 35), (160, 50)])
async def test_graph_draws_fewer_crossings_than_one_line_per_hub_edge(
    size: tuple[int, int],
) -> None:
    """Counted on the graph as drawn on screen, all of it visible: edges to nats and postgres
    join one trunk per column and hub, so far fewer lines cross than before."""
    app = DashboardApp(RecordedRuntime.demo(), clock=lambda: FIXED_NOW)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: app.stack_up is True, "the first status")
        await pilot.pause()
        graph = app.query_one(TopologyGraph)
        region = graph.scrollable_content_region
        assert graph.layout_data.height <= region.height, "part of the graph is scrolled away"
        assert graph.layout_data.width <= region.width, "part of the graph is scrolled away"
        text = "\n".join(graph.render_line(y).text for y in range(region.height))
        count = crossings(text)
        assert count < CROSSINGS_BEFORE, text
        assert count <= CROSSINGS_NOW, text
