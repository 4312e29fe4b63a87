"""Lays the declared topology out on a character grid, and renders it line by line.

Pure functions of the topology (no Textual, no I/O), so the layout is tested and
benchmarked on its own. The picture:

- services in columns by rank (longest path over service-to-service edges);
- external actors in their own columns at the far left (sources) and far right
  (sinks), behind a dotted stack boundary;
- the bus and the database as horizontal bars under everything; in each column the
  nodes connected to one of them join one trunk (a short stub from the box's side) that
  drops onto its bar, instead of a line from every node;
- every other edge routed orthogonally through the channel between columns (an edge
  that skips a column through a corridor above or under the boxes), its protocol
  written on it;
- among those choices (column order, corridor, trunk side, lane order) the layout keeps
  the one with the fewest crossings (`count_crossings`).

Layout runs once per topology; `render_line` runs per visible line and refresh.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise, permutations
from typing import Literal, NamedTuple

from kdemo.topology import BUSES, Edge, Node, NodeKind

__all__ = [
    "Box",
    "EdgeKey",
    "GraphLayout",
    "NodeView",
    "Owner",
    "Route",
    "count_crossings",
    "edge_key",
    "edge_label",
    "layout_graph",
    "render_line",
]


class EdgeKey(NamedTuple):
    """An edge by its two ends: what routes, labels and lit edges are keyed on."""

    source: str
    target: str


OwnerKind = Literal["route", "label", "bar", "boundary", "header", "caption"]


class Owner(NamedTuple):
    """What drew a cell: an edge's line or label, a hub's bar, or plain text."""

    kind: OwnerKind
    edges: tuple[EdgeKey, ...] = ()
    """The edges a line or label stands for: it lights when any of them does."""
    hub: str = ""
    """The hub a bar is drawn for."""


Run = tuple[str, str]
"""A run of text and the Rich style it is drawn in."""

_N, _E, _S, _W = 1, 2, 4, 8
_GLYPHS = {
    _N | _S: "│",
    _E | _W: "─",
    _N | _E: "└",
    _N | _W: "┘",
    _S | _E: "┌",
    _S | _W: "┐",
    _N | _S | _E: "├",
    _N | _S | _W: "┤",
    _E | _W | _N: "┴",
    _E | _W | _S: "┬",
    _N | _E | _S | _W: "┼",
    _N: "│",
    _S: "│",
    _E: "─",
    _W: "─",
}
_MIN_BOX_W = 13
_MIN_BOX_H = 5
_HUBS = (NodeKind.BUS, NodeKind.DATABASE)

STATE_STYLES: dict[str, str] = {
    "ready": "bold green",
    "starting": "bold yellow",
    "restarting": "bold magenta",
    "down": "bold red",
    "unknown": "dim",
    "external": "cyan",
}
_BADGES = {
    "ready": "● ready",
    "starting": "◌ starting",
    "restarting": "↻ restart",
    "down": "✖ down",
    "unknown": "? unknown",
    "external": "outside",
}
LIT_STYLE = "bold black on bright_yellow"
DEAD_STYLE = "bold white on red"


def edge_key(edge: Edge) -> EdgeKey:
    return EdgeKey(edge.source, edge.target)


def edge_label(edge: Edge) -> str:
    """The text drawn on an edge: its protocol."""
    return edge.protocol.value


@dataclass(frozen=True)
class Box:
    name: str
    kind: NodeKind
    x: int
    y: int
    w: int
    h: int

    def contains(self, x: int, y: int) -> bool:
        return self.x <= x < self.x + self.w and self.y <= y < self.y + self.h


@dataclass(frozen=True)
class Route:
    """A polyline of grid points: an edge between boxes (with where its label goes), a node's
    stub onto a hub trunk, or the trunk itself: one line per column and hub down to its bar."""

    edges: tuple[EdgeKey, ...]
    """The edges it stands for: one, or a trunk's every edge (it lights when one does)."""
    protocol: str
    points: tuple[tuple[int, int], ...]
    label: str = ""
    label_at: tuple[int, int] | None = None
    to_hub: bool = False
    trunk: tuple[int, str] | None = None
    """(column, hub) of the trunk it is or joins."""

    @property
    def key(self) -> EdgeKey:
        return self.edges[0]


@dataclass(frozen=True)
class Bar:
    """A hub (bus or database) drawn as a horizontal bar."""

    name: str
    title: str
    y: int
    junctions: tuple[int, ...]
    label_x: int = 2
    """Where its title and state are written: in the widest stretch no line meets or crosses."""
    label_room: int = 0


@dataclass(frozen=True)
class NodeView:
    """What the graph shows inside one box: observed state and a few facts."""

    state: str = "unknown"
    """ready, starting, down, restarting, unknown (not observed yet) or external."""
    facts: tuple[str, ...] = ()
    """Up to two short lines: pid or pod count, uptime."""
    restarts: int = 0
    selected: bool = False


@dataclass
class GraphLayout:
    width: int
    height: int
    boxes: dict[str, Box]
    routes: list[Route]
    bars: list[Bar]
    captions: list[tuple[int, str]]
    """(y, text) lines under the bars: which events each node moves over the bus."""
    headers: list[tuple[int, str]]
    """(x, text) on the first line: which columns are outside the stack."""
    boundaries: list[int]
    """x of the dotted stack-boundary lines."""
    static: list[list[str]] = field(repr=False, default_factory=list)
    owners: list[list[int]] = field(repr=False, default_factory=list)
    """Per cell: index into `owner_keys` of what drew it (-1: nothing)."""
    owner_keys: list[Owner] = field(repr=False, default_factory=list)
    """What drew each cell, by the index in `owners`."""
    rows_of_boxes: dict[int, list[Box]] = field(repr=False, default_factory=dict)

    def box_at(self, x: int, y: int) -> Box | None:
        for box in self.rows_of_boxes.get(y, ()):
            if box.contains(x, y):
                return box
        return None


def _ranks(services: Sequence[str], edges: Sequence[Edge]) -> dict[str, int]:
    rank = dict.fromkeys(services, 0)
    inner = [e for e in edges if e.source in rank and e.target in rank and e.source != e.target]
    for _ in range(len(services)):  # longest path; bounded so a cycle cannot loop forever
        changed = False
        for e in inner:
            if rank[e.target] < rank[e.source] + 1 <= len(services):
                rank[e.target] = rank[e.source] + 1
                changed = True
        if not changed:
            break
    return rank


def layout_graph(nodes: Sequence[Node], edges: Sequence[Edge]) -> GraphLayout:
    """Place every node and route every edge; the result is reused until the topology changes.

    A first layout (columns by rank, each ordered by its predecessors) is improved by trying
    one choice at a time (a column's order, a long edge above or under the boxes, which side
    of a column its hub trunks run, which hub's trunk is nearer, how a channel's lanes are
    ordered) and keeping what has fewer crossings. Past `_SEARCH_EDGES` edges the first
    layout is kept: the search would cost more than it saves.
    """
    names = {n.name for n in nodes}
    edges = [e for e in edges if e.source in names and e.target in names]
    hubs = [n for n in nodes if n.kind in _HUBS]
    externals = [n for n in nodes if n.kind is NodeKind.EXTERNAL]
    sources_of = {n.name for n in externals if any(e.source == n.name for e in edges)}
    left = [n for n in externals if n.name in sources_of]
    right = [n for n in externals if n.name not in sources_of]
    services = [n for n in nodes if n.kind is NodeKind.SERVICE]
    rank = _ranks([n.name for n in services], edges)
    columns: list[list[Node]] = []
    if left:
        columns.append(left)
    ranked = max(rank.values(), default=-1) + 1
    offset = len(columns)
    columns += [[] for _ in range(ranked)]
    for n in services:
        columns[offset + rank[n.name]].append(n)
    columns = [c for c in columns if c]
    if right:
        columns.append(right)
    col_of = {n.name: i for i, col in enumerate(columns) for n in col}

    # Order inside each column by the mean position of predecessors (fewer crossings).
    position = {n.name: i for col in columns for i, n in enumerate(col)}
    for col in columns[1:]:

        def barycentre(n: Node) -> float:
            preds = [position[e.source] for e in edges if e.target == n.name and e.source in col_of]
            return sum(preds) / len(preds) if preds else float(position[n.name])

        col.sort(key=barycentre)
        position.update({n.name: i for i, n in enumerate(col)})

    ctx = _Context(
        nodes={n.name: n for n in nodes},
        edges=[e for e in edges if e.source in col_of],
        hubs=[h.name for h in hubs],
        has_left=bool(left),
        has_right=bool(right),
        n_services=len(services),
    )
    choices = _Choices(
        orders=tuple(tuple(n.name for n in col) for col in columns),
        above=frozenset(edge_key(e) for e in ctx.edges if _spans(e, col_of, ctx)),
        left=frozenset(),
        hubs=tuple(ctx.hubs),
        lanes=(0,) * (len(columns) + 1),
    )
    best = _build(ctx, choices)
    if len(ctx.edges) <= _SEARCH_EDGES:
        cost = _cost(best)
        for _ in range(_ROUNDS):
            improved = False
            for vary in (_vary_orders, _vary_above, _vary_sides, _vary_hubs, _vary_lanes):
                for candidate in vary(choices, ctx):
                    g = _build(ctx, candidate)
                    g_cost = _cost(g)
                    if g_cost < cost:
                        best, cost, choices, improved = g, g_cost, candidate, True
            if not improved:
                break
    _paint_static(best)
    return best


_SEARCH_EDGES = 48
_ROUNDS = 3
_LANE_ORDERS = 4
"""Ways a channel's lanes may be ordered: see `_lane_key`."""


@dataclass
class _Context:
    nodes: dict[str, Node]
    edges: list[Edge]
    hubs: list[str]
    has_left: bool
    has_right: bool
    n_services: int


@dataclass(frozen=True)
class _Choices:
    orders: tuple[tuple[str, ...], ...]
    """Each column's nodes, top to bottom."""
    above: frozenset[EdgeKey]
    """Long edges routed above the boxes (the others under them)."""
    left: frozenset[int]
    """Columns whose hub trunks run on their left (the others on their right)."""
    hubs: tuple[str, ...]
    """Hubs by how near their trunk runs to the boxes, nearest first."""
    lanes: tuple[int, ...]
    """Per channel, how its lanes are ordered (`_lane_key`)."""


def _spans(e: Edge, col_of: Mapping[str, int], ctx: _Context) -> bool:
    """Whether an edge between boxes skips a column (or goes back): it needs a corridor."""
    return e.target not in ctx.hubs and col_of[e.target] != col_of[e.source] + 1


def _vary_orders(ch: _Choices, ctx: _Context) -> list[_Choices]:
    out = []
    for k, order in enumerate(ch.orders):
        if len(order) > 4:
            continue
        for perm in permutations(order):
            if perm != order:
                orders = (*ch.orders[:k], perm, *ch.orders[k + 1 :])
                out.append(replace(ch, orders=orders))
    return out


def _vary_above(ch: _Choices, ctx: _Context) -> list[_Choices]:
    col_of = {name: i for i, order in enumerate(ch.orders) for name in order}
    spanning = [edge_key(e) for e in ctx.edges if _spans(e, col_of, ctx)]
    return [replace(ch, above=ch.above ^ {key}) for key in spanning]


def _vary_sides(ch: _Choices, ctx: _Context) -> list[_Choices]:
    col_of = {name: i for i, order in enumerate(ch.orders) for name in order}
    columns = sorted({col_of[e.source] for e in ctx.edges if e.target in ctx.hubs})
    return [replace(ch, left=ch.left ^ {k}) for k in columns]


def _vary_hubs(ch: _Choices, ctx: _Context) -> list[_Choices]:
    return [replace(ch, hubs=p) for p in permutations(ch.hubs) if p != ch.hubs]


def _vary_lanes(ch: _Choices, ctx: _Context) -> list[_Choices]:
    out = []
    for k, current in enumerate(ch.lanes):
        for option in range(_LANE_ORDERS):
            if option != current:
                out.append(replace(ch, lanes=(*ch.lanes[:k], option, *ch.lanes[k + 1 :])))
    return out


def _lane_key(option: int, sy: int, ty: int) -> tuple[int, int]:
    """Where an edge leaving at row `sy` for row `ty` sits among its channel's lanes.

    0: the ones going down first, the lowest leftmost (they then cross nothing), then the
    ones going up, the highest leftmost; 1: up first; 2, 3: by the row they leave at."""
    down = ty > sy
    if option == 0:
        return (0 if down else 1, -sy if down else sy)
    if option == 1:
        return (1 if down else 0, -sy if down else sy)
    return (0, sy if option == 2 else -sy)


Port = tuple[EdgeKey, bool]
"""An edge's end on a box side; True for a stub onto a hub trunk."""


def _build(ctx: _Context, ch: _Choices) -> GraphLayout:
    """The layout for one set of choices (not painted yet)."""
    columns = [[ctx.nodes[name] for name in order] for order in ch.orders]
    ncol = len(columns)
    col_of = {name: i for i, order in enumerate(ch.orders) for name in order}
    hub_rank = {h: i for i, h in enumerate(ch.hubs)}
    between = [e for e in ctx.edges if e.target not in hub_rank]
    to_hubs = [e for e in ctx.edges if e.target in hub_rank]
    spanning = [e for e in between if _spans(e, col_of, ctx)]
    above = [e for e in spanning if edge_key(e) in ch.above]
    below = [e for e in spanning if edge_key(e) not in ch.above]

    def on_left(e: Edge) -> bool:
        return col_of[e.source] in ch.left

    # Lanes per channel (channel k is left of column k): counts first, for the widths.
    trunks: dict[tuple[int, str], list[Edge]] = {}
    for e in to_hubs:
        trunks.setdefault((col_of[e.source], e.target), []).append(e)
    n_lanes = [0] * (ncol + 1)
    label_room = [0] * (ncol + 1)
    for k, _hub in trunks:
        n_lanes[k if k in ch.left else k + 1] += 1
    for e in between:
        n_lanes[col_of[e.source] + 1] += 1
        if e in spanning:
            n_lanes[col_of[e.target]] += 1
        label_room[col_of[e.target]] = max(label_room[col_of[e.target]], len(edge_label(e)) + 2)
    col_w = [max(_MIN_BOX_W, *(len(n.name) + 5 for n in col)) for col in columns]
    chan_w = [1 + n_lanes[k] + max(label_room[k], 1 if n_lanes[k] else 0) for k in range(ncol + 1)]
    xs: list[int] = []
    chan_x: list[int] = []
    x = 0
    for k in range(ncol):
        chan_x.append(x)
        x += chan_w[k]
        xs.append(x)
        x += col_w[k]
    chan_x.append(x)
    width = x + chan_w[-1]

    # Boxes: tall enough for the ports on either side.
    right_ports: dict[str, list[Port]] = {name: [] for name in col_of}
    left_ports: dict[str, list[Port]] = {name: [] for name in col_of}
    for e in between:
        right_ports[e.source].append((edge_key(e), False))
        left_ports[e.target].append((edge_key(e), False))
    for e in to_hubs:
        (left_ports if on_left(e) else right_ports)[e.source].append((edge_key(e), True))
    above.sort(key=lambda e: -abs(col_of[e.target] - col_of[e.source]))  # outermost on top
    below.sort(key=lambda e: abs(col_of[e.target] - col_of[e.source]))  # outermost lowest
    top = 1 + len(above)
    boxes: dict[str, Box] = {}
    for k, col in enumerate(columns):
        y = top
        for n in col:
            box_h = max(_MIN_BOX_H, len(right_ports[n.name]) + 2, len(left_ports[n.name]) + 2)
            boxes[n.name] = Box(n.name, n.kind, xs[k], y, col_w[k], box_h)
            y += box_h + 1
    boxes_bottom = max((b.y + b.h for b in boxes.values()), default=top)
    corridor_y = {edge_key(e): 1 + i for i, e in enumerate(above)}
    corridor_y.update({edge_key(e): boxes_bottom + i for i, e in enumerate(below)})
    bar_y = {h: boxes_bottom + len(below) + 1 + i for i, h in enumerate(ctx.hubs)}

    # Port rows: long edges above first and under last, the others by the row of their other
    # end; stubs lowest, the farther trunk's first (so a stub crosses no trunk of its own box).
    def right_order(port: Port) -> tuple[int, int]:
        key, stub = port
        if stub:
            return (3, -hub_rank[key.target])
        if key in ch.above:
            return (0, -corridor_y[key])
        if key in corridor_y:
            return (2, corridor_y[key])
        return (1, boxes[key.target].y)

    row: dict[tuple[Port, str], int] = {}
    for name, ports in right_ports.items():
        ports.sort(key=right_order)
        for i, port in enumerate(ports):
            row[(port, "out")] = boxes[name].y + 1 + i

    def left_order(port: Port) -> tuple[int, int]:
        key, stub = port
        if stub:
            return (3, -hub_rank[key.target])
        if key in ch.above:
            return (0, corridor_y[key])
        if key in corridor_y:
            return (2, -corridor_y[key])
        return (1, row[((key, False), "out")])

    for name, ports in left_ports.items():
        ports.sort(key=left_order)
        for i, port in enumerate(ports):
            row[(port, "in")] = boxes[name].y + 1 + i

    # Lanes: a column's right trunks nearest its boxes, then the edges leaving it, then the
    # long edges arriving at the next column, then that column's left trunks (nearest it).
    lane_x: dict[tuple[object, str], int] = {}
    for k in range(ncol + 1):
        lanes: list[tuple[object, str]] = []
        lanes += [
            ((k - 1, h), "trunk")
            for h in sorted(ch.hubs, key=hub_rank.__getitem__)
            if (k - 1, h) in trunks and k - 1 not in ch.left
        ]
        leaving = [e for e in between if col_of[e.source] + 1 == k]

        def leave_key(e: Edge, option: int = ch.lanes[k]) -> tuple[int, int]:
            key = edge_key(e)
            sy = row[((key, False), "out")]
            ty = corridor_y.get(key, row[((key, False), "in")])
            return _lane_key(option, sy, ty)

        lanes += [(edge_key(e), "out") for e in sorted(leaving, key=leave_key)]
        arriving = [e for e in spanning if col_of[e.target] == k]
        arriving.sort(
            key=lambda e: (
                -row[((edge_key(e), False), "in")]
                if edge_key(e) in ch.above
                else row[((edge_key(e), False), "in")]
            )
        )
        lanes += [(edge_key(e), "in") for e in arriving]
        lanes += [
            ((k, h), "trunk")
            for h in sorted(ch.hubs, key=hub_rank.__getitem__, reverse=True)
            if (k, h) in trunks and k in ch.left
        ]
        for i, lane in enumerate(lanes):
            lane_x[lane] = chan_x[k] + 1 + i
    label_x = [chan_x[k] + 1 + n_lanes[k] for k in range(ncol + 1)]

    routes: list[Route] = []
    for e in between:
        key = edge_key(e)
        src, dst = boxes[e.source], boxes[e.target]
        sy, ty = row[((key, False), "out")], row[((key, False), "in")]
        out_x = lane_x[(key, "out")]
        points: tuple[tuple[int, int], ...]
        if key in corridor_y:
            cy, in_x = corridor_y[key], lane_x[(key, "in")]
            points = (
                (src.x + src.w, sy),
                (out_x, sy),
                (out_x, cy),
                (in_x, cy),
                (in_x, ty),
                (dst.x - 1, ty),
            )
        else:
            points = ((src.x + src.w, sy), (out_x, sy), (out_x, ty), (dst.x - 1, ty))
        label_at = (label_x[col_of[e.target]], ty)
        routes.append(Route((key,), e.protocol.value, points, edge_label(e), label_at))
    for (k, hub), members in trunks.items():
        tx = lane_x[((k, hub), "trunk")]
        stubs = []
        for e in members:
            key = edge_key(e)
            box = boxes[e.source]
            sy = row[((key, True), "in" if on_left(e) else "out")]
            side_x = box.x - 1 if on_left(e) else box.x + box.w
            stubs.append(sy)
            routes.append(
                Route(
                    (key,), e.protocol.value, ((side_x, sy), (tx, sy)), to_hub=True, trunk=(k, hub)
                )
            )
        keys = tuple(edge_key(e) for e in members)
        trunk_points = ((tx, min(stubs)), (tx, bar_y[hub]))
        routes.append(
            Route(keys, members[0].protocol.value, trunk_points, to_hub=True, trunk=(k, hub))
        )

    bars: list[Bar] = []
    for hub in ctx.hubs:
        junctions = tuple(
            sorted(r.points[-1][0] for r in routes if r.trunk and r.points[-1][1] == bar_y[hub])
        )
        protocol = next((e.protocol.value for e in to_hubs if e.target == hub), "")
        met = sorted(
            r.points[0][0]
            for r in routes
            if r.trunk and r.points[0][1] < bar_y[hub] <= r.points[-1][1]
        )
        gaps = [(b - a - 1, a + 1) for a, b in zip([-1, *met], [*met, width], strict=True)]
        room, start = max(gaps, key=lambda gap: (gap[0], -gap[1]))
        title = f" {hub} · {protocol} "
        bars.append(Bar(hub, title, bar_y[hub], junctions, start + 1, max(0, room - 2)))

    captions: list[tuple[int, str]] = []
    y = boxes_bottom + len(below) + 1 + len(ctx.hubs)
    for hub in ctx.hubs:
        parts = []
        for e in to_hubs:
            if e.target != hub or not (e.publishes or e.consumes):
                continue
            text = e.source + ":"
            if e.publishes:
                text += " ↑" + ",".join(e.publishes)
            if e.consumes:
                text += " ↓" + ",".join(e.consumes)
            parts.append(text)
        for line in _wrap(parts, width - 2, prefix=f"{hub}: "):
            captions.append((y, line))
            y += 1
    height = y

    headers = []
    boundaries = []
    if ctx.has_left:
        headers.append((xs[0], "outside"))
        boundaries.append(chan_x[1])
    if ctx.has_right:
        headers.append((xs[-1], "outside"))
        boundaries.append(chan_x[ncol - 1])
    if ctx.n_services:
        headers.append((xs[1 if ctx.has_left else 0], "kdemo stack"))
    return GraphLayout(width, height, boxes, routes, bars, captions, headers, boundaries)


def _segment_cells(points: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int, int]]:
    """Every cell a polyline passes, with the directions (N, E, S, W bits) it leaves it by."""
    for (x0, y0), (x1, y1) in pairwise(points):
        if y0 == y1:
            lo, hi = min(x0, x1), max(x0, x1)
            for x in range(lo, hi + 1):
                yield x, y0, (_W if x != lo else 0) | (_E if x != hi else 0)
        else:
            lo, hi = min(y0, y1), max(y0, y1)
            for y in range(lo, hi + 1):
                yield x0, y, (_N if y != lo else 0) | (_S if y != hi else 0)


def count_crossings(g: GraphLayout) -> int:
    """Where lines of different edges cross or touch (a trunk and its stubs are one line),
    and where a line passes through a bar it does not end on."""
    groups: dict[tuple[int, int], set[object]] = {}
    hub_of: dict[object, str] = {}
    for r in g.routes:
        group: object = r.trunk if r.trunk else r.edges
        if r.trunk:
            hub_of[group] = r.trunk[1]
        for x, y, _bits in _segment_cells(r.points):
            groups.setdefault((x, y), set()).add(group)
    crossings = sum(len(s) - 1 for s in groups.values() if len(s) > 1)
    for bar in g.bars:
        for x in range(g.width):
            for group in groups.get((x, bar.y), ()):
                if hub_of.get(group) != bar.name:
                    crossings += 1
    return crossings


def _cost(g: GraphLayout) -> tuple[int, int, int]:
    return (count_crossings(g), g.height, g.width)


def _wrap(parts: Sequence[str], width: int, *, prefix: str) -> list[str]:
    lines: list[str] = []
    line = prefix
    for part in parts:
        piece = ("  " if line.strip() != prefix.strip() else "") + part
        if len(line) + len(piece) > width and line.strip() != prefix.strip():
            lines.append(line)
            line = " " * len(prefix) + part
        else:
            line += piece
    if line.strip() and line.strip() != prefix.strip():
        lines.append(line)
    return [ln[:width] for ln in lines]


def _paint_static(g: GraphLayout) -> None:
    """Draw everything that does not change with health: lines, labels, bars, captions."""
    chars = [[" "] * g.width for _ in range(g.height)]
    owners = [[-1] * g.width for _ in range(g.height)]
    keys: list[Owner] = []

    def owner(kind: OwnerKind, edges: tuple[EdgeKey, ...] = (), hub: str = "") -> int:
        keys.append(Owner(kind, edges, hub))
        return len(keys) - 1

    boundary = owner("boundary")
    bars_top = min((bar.y for bar in g.bars), default=g.height)
    for bx in g.boundaries:
        for y in range(1, bars_top):
            chars[y][bx] = "┊"
            owners[y][bx] = boundary
    text = owner("header")
    for x, label in g.headers:
        for i, ch in enumerate(label):
            if x + i < g.width:
                chars[0][x + i] = ch
                owners[0][x + i] = text
    masks: dict[tuple[int, int], int] = {}
    cell_owner: dict[tuple[int, int], int] = {}
    for r in g.routes:
        index = owner("route", r.edges)
        for x, y, bits in _segment_cells(r.points):
            masks[(x, y)] = masks.get((x, y), 0) | bits
            if not (r.trunk and (x, y) in cell_owner):
                cell_owner[(x, y)] = index  # a stub keeps its cell where it joins the trunk
    for (x, y), bits in masks.items():
        if 0 <= y < g.height and 0 <= x < g.width:
            chars[y][x] = _GLYPHS.get(bits, "┼")
            owners[y][x] = cell_owner[(x, y)]
    for r in g.routes:
        if r.to_hub:
            continue
        index = owner("label", r.edges)
        end_x, end_y = r.points[-1]
        chars[end_y][end_x] = "▶"
        owners[end_y][end_x] = index
        if r.label_at:
            lx, ly = r.label_at
            for i, ch in enumerate(r.label):
                if lx + i < end_x:
                    chars[ly][lx + i] = ch
                    owners[ly][lx + i] = index
    for bar in g.bars:
        index = owner("bar", hub=bar.name)
        row = chars[bar.y]
        for x in range(g.width):
            if row[x] in ("│", "┼"):
                row[x] = "╪"  # a line to another bar crosses this one
            else:
                row[x] = "═"
            owners[bar.y][x] = index
        for jx in bar.junctions:
            row[jx] = "╧"
        for i, ch in enumerate(bar.title[: bar.label_room]):
            if row[bar.label_x + i] == "═":
                row[bar.label_x + i] = ch
    caption = owner("caption")
    for y, line in g.captions:
        for i, ch in enumerate(line):
            chars[y][1 + i] = ch
            owners[y][1 + i] = caption
    rows: dict[int, list[Box]] = {}
    for box in g.boxes.values():
        for y in range(box.y, box.y + box.h):
            rows.setdefault(y, []).append(box)
    g.static, g.owners, g.owner_keys, g.rows_of_boxes = chars, owners, keys, rows


def _box_row(box: Box, y: int, view: NodeView) -> str:
    inner = box.w - 2
    i = y - box.y
    if i == 0:
        title = f" {box.name} "[: inner - 1]
        return "╭─" + title + "─" * (inner - 1 - len(title)) + "╮"
    if i == box.h - 1:
        return "╰" + "─" * inner + "╯"
    if i == 1:
        text = (" " + _BADGES.get(view.state, view.state))[:inner]
    elif 0 <= i - 2 < len(view.facts):
        text = (" " + view.facts[i - 2])[:inner]
    else:
        text = ""
    return "│" + text.ljust(inner) + "│"


def _owner_style(owner: Owner, views: Mapping[str, NodeView], lit: Mapping[EdgeKey, str]) -> str:
    kind = owner.kind
    if kind in ("route", "label"):
        for edge in owner.edges:
            style = lit.get(edge)
            if style is not None:
                return style
        return "dim" if kind == "route" else "italic"
    if kind == "bar":
        view = views.get(owner.hub)
        state = view.state if view is not None else "unknown"
        if state != "ready":
            return STATE_STYLES.get(state, "")
        if any(edge.target == owner.hub for edge in lit):
            return "bold bright_yellow"
        return "bold yellow" if owner.hub in BUSES else "bold green"
    if kind == "boundary":
        return "dim cyan"
    return "dim" if kind == "caption" else "bold cyan"


def render_line(
    g: GraphLayout,
    y: int,
    views: Mapping[str, NodeView],
    lit: Mapping[EdgeKey, str] | None = None,
) -> list[Run]:
    """Line `y` as runs of (text, style): boxes coloured by state, lit edges highlighted.

    `lit` maps an edge to the style it flashes in (LIT_STYLE for traffic, DEAD_STYLE for a
    dead letter).
    """
    lit = lit or {}
    chars = list(g.static[y])
    owner_styles: dict[int, str] = {-1: ""}
    styles: list[str] = []
    append = styles.append
    for index in g.owners[y]:
        style = owner_styles.get(index)
        if style is None:
            style = owner_styles[index] = _owner_style(g.owner_keys[index], views, lit)
        append(style)
    for bar in g.bars:
        if bar.y == y:
            view = views.get(bar.name) or NodeView()
            facts = " · ".join(f for f in view.facts if f)
            room = bar.label_room - (2 if view.selected else 0)
            label = f"{bar.title}· {_BADGES.get(view.state, view.state)} "
            if facts and len(label) + len(facts) + 2 <= room:
                label += f"· {facts} "
            label = label[:room]
            if view.selected:
                label = f"▶{label}◀"
            chars[bar.label_x : bar.label_x + len(label)] = list(label)
    for box in g.rows_of_boxes.get(y, ()):
        view = views.get(box.name) or NodeView(
            state="external" if box.kind is NodeKind.EXTERNAL else "unknown"
        )
        text = _box_row(box, y, view)
        style = STATE_STYLES.get(view.state, "")
        if view.selected:
            style += " reverse"
        chars[box.x : box.x + box.w] = list(text)
        styles[box.x : box.x + box.w] = [style] * box.w
    runs: list[Run] = []
    start = 0
    for x in range(1, len(chars) + 1):
        if x == len(chars) or styles[x] != styles[start]:
            runs.append(("".join(chars[start:x]), styles[start]))
            start = x
    return runs
