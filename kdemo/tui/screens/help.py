"""`?`: what the dashboard shows and every key."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

__all__ = ["HELP_TEXT", "HelpScreen"]

HELP_TEXT = """\
# kdemo dashboard

The graph is the declared topology. Boxes show each node's health
(**ready**, **starting**, **restarting**, **down**), its pid or pod count,
uptime and restarts (↻). An edge lights up when an event or a request crosses it;
red when a dead letter does.

| key | action |
|---|---|
| arrows, click | select a node |
| `c` | simulate a GitHub comment (form) |
| `s` | sign the newest pending intent with the public test account |
| `l` | link an identity (test account ↔ a GitHub login) |
| `o` | open the newest signing URL in the browser |
| `k` | kill the selected node; the runtime brings it back |
| `u` | bring the stack up |
| `x` | chaos: 30 flows while nodes are killed, frozen and restarted, then an audit |
| `/` | filter the event feed |
| `ctrl+p` | command palette |
| `?` | this help · `q` quit |
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(HELP_TEXT)

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]  # a binding, not the awaitable base
        self.dismiss(result)
