"""The dashboard on the kind runtime (Pilot): topology from the API, a kill, the bus tap, the
edge counters from the services' metrics — and an event loop that never stalls."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual import on
from textual.pilot import Pilot

from kdemo import topology
from kdemo.runtime.base import Runtime
from kdemo.testing import KindStack
from kdemo.tui import DashboardApp
from kdemo.tui import app as tui_app
from kdemo.tui.messages import ActionFinished
from kdemo.tui.widgets import TopologyGraph
from tests.tui.conftest import node_state
from tests.tui.conftest import wait_until as wait_until_shown

pytestmark = [pytest.mark.kind, pytest.mark.timeout(900)]

RUNTIME_NODES = [n.name for n in topology.runtime_nodes()]
WAIT_S = 180.0
STALL_LIMIT_S = 3.0
"""The longest the UI loop may go without running. Blocking I/O on it shows as the I/O's own
time (a port-forward's start: up to 20 s); a busy two-core machine alone stays far below."""


class StallMeter:
    """Measures how late a 20 ms timer on the app's event loop fires."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.02)
            self.worst = max(self.worst, time.monotonic() - before - 0.02)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    await wait_until_shown(pilot, condition, what, within_s=WAIT_S)


class RecordingApp(DashboardApp):
    """The dashboard, keeping every action's outcome (the banner shows only the latest)."""

    CSS_PATH = str(Path(tui_app.__file__).with_name("app.tcss"))  # relative to kdemo/tui

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime, poll_interval=0.5, scrape_interval=1.0, browser=lambda url: True)
        self.finished: list[ActionFinished] = []

    @on(ActionFinished)
    def _record(self, message: ActionFinished) -> None:
        self.finished.append(message)


async def test_dashboard_follows_the_kind_stack(kind_stack: KindStack) -> None:
    """Every node ready from the API; a comment's events arrive on the tap; the edges'
    counters grow from the metrics; a killed node goes down and comes back; the UI loop
    never stalls while it connects, scrapes and reconnects through port-forwards."""
    runtime = kind_stack.runtime
    app = RecordingApp(runtime)
    meter = StallMeter()
    repo, number = f"dash/{secrets.token_hex(3)}", 11
    async with app.run_test(size=(120, 35)) as pilot:
        meter.start()
        try:
            await _drive(pilot, app, kind_stack, repo, number)
        finally:
            meter.stop()
    assert meter.worst < STALL_LIMIT_S, f"the UI loop stalled {meter.worst:.2f} s"


async def _drive(
    pilot: Pilot[None], app: RecordingApp, kind_stack: KindStack, repo: str, number: int
) -> None:
    """What the test does inside the running app (see its docstring)."""
    await wait_until(
        pilot, lambda: all(node_state(app, n) == "ready" for n in RUNTIME_NODES), "every node"
    )
    done = await asyncio.to_thread(
        kind_stack.kdemo,
        "simulate-comment", "Dashboard: $USDC:5$", "--repo", repo, "--number", str(number),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    url = next(line for line in done.stdout.splitlines() if "/sign?t=" in line)
    signed = await asyncio.to_thread(kind_stack.kdemo, "sign", url)
    assert signed.returncode == 0, signed.stderr

    def journey() -> set[str]:
        for j in app.book.journeys.values():
            if j.repository == repo and j.number == number:
                return set(j.times)
        return set()

    await wait_until(pilot, lambda: {"intent", "recorded"} <= journey(), "the journey")
    listing = await asyncio.to_thread(kind_stack.kdemo, "bounties", "--repo", repo)
    assert listing.returncode == 0, listing.stderr  # gateway asked calc for the totals

    def counted(service: str, peers: set[str]) -> bool:
        traffic = app.traffic.get(service)
        return traffic is not None and peers <= {p for p, n in traffic.per_edge.items() if n > 0}

    await wait_until(
        pilot,
        lambda: (
            counted("github-app", {"nats", "postgres"})
            and counted("frontend", {"nats"})
            and counted("gateway", {"calc", "nats", "postgres"})
        ),
        "the edges the flow crossed, counted in the services' metrics",
    )

    killed = {p["name"] for p in app.rows["calc"].pods or []}
    app.query_one(TopologyGraph).selected = "calc"
    await pilot.press("k")
    await wait_until(pilot, lambda: bool(app.finished), "the kill's outcome")
    assert app.finished[0].ok, app.finished[0]
    assert app.finished[0].detail.startswith("killed pod calc-"), app.finished[0]

    def replaced() -> bool:
        pods = {p["name"] for p in app.rows["calc"].pods or []}
        return node_state(app, "calc") == "ready" and not pods & killed

    # A Deployment's new pod needs seconds to pass its probe: the graph shows that gap.
    await wait_until(pilot, lambda: node_state(app, "calc") != "ready", "calc shown down")
    await wait_until(pilot, replaced, f"calc ready again, {killed} replaced by a new pod")
