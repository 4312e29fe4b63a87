"""The dashboard's widgets: the graph, the journeys, the feed, the detail pane."""

from kdemo.tui.widgets.graph import TopologyGraph
from kdemo.tui.widgets.panes import DetailPane, EventFeed, JourneyTable

__all__ = ["DetailPane", "EventFeed", "JourneyTable", "TopologyGraph"]
