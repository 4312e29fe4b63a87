"""App-wide messages: what workers and widgets tell the app (attributes down, messages up)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from kdemo.observe import NodeTraffic
from kdemo.runtime.base import NodeStatus
from kdemo.tui.graph_layout import EdgeKey

__all__ = [
    "ActionFinished",
    "DetailLoaded",
    "FundersFetched",
    "NodeSelected",
    "StatusUpdated",
    "TapStateChanged",
    "TrafficScraped",
]


@dataclass
class StatusUpdated(Message):
    """A fresh `runtime.status()`; `error` says why it could not be read."""

    rows: list[NodeStatus]
    up: bool
    error: str | None = None


@dataclass
class TapStateChanged(Message):
    """The bus tap connected, or stopped answering (with the reason)."""

    connected: bool
    error: str | None = None


@dataclass
class TrafficScraped(Message):
    """One round of scrapes: edges whose counters grew, each node's traffic, failures."""

    grown: set[EdgeKey]
    traffic: dict[str, NodeTraffic]
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class DetailLoaded(Message):
    """Recent log lines of the selected node."""

    node: str
    lines: list[str]
    error: str | None = None


@dataclass
class FundersFetched(Message):
    """gateway's public bounty list (for `funder.login`)."""

    bounties: list[dict[str, Any]]
    error: str | None = None


@dataclass
class ActionFinished(Message):
    """A user action ended: what to say about it."""

    action: str
    ok: bool
    detail: str


@dataclass
class NodeSelected(Message):
    """The graph's selection moved to `node`."""

    node: str
