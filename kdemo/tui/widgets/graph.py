"""The topology as a graph: boxes coloured by health, edges that light up with traffic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from kdemo.runtime.base import NodeStatus
from kdemo.topology import Edge, Node, NodeKind
from kdemo.tui.graph_layout import EdgeKey, GraphLayout, NodeView, layout_graph, render_line
from kdemo.tui.messages import NodeSelected

__all__ = ["TopologyGraph", "node_view"]

LIT_SECONDS = 1.5
"""How long an edge stays lit after traffic crossed it."""


@lru_cache(maxsize=256)
def _style(spec: str) -> Style:
    return Style.parse(spec) if spec else Style()


def node_view(row: NodeStatus, *, selected: bool = False) -> NodeView:
    """What a box says about a node: its state, pid or pod count, uptime and restarts."""
    if row.pods is not None:
        ready = sum(1 for p in row.pods if p.get("ready"))
        first = f"{ready}/{len(row.pods)} pods"
    else:
        first = f"pid {row.pid}" if row.pid else "no process"
    uptime = f"up {row.uptime_text}" if row.state != "down" else ""
    restarts = f" ↻{row.restarts}" if row.restarts else ""
    facts = (first, (uptime + restarts).strip())
    return NodeView(row.state, facts, row.restarts, selected)


class TopologyGraph(ScrollView, can_focus=True):
    """The declared topology; click a box (or use the arrow keys) to select a node."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right,down", "move(1)", "Next node", show=False),
        Binding("left,up", "move(-1)", "Previous node", show=False),
    ]

    selected: reactive[str] = reactive("")
    """The node whose details the detail pane shows."""

    def __init__(
        self,
        nodes: Sequence[Node],
        edges: Sequence[Edge],
        *,
        clock: Callable[[], float],
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.layout_data: GraphLayout = layout_graph(nodes, edges)
        self.selectable = [n.name for n in nodes if n.kind is not NodeKind.EXTERNAL]
        self.views: dict[str, NodeView] = {}
        self.lit: dict[EdgeKey, tuple[str, float]] = {}
        """Edge → (style, when it was lit)."""
        self._clock = clock
        self.virtual_size = Size(self.layout_data.width, self.layout_data.height)

    def on_mount(self) -> None:
        self.set_interval(0.3, self._fade)

    def show_status(self, rows: Sequence[NodeStatus]) -> None:
        self.views = {r.name: node_view(r, selected=r.name == self.selected) for r in rows}
        self.refresh()

    def show_down(self) -> None:
        """No status to show: the stack is not up, so every node is down."""
        self.views = {
            name: NodeView("down", ("no process",), 0, name == self.selected)
            for name in self.selectable
        }
        self.refresh()

    def light(self, edges: set[EdgeKey], style: str) -> None:
        now = self._clock()
        for key in edges:
            self.lit[key] = (style, now)
        if edges:
            self.refresh()

    def _fade(self) -> None:
        now = self._clock()
        stale = [k for k, (_, when) in self.lit.items() if now - when > LIT_SECONDS]
        for key in stale:
            del self.lit[key]
        if stale:
            self.refresh()

    def watch_selected(self, old: str, new: str) -> None:
        for name in (old, new):
            view = self.views.get(name)
            if view is not None:
                self.views[name] = NodeView(view.state, view.facts, view.restarts, name == new)
        self.refresh()
        if new:
            self.post_message(NodeSelected(new))

    def action_move(self, step: int) -> None:
        names = self.selectable
        if not names:
            return
        index = names.index(self.selected) if self.selected in names else -1
        self.selected = names[(index + step) % len(names)]

    def on_click(self, event: events.Click) -> None:
        x = event.x + int(self.scroll_offset.x)
        y = event.y + int(self.scroll_offset.y)
        box = self.layout_data.box_at(x, y)
        if box is not None and box.name in self.selectable:
            self.selected = box.name

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        line = y + scroll_y
        width = self.scrollable_content_region.width
        if line >= self.layout_data.height:
            return Strip.blank(width)
        views = self.views
        if self.selected and self.selected not in views:
            views = {**views, self.selected: NodeView(selected=True)}
        lit = {k: style for k, (style, _) in self.lit.items()}
        runs = render_line(self.layout_data, line, views, lit)
        strip = Strip([Segment(text, _style(style)) for text, style in runs])
        return strip.crop(scroll_x, scroll_x + width)
