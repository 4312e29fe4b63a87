"""`kdemo dashboard`: the live terminal dashboard of the running stack."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from kdemo.cli.session import session_of
from kdemo.errors import UsageError

if TYPE_CHECKING:
    from kdemo.runtime.base import Runtime

__all__ = ["dashboard", "open_dashboard", "require_terminal"]


def require_terminal() -> None:
    """A UsageError unless stdin and stdout are a terminal (checked before any work)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the dashboard needs an interactive terminal",
            "run it in a terminal, or use `kdemo status` / `kdemo logs NODE -f` in scripts",
        )


def open_dashboard(ctx: typer.Context, runtime: Runtime | None = None) -> None:
    """Run the dashboard on `runtime` (default: the state directory's) until the user quits."""
    require_terminal()
    from kdemo.topology import for_bus
    from kdemo.tui import DashboardApp  # imported late: only this command needs Textual

    rt = runtime or session_of(ctx).runtime()
    view = for_bus(rt.bus())  # the graph's bus node is the stack's: nats or kafka
    # The app works whether or not the stack is up: it says so and offers to bring it up.
    DashboardApp(rt, nodes=view.nodes, edges=view.edges).run()


def dashboard(ctx: typer.Context) -> None:
    """Open the live terminal dashboard: topology, traffic, journeys, events (q quits)."""
    open_dashboard(ctx)
