"""Lays the declared topology out on a character grid, and renders it line by line.

Pure functions of the topology (no Textual, no I/O), so the layout is tested and
benchmarked on its own. The picture:

- services in columns by rank (longest path over service-to-service edges);
- external actors in their own columns at the far left (sources) and far right
  (sinks), behind a dotted stack boundary;
- the bus and the database as horizontal bars under everything, each node
  connected to them dropping a line onto the bar;
- every other edge routed orthogonally through the channel between columns
  (long edges through a corridor under the boxes), its protocol written on it.

Layout runs once per topology; `render_line` runs per visible line and refresh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from kdemo.topology import Edge, Node, NodeKind

__all__ = [
    "Box",
    "EdgeKey",
    "GraphLayout",
    "NodeView",
    "Owner",
    "Route",
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
    """One edge as a polyline of grid points, with where its label goes."""

    key: EdgeKey
    protocol: str
    points: tuple[tuple[int, int], ...]
    label: str = ""
    label_at: tuple[int, int] | None = None
    to_hub: bool = False


@dataclass(frozen=True)
class Bar:
    """A hub (bus or database) drawn as a horizontal bar."""

    name: str
    title: str
    y: int
    junctions: tuple[int, ...]


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
    """Place every node and route every edge; the result is reused until the topology changes."""
    names = {n.name for n in nodes}
    edges = [e for e in edges if e.source in names and e.target in names]
    hubs = [n for n in nodes if n.kind in _HUBS]
    hub_names = {n.name for n in hubs}
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

    out_degree = {n.name: 0 for n in nodes}
    in_degree = {n.name: 0 for n in nodes}
    for e in edges:
        out_degree[e.source] += 1
        if e.target not in hub_names:
            in_degree[e.target] += 1

    # Every drawn edge: which channel it leaves by, which it enters by (channel k is left of
    # column k; channel len(columns) is right of the last).
    drawn = [e for e in edges if e.source in col_of]
    tracks: list[list[tuple[EdgeKey, str]]] = [[] for _ in range(len(columns) + 1)]
    label_room = [0] * (len(columns) + 1)
    for e in drawn:
        out_channel = col_of[e.source] + 1
        tracks[out_channel].append((edge_key(e), "out"))
        if e.target in hub_names:
            continue
        in_channel = col_of[e.target]
        if in_channel != out_channel:
            tracks[in_channel].append((edge_key(e), "in"))
        label_room[in_channel] = max(label_room[in_channel], len(edge_label(e)) + 1)

    col_w = [max(_MIN_BOX_W, *(len(n.name) + 5 for n in col)) for col in columns]
    chan_w = [
        (len(tracks[k]) + 1 + label_room[k]) if (tracks[k] or label_room[k]) else 1
        for k in range(len(columns) + 1)
    ]
    xs: list[int] = []
    chan_x: list[int] = []
    x = 0
    for k, col in enumerate(columns):
        chan_x.append(x)
        x += chan_w[k]
        xs.append(x)
        x += col_w[k]
        del col  # only the widths matter here
    chan_x.append(x)
    width = x + chan_w[-1]

    top = 1  # line 0 holds the headers
    boxes: dict[str, Box] = {}
    for k, col in enumerate(columns):
        y = top
        for n in col:
            box_h = max(_MIN_BOX_H, out_degree[n.name] + 2, in_degree[n.name] + 2)
            boxes[n.name] = Box(n.name, n.kind, xs[k], y, col_w[k], box_h)
            y += box_h + 1
    boxes_bottom = max((b.y + b.h for b in boxes.values()), default=top)

    track_x: dict[tuple[EdgeKey, str], int] = {}
    for k, entries in enumerate(tracks):
        for i, (key, end) in enumerate(entries):
            track_x[(key, end)] = chan_x[k] + 1 + i

    out_port: dict[str, int] = {}
    in_port: dict[str, int] = {}
    corridor = boxes_bottom
    routes: list[Route] = []
    spanning: list[Edge] = []
    for e in drawn:
        src = boxes[e.source]
        key = edge_key(e)
        sy = src.y + 1 + out_port.get(e.source, 0)
        out_port[e.source] = out_port.get(e.source, 0) + 1
        tx_out = track_x[(key, "out")]
        if e.target in hub_names:
            continue  # routed once the bars are placed
        dst = boxes[e.target]
        ty = dst.y + 1 + in_port.get(e.target, 0)
        in_port[e.target] = in_port.get(e.target, 0) + 1
        label = edge_label(e)
        points: tuple[tuple[int, int], ...]
        if col_of[e.target] == col_of[e.source] + 1:
            points = ((src.x + src.w, sy), (tx_out, sy), (tx_out, ty), (dst.x - 1, ty))
        else:
            spanning.append(e)
            cy = corridor
            corridor += 1
            tx_in = track_x[(key, "in")]
            points = (
                (src.x + src.w, sy),
                (tx_out, sy),
                (tx_out, cy),
                (tx_in, cy),
                (tx_in, ty),
                (dst.x - 1, ty),
            )
        label_x = points[-2][0] + 1
        routes.append(Route(key, e.protocol.value, points, label=label, label_at=(label_x, ty)))

    bar_y = corridor + 1
    bars: list[Bar] = []
    hub_y: dict[str, int] = {}
    for hub in hubs:
        hub_y[hub.name] = bar_y
        bar_y += 1
    out_port.clear()
    for e in drawn:
        src = boxes[e.source]
        sy = src.y + 1 + out_port.get(e.source, 0)
        out_port[e.source] = out_port.get(e.source, 0) + 1
        if e.target not in hub_names:
            continue
        tx = track_x[(edge_key(e), "out")]
        routes.append(
            Route(
                edge_key(e),
                e.protocol.value,
                ((src.x + src.w, sy), (tx, sy), (tx, hub_y[e.target])),
                to_hub=True,
            )
        )
    for hub in hubs:
        junctions = tuple(r.points[-1][0] for r in routes if r.to_hub and r.key.target == hub.name)
        protocol = next((e.protocol.value for e in edges if e.target == hub.name), "")
        bars.append(Bar(hub.name, f" {hub.name} · {protocol} ", hub_y[hub.name], junctions))

    captions: list[tuple[int, str]] = []
    y = bar_y
    for hub in hubs:
        parts = []
        for e in edges:
            if e.target != hub.name or not (e.publishes or e.consumes):
                continue
            text = e.source + ":"
            if e.publishes:
                text += " ↑" + ",".join(e.publishes)
            if e.consumes:
                text += " ↓" + ",".join(e.consumes)
            parts.append(text)
        for line in _wrap(parts, width - 2, prefix=f"{hub.name}: "):
            captions.append((y, line))
            y += 1
    height = y

    headers = []
    boundaries = []
    if left:
        headers.append((xs[0], "outside"))
        boundaries.append(chan_x[1])
    if right:
        headers.append((xs[-1], "outside"))
        boundaries.append(chan_x[len(columns) - 1])
    first_service = 1 if left else 0
    if services:
        headers.append((xs[first_service], "kdemo stack"))

    result = GraphLayout(width, height, boxes, routes, bars, captions, headers, boundaries)
    _paint_static(result)
    return result


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
        index = owner("route", (r.key,))
        for (x0, y0), (x1, y1) in zip(r.points, r.points[1:], strict=False):
            if y0 == y1:
                lo, hi = min(x0, x1), max(x0, x1)
                for x in range(lo, hi + 1):
                    bits = (_W if x != lo else 0) | (_E if x != hi else 0)
                    masks[(x, y0)] = masks.get((x, y0), 0) | bits
                    cell_owner[(x, y0)] = index
            else:
                lo, hi = min(y0, y1), max(y0, y1)
                for y in range(lo, hi + 1):
                    bits = (_N if y != lo else 0) | (_S if y != hi else 0)
                    masks[(x0, y)] = masks.get((x0, y), 0) | bits
                    cell_owner[(x0, y)] = index
    for (x, y), bits in masks.items():
        if 0 <= y < g.height and 0 <= x < g.width:
            chars[y][x] = _GLYPHS.get(bits, "┼")
            owners[y][x] = cell_owner[(x, y)]
    for r in g.routes:
        if r.to_hub:
            continue
        index = owner("label", (r.key,))
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
        start = 2
        for i, ch in enumerate(bar.title):
            if start + i < g.width and row[start + i] == "═":
                row[start + i] = ch
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
        return "bold yellow" if owner.hub == "nats" else "bold green"
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
            room = min(bar.junctions, default=g.width) - 3
            label = f"{bar.title}· {_BADGES.get(view.state, view.state)} "
            if facts and len(label) + len(facts) + 3 <= room:
                label += f"· {facts} "
            if view.selected:
                label = f"▶{label}◀"
            start = 2
            chars[start : start + len(label)] = list(label)
            chars = chars[: g.width]
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
