"""The journeys table, the event feed and the detail pane."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, Input, Static

from kdemo import topology
from kdemo.observe import NodeTraffic
from kdemo.runtime.base import NodeStatus, TapEvent
from kdemo.tui.graph_layout import STATE_STYLES
from kdemo.tui.journeys import Journey, event_name

__all__ = ["DetailPane", "EventFeed", "JourneyTable", "fit_columns"]

FEED_KEEP = 500
FEED_SHOW = 100
KEY_WIDTH = 16
"""The most the feed gives a key or a dead letter's reason (the tooltip has it whole)."""
_PADDING = 2
"""A DataTable cell's padding, one each side."""


def fit_columns(
    widths: Sequence[int], available: int, *, drop: Sequence[int] = (), shrink: int | None = None
) -> tuple[list[int], dict[int, int]]:
    """Which columns fit in `available` cells, and how narrow any must be cut.

    `widths` are the columns' natural widths. Columns in `drop` go first, in that order,
    until the rest fit; then column `shrink` (if given) is cut down, but not below 6, to what
    is left. Returns the indexes shown and {index: width} for a cut column.
    """
    shown = list(range(len(widths)))

    def total() -> int:
        return sum(widths[i] + _PADDING for i in shown)

    for index in drop:
        if total() <= available:
            break
        shown.remove(index)
    cut: dict[int, int] = {}
    if total() > available and shrink is not None and shrink in shown:
        cut[shrink] = max(6, widths[shrink] - (total() - available))
    return shown, cut


def _cut(text: str, width: int | None) -> str:
    """`text` within `width` cells, an ellipsis marking what was cut."""
    if width is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def _room(table: DataTable[Text]) -> int:
    """The cells a table's columns may take: its width less a vertical scrollbar's."""
    return table.size.width - table.styles.scrollbar_size_vertical


def _clock_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


class JourneyTable(DataTable[Text]):
    """One row per bounty, newest first: the time each stage took (…N while waiting).

    Every stage is always shown; where the width lacks room the amount goes first, then the
    bounty's name is cut (the highlighted row's tooltip says it whole)."""

    LABELS = ("bounty", "amount", "intent", "signed", "recorded", "attributed")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._shown: tuple[Sequence[Journey], float] = ((), 0.0)
        self._columns: list[str] = []
        self._tips: list[str] = []

    def on_mount(self) -> None:
        self.show(*self._shown)

    def on_resize(self, _event: events.Resize) -> None:
        self.show(*self._shown)

    def show(self, journeys: Sequence[Journey], now: float) -> None:
        self._shown = (journeys, now)
        rows: list[list[tuple[str, str]]] = []
        self._tips = []
        for j in journeys[:50]:
            name = f"{j.repository}#{j.number}" if j.repository else j.intent_id[:10] + "…"
            amount = f"{j.amount} {j.denomination}".strip()
            cells = [(name, ""), (amount, "")]
            for stage, text in j.durations(now):
                if stage == "attributed" and j.funder_login and text and not text.startswith("…"):
                    text = f"{text} @{j.funder_login}"
                style = "yellow" if text.startswith("…") else "green" if text else "dim"
                cells.append((text or "·", style))
            rows.append(cells)
            funder = f" · funded by @{j.funder_login}" if j.funder_login else ""
            self._tips.append(f"{name} · {amount} · intent {j.intent_id}{funder}")
        widths = [
            max([len(label), *(len(row[i][0]) for row in rows)])
            for i, label in enumerate(self.LABELS)
        ]
        shown, cut = fit_columns(widths, _room(self), drop=(1,), shrink=0)
        labels = [_cut(self.LABELS[i], cut.get(i)) for i in shown]
        if labels != self._columns:
            self.clear(columns=True)
            self.add_columns(*labels)
            self._columns = labels
        else:
            self.clear()
        for j, cells in zip(journeys, rows, strict=False):
            self.add_row(
                *(Text(_cut(cells[i][0], cut.get(i)), style=cells[i][1]) for i in shown),
                key=j.intent_id,
            )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        row = event.cursor_row
        self.tooltip = self._tips[row] if 0 <= row < len(self._tips) else None


class EventFeed(Vertical):
    """The CloudEvents on the bus, newest first, filtered by a substring; dead letters in red."""

    filter_text: reactive[str] = reactive("")
    """Only events whose subject, type or id contains this text are listed."""

    LABELS = ("time", "event", "key / reason")
    SHORT_LABELS: ClassVar[Mapping[int, str]] = {2: "key"}
    """What a cut column is headed when its label is wider than it."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.events: deque[TapEvent] = deque(maxlen=FEED_KEEP)
        self.dead_letters = 0
        self._columns: list[str] = []
        self._tips: list[str] = []

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter events (/)", id="feed-filter")
        yield DataTable(id="feed-table", cursor_type="row")

    def on_mount(self) -> None:
        self.redraw()

    def on_resize(self, _event: events.Resize) -> None:
        self.redraw()

    @on(DataTable.RowHighlighted, "#feed-table")
    def _tip_for_row(self, event: DataTable.RowHighlighted) -> None:
        row = event.cursor_row
        event.data_table.tooltip = self._tips[row] if 0 <= row < len(self._tips) else None

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    def watch_filter_text(self) -> None:
        self.redraw()

    def add(self, batch: Sequence[TapEvent]) -> None:
        self.events.extend(batch)
        self.dead_letters += sum(1 for e in batch if e.dead_lettered)

    def redraw(self) -> None:
        """List the newest events that pass the filter. The event's name is never cut: where
        the width lacks room the time goes first, then the key or dead letter's reason is
        cut (the highlighted row's tooltip says it whole)."""
        if not self.is_mounted:
            return
        table: DataTable[Text] = self.query_one("#feed-table", DataTable)
        wanted = self.filter_text.strip().lower()
        rows: list[tuple[tuple[str, str, str], str]] = []
        self._tips = []
        for tap in reversed(self.events):
            event = tap.event or {}
            haystack = f"{tap.subject} {event.get('type', '')} {event.get('id', '')}".lower()
            if wanted and wanted not in haystack:
                continue
            name = event_name(tap.subject)
            key = str(event.get("subject") or tap.subject.split(".")[-1])
            if tap.dead_lettered:
                reason = tap.headers.get("Kdemo-Dlq-Reason", "dead-lettered")
                rows.append(((_clock_text(tap.time), f"☠ {name}", reason), "bold white on red"))
                self._tips.append(f"{tap.subject}: dead-lettered: {reason}")
            else:
                rows.append(((_clock_text(tap.time), name, key), ""))
                self._tips.append(f"{tap.subject} at {_clock_text(tap.time)} UTC")
            if len(rows) >= FEED_SHOW:
                break
        widths = [
            max([len(label), *(len(cells[i]) for cells, _ in rows)])
            for i, label in enumerate(self.LABELS)
        ]
        widths[2] = min(widths[2], KEY_WIDTH)
        shown, cut = fit_columns(widths, _room(table), drop=(0,), shrink=2)
        cut.setdefault(2, widths[2])
        labels = [
            self.LABELS[i]
            if len(self.LABELS[i]) <= cut.get(i, widths[i])
            else self.SHORT_LABELS.get(i, _cut(self.LABELS[i], cut[i]))
            for i in shown
        ]
        if labels != self._columns:
            table.clear(columns=True)
            table.add_columns(*labels)
            self._columns = labels
        else:
            table.clear()
        for cells, style in rows:
            table.add_row(*(Text(_cut(cells[i], cut.get(i)), style=style) for i in shown))


class DetailPane(Static):
    """The selected node: URL, health, edges, request rate and latency, recent log lines."""

    def show(
        self,
        node: str,
        row: NodeStatus | None,
        traffic: NodeTraffic | None,
        logs: Sequence[str],
        log_error: str | None,
    ) -> None:
        text = Text()
        text.append(f"{node}\n", style="bold")
        try:
            described = topology.node(node)
        except KeyError:
            described = None
        if described is not None and described.description:
            text.append(described.description + "\n", style="italic dim")
        if row is None:
            text.append("health: unknown (no status yet)\n", style="dim")
        else:
            text.append("health: ")
            text.append(row.state, style=STATE_STYLES.get(row.state, ""))
            text.append(f" · restarts: {row.restarts}\n")
            text.append(f"url: {row.url}\n")
        for e in topology.edges_from(node):
            text.append(f"→ {e.target} ", style="cyan")
            text.append(f"{e.protocol.value}: {e.what}\n", style="dim")
        for e in topology.edges_to(node):
            text.append(f"← {e.source} ", style="cyan")
            text.append(f"{e.protocol.value}\n", style="dim")
        if traffic is not None:
            rate = "…" if traffic.rate is None else f"{traffic.rate:.1f}/s"
            latency = "-" if traffic.latency_ms is None else f"{traffic.latency_ms:.1f} ms"
            text.append(f"requests: {rate}  latency: {latency}  total: {traffic.total:.0f}\n")
        elif described is not None and described.kind is topology.NodeKind.SERVICE:
            text.append("requests: not scraped yet\n", style="dim")
        text.append("logs:\n", style="bold")
        if log_error:
            text.append(log_error + "\n", style="red")
        for line in logs[-12:]:
            text.append(_log_line(line) + "\n", style="dim")
        self.update(text)


def _log_line(line: str) -> str:
    """A JSON log line as `level message`; anything else as it is."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    message = record.get("message") or record.get("msg") or record.get("event") or line
    return f"{record.get('level', '')} {message}".strip()
