"""The journeys table, the event feed and the detail pane."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, Input, Static

from kdemo import topology
from kdemo.observe import NodeTraffic
from kdemo.runtime.base import NodeStatus, TapEvent
from kdemo.tui.graph_layout import STATE_STYLES
from kdemo.tui.journeys import Journey, event_name

__all__ = ["DetailPane", "EventFeed", "JourneyTable"]

FEED_KEEP = 500
FEED_SHOW = 100
_STAGE_COLUMNS = ("intent", "signed", "recorded", "attributed")


def _clock_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


class JourneyTable(DataTable[Text | str]):
    """One row per bounty, newest first: the time each stage took (…N while waiting)."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("bounty", "amount", "intent", "signed", "recorded", "attributed")

    def show(self, journeys: Sequence[Journey], now: float) -> None:
        self.clear()
        for j in journeys[:50]:
            name = f"{j.repository}#{j.number}" if j.repository else j.intent_id[:10] + "…"
            cells: list[Text | str] = [name, f"{j.amount} {j.denomination}".strip()]
            for stage, text in j.durations(now):
                if stage == "attributed" and j.funder_login and text and not text.startswith("…"):
                    text = f"{text} @{j.funder_login}"
                style = "yellow" if text.startswith("…") else "green" if text else "dim"
                cells.append(Text(text or "·", style=style))
            self.add_row(*cells, key=j.intent_id)


class EventFeed(Vertical):
    """The CloudEvents on the bus, newest first, filtered by a substring; dead letters in red."""

    filter_text: reactive[str] = reactive("")
    """Only events whose subject, type or id contains this text are listed."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.events: deque[TapEvent] = deque(maxlen=FEED_KEEP)
        self.dead_letters = 0

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter events (/)", id="feed-filter")
        yield DataTable(id="feed-table", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#feed-table", DataTable).add_columns("time", "event", "key / reason")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    def watch_filter_text(self) -> None:
        self.redraw()

    def add(self, batch: Sequence[TapEvent]) -> None:
        self.events.extend(batch)
        self.dead_letters += sum(1 for e in batch if e.dead_lettered)

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        table = self.query_one("#feed-table", DataTable)
        table.clear()
        wanted = self.filter_text.strip().lower()
        shown = 0
        for tap in reversed(self.events):
            event = tap.event or {}
            haystack = f"{tap.subject} {event.get('type', '')} {event.get('id', '')}".lower()
            if wanted and wanted not in haystack:
                continue
            name = event_name(tap.subject)
            key = str(event.get("subject") or tap.subject.split(".")[-1])
            if tap.dead_lettered:
                reason = tap.headers.get("Kdemo-Dlq-Reason", "dead-lettered")
                style = "bold white on red"
                cells = (_clock_text(tap.time), f"☠ {name}", f"{key[:12]}… {reason}")
            else:
                style = ""
                cells = (_clock_text(tap.time), name, key[:18] + ("…" if len(key) > 18 else ""))
            table.add_row(*(Text(c, style=style) for c in cells))
            shown += 1
            if shown >= FEED_SHOW:
                break


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
