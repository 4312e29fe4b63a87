"""The graph as drawn on screen at 120x35 and 160x50, fed by the recorded runtime."""

from __future__ import annotations

import pytest

from kdemo.testing.recorded import FIXED_NOW, RecordedRuntime
from kdemo.tui import DashboardApp
from kdemo.tui.widgets import TopologyGraph
from tests.tui.conftest import wait_until

CROSSINGS_BEFORE = 35
"""Crossings (┼, and ╪ where a line passes a bar) the graph had while every edge to nats and
postgres was its own line from the box's right side (before trunks, at both sizes)."""
CROSSINGS_NOW = 7
"""What the trunks and the crossing-minimising search give today: a regression fails."""


def crossings(text: str) -> int:
    """Crossings in rendered graph text: a line across another (┼) or across a bar (╪)."""
    return text.count("┼") + text.count("╪")


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
