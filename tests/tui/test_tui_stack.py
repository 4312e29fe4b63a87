"""Every dashboard action against a real running local stack (Pilot)."""

from __future__ import annotations

import itertools

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from kdemo import topology
from kdemo.runtime.base import Runtime
from kdemo.tui import DashboardApp
from kdemo.tui.screens import HelpScreen, LinkIdentityScreen, SimulateCommentScreen
from kdemo.tui.widgets import TopologyGraph
from tests.tui.conftest import node_state, wait_until

pytestmark = pytest.mark.stack

RUNTIME_NODES = [n.name for n in topology.runtime_nodes()]
_numbers = itertools.count(100)


def _app(runtime: Runtime, opened: list[str] | None = None) -> DashboardApp:
    return DashboardApp(
        runtime,
        poll_interval=0.1,
        scrape_interval=0.5,
        browser=(opened.append if opened is not None else lambda url: True),
    )


async def _all_ready(pilot: Pilot[None], app: DashboardApp) -> None:
    await wait_until(
        pilot, lambda: all(node_state(app, n) == "ready" for n in RUNTIME_NODES), "every node ready"
    )


async def _simulate(pilot: Pilot[None], app: DashboardApp, repo: str, number: int) -> None:
    await pilot.press("c")
    await wait_until(pilot, lambda: isinstance(app.screen, SimulateCommentScreen), "the form")
    app.screen.query_one("#repo", Input).value = repo
    app.screen.query_one("#number", Input).value = str(number)
    app.screen.query_one("#text", Input).value = "Funding this: $USDC:25$"
    await pilot.click("#submit")


def _journey(app: DashboardApp, repo: str, number: int) -> set[str]:
    for journey in app.book.journeys.values():
        if journey.repository == repo and journey.number == number:
            return set(journey.times)
    return set()


async def test_graph_shows_every_node_ready(live_stack: Runtime) -> None:
    """Once attached, every runtime node of the topology is drawn ready."""
    app = _app(live_stack)
    async with app.run_test(size=(120, 35)) as pilot:
        await _all_ready(pilot, app)
        assert app.stack_up is True


async def test_simulated_comment_becomes_a_journey(live_stack: Runtime) -> None:
    """The comment form delivers a webhook and the new intent appears as a journey."""
    app = _app(live_stack)
    number = next(_numbers)
    async with app.run_test(size=(120, 35)) as pilot:
        await _simulate(pilot, app, "tui/comment", number)
        await wait_until(
            pilot, lambda: "intent" in _journey(app, "tui/comment", number), "the intent"
        )
        assert app.last_signing_url is not None
        assert app.banner.get("action").startswith("simulate comment: ")


async def test_sign_then_link_attributes_the_bounty(live_stack: Runtime) -> None:
    """Signing the newest intent records it; linking the signer's wallet attributes it."""
    app = _app(live_stack)
    number = next(_numbers)
    async with app.run_test(size=(120, 35)) as pilot:
        await _simulate(pilot, app, "tui/sign", number)
        await wait_until(pilot, lambda: "intent" in _journey(app, "tui/sign", number), "intent")
        await pilot.press("s")
        await wait_until(pilot, lambda: "recorded" in _journey(app, "tui/sign", number), "recorded")
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, LinkIdentityScreen), "link form")
        app.screen.query_one("#login", Input).value = "tui-funder"
        await pilot.click("#submit")
        await wait_until(pilot, lambda: "linked" in app.banner.get("action"), "the link's outcome")
        await wait_until(
            pilot, lambda: "attributed" in _journey(app, "tui/sign", number), "attributed"
        )


async def test_open_url_hands_the_signing_url_to_the_browser(live_stack: Runtime) -> None:
    """`o` opens the newest pending intent's signing URL in the browser."""
    opened: list[str] = []
    app = _app(live_stack, opened)
    number = next(_numbers)
    async with app.run_test(size=(120, 35)) as pilot:
        await _simulate(pilot, app, "tui/open", number)
        await wait_until(pilot, lambda: app.book.newest_pending() is not None, "a pending intent")
        await wait_until(pilot, lambda: "intent" in _journey(app, "tui/open", number), "intent")
        await pilot.press("o")
        await wait_until(pilot, lambda: bool(opened), "the browser call")
        assert "/sign?t=" in opened[0]


@pytest.mark.parametrize("node", ["calc", "nats", "postgres"])
async def test_killed_node_comes_back_with_one_more_restart(live_stack: Runtime, node: str) -> None:
    """Kill a node from the dashboard: it comes back as a new process, shown ready with one
    more restart. (Whether the short time it was down is drawn depends on where the status
    polls fall: on a loaded machine a node can die and be back between two of them.)"""
    app = _app(live_stack)
    async with app.run_test(size=(120, 35)) as pilot:
        await _all_ready(pilot, app)
        before = app.rows[node]
        app.query_one(TopologyGraph).selected = node
        await pilot.press("k")

        def back_again() -> bool:
            row = app.rows[node]
            return node_state(app, node) == "ready" and row.restarts == before.restarts + 1

        await wait_until(pilot, back_again, f"{node} ready again with one more restart")
        assert app.rows[node].pid != before.pid
        await _all_ready(pilot, app)


async def test_chaos_from_the_dashboard_reports_its_audit(live_stack: Runtime) -> None:
    """`x` runs a short chaos run: the killed node comes back on the graph, and the audit's
    verdict is the action's message."""
    app = DashboardApp(
        live_stack,
        poll_interval=0.1,
        scrape_interval=0.5,
        chaos={"flows": 6, "rate": 2.0, "faults": ("kill",), "every_s": 0.5, "seed": 3},
    )
    async with app.run_test(size=(120, 35)) as pilot:
        await _all_ready(pilot, app)
        before = {n: app.rows[n].restarts for n in RUNTIME_NODES}
        await pilot.press("x")
        await wait_until(
            pilot,
            lambda: app.banner.get("action").startswith("chaos: 6 flows"),
            "the chaos run's verdict",
            within_s=180,
        )
        verdict = app.banner.get("action")
        assert ": 0 lost, 0 doubled, 0 dead-lettered" in verdict, verdict
        await _all_ready(pilot, app)
        assert any(app.rows[n].restarts > before[n] for n in RUNTIME_NODES), "nothing was killed"


async def test_help_palette_and_quit(live_stack: Runtime) -> None:
    """`?` shows the help, the palette runs a dashboard command, `q` quits."""
    app = _app(live_stack)
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press(*"Simulate a comment")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: isinstance(app.screen, SimulateCommentScreen), "the palette's form"
        )
        await pilot.press("escape")
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running, "the app to quit")


async def test_bringing_a_down_stack_up(down_stack: Runtime) -> None:
    """A dashboard on a stack that is down says so, and `u` brings it up."""
    app = _app(down_stack)
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_until(pilot, lambda: app.stack_up is False, "the stack shown down")
        assert "press u" in app.banner.get("stack")
        await pilot.press("u")
        await _all_ready(pilot, app)
        assert down_stack.is_up()
