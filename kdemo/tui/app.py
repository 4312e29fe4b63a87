"""The dashboard: the live topology of the running demo and each bounty's journey through it.

Depends on `kdemo.runtime.base.Runtime` only: status and logs from the runtime,
traffic from `bus_tap()` and `scrape(service)`, and the exposed services' public
URLs for the actions a user takes. Every call that can block runs in a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import webbrowser
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

import httpx
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from kdemo import topology
from kdemo.errors import KdemoError
from kdemo.flow.bounties import fetch_bounties
from kdemo.flow.http import describe_transport_error, new_client
from kdemo.flow.link import link_identity
from kdemo.flow.wallet import Wallet, sign_intent
from kdemo.flow.webhook import simulate_comment
from kdemo.observe import EdgeSample, NodeTraffic, grown_edges, node_traffic, parse_edges
from kdemo.runtime.base import NodeStatus, Runtime, TapEvent
from kdemo.topology import Edge, Node
from kdemo.tui.banner import BannerKey, BannerMessages
from kdemo.tui.graph_layout import DEAD_STYLE, LIT_STYLE, EdgeKey
from kdemo.tui.journeys import JourneyBook, event_name
from kdemo.tui.messages import (
    ActionFinished,
    DetailLoaded,
    FundersFetched,
    NodeSelected,
    StatusUpdated,
    TapStateChanged,
    TrafficScraped,
)
from kdemo.tui.screens import CommentForm, HelpScreen, LinkIdentityScreen, SimulateCommentScreen
from kdemo.tui.widgets import DetailPane, EventFeed, JourneyTable, TopologyGraph

__all__ = ["DashboardApp", "TapStats", "edges_crossed"]

RECENT_S = 10.0
"""An event younger than this lights its edges; older ones (the replay at start) do not."""
LINK_REPO = "kdemo/dashboard"
DASHBOARD_CHAOS: dict[str, Any] = {"flows": 30, "rate": 1.0, "every_s": 3.0}
"""The dashboard's chaos run: 30 s of load, every fault kind (`kdemo chaos` for more)."""
# What a worker may meet when the stack or one service stops answering: reported in place.
_IO_ERRORS = (KdemoError, OSError, httpx.HTTPError, ValueError, asyncio.TimeoutError)
_Handler = TypeVar("_Handler", bound=Callable[..., None])


def _while_shown(handler: _Handler) -> _Handler:
    """Skip a handler whose widgets are gone: reports of workers and timers still queued
    while the app closes arrive after its widgets were removed."""

    @functools.wraps(handler)
    def skip_when_gone(app: DashboardApp, *args: Any, **kwargs: Any) -> None:
        if not app.screen_stack:
            return  # the app has closed: no screen left to show anything on
        with contextlib.suppress(NoMatches):
            handler(app, *args, **kwargs)

    return cast(_Handler, skip_when_gone)


def edges_crossed(
    subject: str, edges: Sequence[Edge] = topology.EDGES
) -> tuple[set[EdgeKey], bool]:
    """The edges an event on `subject` crosses (its publisher's and its consumers'), and
    whether it is a dead letter."""
    name = event_name(subject)
    dead = name.startswith("dlq.")
    name = name.removeprefix("dlq.")
    crossed = {
        EdgeKey(e.source, e.target)
        for e in edges
        if name in e.consumes or (not dead and name in e.publishes)
    }
    return crossed, dead


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TransportError):
        err = describe_transport_error(exc)
        return f"{err.message} ({err.hint})" if err.hint else err.message
    if isinstance(exc, KdemoError):
        return f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return f"{type(exc).__name__}: {exc}"


@dataclass
class TapStats:
    """How far behind the bus the UI is: from an event's arrival to its being drawn."""

    events: int = 0
    max_lag_s: float = 0.0
    total_lag_s: float = 0.0

    @property
    def mean_lag_s(self) -> float:
        return self.total_lag_s / self.events if self.events else 0.0


class DashboardApp(App[None]):
    """`kdemo dashboard`: the topology, journeys, the event feed and a detail pane."""

    CSS_PATH = "app.tcss"
    TITLE = "kdemo"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("c", "simulate", "Comment"),
        Binding("s", "sign", "Sign"),
        Binding("l", "link", "Link"),
        Binding("o", "open_url", "Open URL"),
        Binding("k", "kill", "Kill node"),
        Binding("u", "up", "Up"),
        Binding("x", "chaos", "Chaos", show=False),
        Binding("slash", "filter", "Filter", show=False),
    ]

    stack_up: reactive[bool | None] = reactive(None)
    """Whether the runtime says the stack is up (None until the first status)."""
    tap_connected: reactive[bool] = reactive(False)
    """Whether the bus tap is streaming right now."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        nodes: Sequence[Node] = topology.NODES,
        edges: Sequence[Edge] = topology.EDGES,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 1.0,
        scrape_interval: float = 2.0,
        flush_interval: float = 0.2,
        browser: Callable[[str], object] = webbrowser.open,
        wallet: Wallet | None = None,
        chaos: Mapping[str, Any] = DASHBOARD_CHAOS,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.chaos = dict(chaos)
        """`ChaosOptions` fields for `x` (the seed is the time it is pressed)."""
        self.nodes = tuple(nodes)
        self.edges = tuple(edges)
        self.clock = clock
        self.poll_interval = poll_interval
        self.scrape_interval = scrape_interval
        self.flush_interval = flush_interval
        self.browser = browser
        self.wallet = wallet or Wallet.test_account()
        self.book = JourneyBook()
        self.banner = BannerMessages()
        """What the banner says: the stack, the tap, the scrapes and the latest action."""
        self.rows: dict[str, NodeStatus] = {}
        self.traffic: dict[str, NodeTraffic] = {}
        self.tap_stats = TapStats()
        self.last_signing_url: str | None = None
        self.logs: dict[str, list[str]] = {}
        self._pending: list[tuple[TapEvent, float]] = []
        self._last_seq = 0
        self._samples: dict[str, tuple[float, dict[tuple[str, str], EdgeSample]]] = {}
        self._bus_pid: int | None = None
        self._journeys_dirty = False
        self._log_error: str | None = None
        self._services = [n.name for n in self.nodes if n.kind is topology.NodeKind.SERVICE]

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        graph = TopologyGraph(self.nodes, self.edges, clock=self.clock, id="graph")
        yield graph
        with Horizontal(id="bottom"):
            yield JourneyTable(id="journeys")
            yield EventFeed(id="feed")
            yield DetailPane(id="detail")
        yield Static("", id="banner")
        yield Footer()

    @property
    def dashboard(self) -> Screen[None]:
        """The screen the dashboard's widgets live on. Workers report while a form or the
        help is open on top of it; `self.query_one` would look there and find nothing."""
        return self.screen_stack[0]

    def on_mount(self) -> None:
        self.sub_title = f"{self.runtime.name} runtime"
        self.query_one("#journeys").border_title = "journeys"
        self.query_one("#feed").border_title = "events on the bus"
        self.query_one("#detail").border_title = "detail"
        graph = self.query_one(TopologyGraph)
        graph.focus()
        if graph.selectable:
            graph.selected = "gateway" if "gateway" in graph.selectable else graph.selectable[0]
        self.poll_status()
        self.scrape_traffic()
        self.run_tap()
        self.fetch_funders()
        self._every(self.poll_interval, "status", self.poll_status)
        self._every(self.scrape_interval, "scrape", self.scrape_traffic)
        self._every(3.0, "funders", self.fetch_funders)
        self._every(3.0, "detail", self._reload_detail)
        self.set_interval(self.flush_interval, self.flush_tap)
        self.set_interval(1.0, self._tick_journeys)

    def _every(self, seconds: float, group: str, start: Callable[[], object]) -> None:
        """Start the worker `start` every `seconds`, skipping a tick while its last run is still
        going."""
        self.set_interval(seconds, functools.partial(self._start_unless_running, group, start))

    def _start_unless_running(self, group: str, start: Callable[[], object]) -> None:
        """Cancelling a thread worker leaves its thread running: on a slow machine overlapping
        runs would fill the worker thread pool and queue the user's actions."""
        if not any(w.group == group and not w.is_finished for w in self.workers):
            start()

    async def on_unmount(self) -> None:
        """Let cancelled workers finish here, before the event loop that runs them goes away."""
        self.workers.cancel_all()
        # Thread workers end when their blocking call returns (every call has a timeout).
        deadline = time.monotonic() + 12
        # Textual offers no awaitable for "every worker finished" usable here (it refuses
        # wait_for_complete from the app itself), hence the short bounded poll.
        while any(not w.is_finished for w in self.workers) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    # -- workers: everything that can block ------------------------------------------------

    @work(thread=True, group="status", exit_on_error=False)
    def poll_status(self) -> None:
        try:
            up = self.runtime.is_up()
            try:
                rows = self.runtime.status()
            except KdemoError:
                if up:
                    raise
                rows = []  # never brought up here: nothing to report but "down"
        except _IO_ERRORS as exc:
            self.post_message(StatusUpdated([], False, _describe(exc)))
            return
        self.post_message(StatusUpdated(rows, up))

    @work(thread=True, group="scrape", exit_on_error=False)
    def scrape_traffic(self) -> None:
        if not self.stack_up:
            return
        grown: set[EdgeKey] = set()
        traffic: dict[str, NodeTraffic] = {}
        errors: dict[str, str] = {}
        for service in self._services:
            try:
                samples = parse_edges(self.runtime.scrape(service))
            except _IO_ERRORS as exc:
                errors[service] = _describe(exc)
                continue
            now = time.monotonic()
            previous = self._samples.get(service)
            if previous is not None:
                grown |= {EdgeKey(*ends) for ends in grown_edges(previous[1], samples)}
            traffic[service] = node_traffic(
                previous[1] if previous else None,
                samples,
                now - previous[0] if previous else 0.0,
            )
            self._samples[service] = (now, samples)
        self.post_message(TrafficScraped(grown, traffic, errors))

    @work(exclusive=True, group="tap", exit_on_error=False)
    async def run_tap(self) -> None:
        """Stream the bus (everything retained first: journeys are rebuilt); retry when it drops."""
        while True:
            stream = self.runtime.bus_tap(deliver_all=True)
            try:
                async for tap in stream:
                    if not self.tap_connected:
                        self.post_message(TapStateChanged(True))
                    if tap.seq and tap.seq <= self._last_seq:
                        continue  # a reconnect replays what was already seen
                    self._last_seq = max(self._last_seq, tap.seq)
                    self._pending.append((tap, time.perf_counter()))
                self.post_message(TapStateChanged(False, "the bus tap ended"))
            except _IO_ERRORS as exc:  # the Runtime contract: its failures are KdemoErrors
                self.post_message(TapStateChanged(False, _describe(exc)))
            finally:
                # Close the generator here, in the worker's context, not later from the GC.
                close = getattr(stream, "aclose", None)
                if close is not None:
                    with contextlib.suppress(*_IO_ERRORS, RuntimeError):
                        await close()
            await asyncio.sleep(2.0)  # back off before reconnecting

    @work(thread=True, group="funders", exit_on_error=False)
    def fetch_funders(self) -> None:
        if not self.stack_up or not any(
            "recorded" in j.times and "attributed" not in j.times
            for j in self.book.journeys.values()
        ):
            return
        try:
            gateway = self.runtime.public_urls()["gateway"]
            with new_client(timeout=3.0) as client:
                found = fetch_bounties(client, gateway, state="signed")
        except (*_IO_ERRORS, KeyError) as exc:
            self.post_message(FundersFetched([], _describe(exc)))
            return
        self.post_message(FundersFetched(found.bounties))

    @work(thread=True, group="detail", exit_on_error=False)
    def load_detail(self, node: str) -> None:
        try:
            lines = list(self.runtime.logs(node, lines=50))
        except _IO_ERRORS as exc:
            self.post_message(DetailLoaded(node, [], f"logs unavailable: {_describe(exc)}"))
            return
        self.post_message(DetailLoaded(node, lines))

    # -- what the workers report -----------------------------------------------------------

    @on(StatusUpdated)
    @_while_shown
    def _status(self, message: StatusUpdated) -> None:
        if message.error:
            self.stack_up = False
            self.say("stack", f"cannot read the stack's status: {message.error}")
            return
        self.stack_up = message.up
        self.say("stack", None if message.up else "the stack is down: press u to bring it up")
        if not message.up:  # said already: the tap and the scrapes are down with it
            self.say("tap", None)
            self.say("metrics", None)
        self.rows = {r.name: r for r in message.rows}
        graph = self.dashboard.query_one(TopologyGraph)
        if message.rows:
            graph.show_status(message.rows)
        else:
            graph.show_down()
        bus = next((r for r in message.rows if r.kind == "bus"), None)  # nats or kafka
        pid = bus.pid if bus is not None and bus.state == "ready" else None
        if pid is not None and self._bus_pid is not None and pid != self._bus_pid:
            self.run_tap()  # the bus came back: a tap on the dead connection would wait forever
        if pid is not None:
            self._bus_pid = pid
        self._show_detail()

    @on(TapStateChanged)
    def _tap_state(self, message: TapStateChanged) -> None:
        self.tap_connected = message.connected
        if not message.connected and self.stack_up:
            self.say("tap", f"bus tap: not answering ({message.error}); retrying")
        else:
            self.say("tap", None)

    @on(TrafficScraped)
    @_while_shown
    def _traffic(self, message: TrafficScraped) -> None:
        self.traffic.update(message.traffic)
        self.dashboard.query_one(TopologyGraph).light(message.grown, LIT_STYLE)
        if message.errors and self.stack_up:
            self.say("metrics", f"not answering /metrics: {', '.join(sorted(message.errors))}")
        else:
            self.say("metrics", None)
        self._show_detail()

    @on(FundersFetched)
    def _funders(self, message: FundersFetched) -> None:
        if message.bounties and self.book.apply_funders(message.bounties, self.clock()):
            self._journeys_dirty = True

    @on(DetailLoaded)
    def _detail_loaded(self, message: DetailLoaded) -> None:
        self.logs[message.node] = message.lines
        self._log_error = message.error
        self._show_detail()

    @on(NodeSelected)
    def _selected(self, message: NodeSelected) -> None:
        self._log_error = None
        self._show_detail()
        self.load_detail(message.node)

    @on(ActionFinished)
    def _action_finished(self, message: ActionFinished) -> None:
        self.say("action", f"{message.action}: {message.detail}")
        severity: SeverityLevel = "information" if message.ok else "error"
        self.notify(message.detail, title=message.action, severity=severity)
        self._start_unless_running("status", self.poll_status)

    def say(self, key: BannerKey, text: str | None) -> None:
        """Set (or with None clear) the banner's message for `key`; the others stay."""
        if not self.banner.set(key, text) or not self.screen_stack:
            return
        for banner in self.dashboard.query("#banner").results(Static):
            banner.update("\n".join(self.banner.lines()))
            banner.set_class(bool(self.banner), "shown")

    @_while_shown
    def _reload_detail(self) -> None:
        selected = self.dashboard.query_one(TopologyGraph).selected
        if selected:
            self.load_detail(selected)

    @_while_shown
    def _show_detail(self) -> None:
        node = self.dashboard.query_one(TopologyGraph).selected
        if not node:
            return
        self.dashboard.query_one(DetailPane).show(
            node,
            self.rows.get(node),
            self.traffic.get(node),
            self.logs.get(node, []),
            self._log_error,
        )

    def _tick_journeys(self) -> None:
        """Waiting stages count up live."""
        if any(j.pending_signature for j in self.book.journeys.values()):
            self._journeys_dirty = True

    # -- the tap path: batched onto the screen ---------------------------------------------

    @_while_shown
    def flush_tap(self) -> None:
        """Apply what the tap received since the last flush: journeys, feed, lit edges."""
        batch, self._pending = self._pending, []
        if batch:
            now = self.clock()
            lit: set[EdgeKey] = set()
            dead: set[EdgeKey] = set()
            for tap, _ in batch:
                if self.book.apply(tap):
                    self._journeys_dirty = True
                if now - tap.time < RECENT_S:
                    crossed, is_dead = edges_crossed(tap.subject, self.edges)
                    (dead if is_dead else lit).update(crossed)
            feed = self.dashboard.query_one(EventFeed)
            feed.add([tap for tap, _ in batch])
            feed.redraw()
            graph = self.dashboard.query_one(TopologyGraph)
            graph.light(lit, LIT_STYLE)
            graph.light(dead, DEAD_STYLE)
            done = time.perf_counter()
            for _, arrived in batch:
                lag = done - arrived
                self.tap_stats.events += 1
                self.tap_stats.total_lag_s += lag
                self.tap_stats.max_lag_s = max(self.tap_stats.max_lag_s, lag)
        if self._journeys_dirty:
            self._journeys_dirty = False
            self.dashboard.query_one(JourneyTable).show(self.book.ordered(), self.clock())

    # -- actions ---------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        self.query_one("#feed-filter", Input).focus()

    def action_simulate(self) -> None:
        self.push_screen(SimulateCommentScreen(), self._comment_entered)

    def _comment_entered(self, form: CommentForm | None) -> None:
        if form is not None:
            self.deliver_comment(form)

    @work(thread=True, exclusive=True, group="action", exit_on_error=False)
    def deliver_comment(self, form: CommentForm) -> None:
        action = "simulate comment"
        try:
            urls = self.runtime.public_urls()
            with new_client() as client:
                result = simulate_comment(
                    client,
                    urls["github-app"],
                    self.runtime.webhook_secret(),
                    form.text,
                    repo=form.repo,
                    number=form.number,
                    login=form.login,
                    pull_request=form.pull_request,
                )
        except (*_IO_ERRORS, KeyError) as exc:
            self.post_message(ActionFinished(action, False, _describe(exc)))
            return
        if result.signing_urls:
            self.last_signing_url = result.signing_urls[-1]
            detail = f"{len(result.signing_urls)} intent(s); signing URL {result.signing_urls[-1]}"
        elif result.link_codes:
            detail = f"link code(s) delivered: {', '.join(result.link_codes)}"
        else:
            self.post_message(ActionFinished(action, False, result.nothing_matched_reason()))
            return
        self.post_message(ActionFinished(action, True, detail))

    def action_sign(self) -> None:
        journey = self.book.newest_pending()
        if journey is None:
            self.say("action", "sign: no pending intent yet (press c to simulate a comment)")
            return
        self.sign_pending(journey.signing_url)

    @work(thread=True, exclusive=True, group="action", exit_on_error=False)
    def sign_pending(self, url: str) -> None:
        try:
            with new_client() as client:
                result = sign_intent(client, url, self.wallet)
        except _IO_ERRORS as exc:
            self.post_message(ActionFinished("sign", False, _describe(exc)))
            return
        who = " (public test account)" if self.wallet.is_test_account else ""
        self.post_message(
            ActionFinished("sign", True, f"signed by {result.address}{who}; see {result.redirect}")
        )

    def action_link(self) -> None:
        self.push_screen(LinkIdentityScreen(), self._login_entered)

    def _login_entered(self, login: str | None) -> None:
        if login:
            self.link_wallet(login)

    @work(thread=True, exclusive=True, group="action", exit_on_error=False)
    def link_wallet(self, login: str) -> None:
        try:
            urls = self.runtime.public_urls()
            with new_client() as client:
                outcome = link_identity(
                    client,
                    frontend_url=urls["frontend"],
                    github_app_url=urls["github-app"],
                    webhook_secret=self.runtime.webhook_secret(),
                    wallet=self.wallet,
                    login=login,
                    repo=LINK_REPO,
                    number=1,
                )
        except (*_IO_ERRORS, KeyError) as exc:
            self.post_message(ActionFinished("link identity", False, _describe(exc)))
            return
        ok = outcome.status.state == "linked"
        self.post_message(ActionFinished("link identity", ok, outcome.status.describe()))

    def action_open_url(self) -> None:
        journey = self.book.newest_pending()
        url = journey.signing_url if journey is not None else self.last_signing_url
        if not url:
            self.say("action", "open: no signing URL yet (press c to simulate a comment)")
            return
        self.open_in_browser(url)

    @work(thread=True, exclusive=True, group="browser", exit_on_error=False)
    def open_in_browser(self, url: str) -> None:
        try:
            opened = self.browser(url)
        except (webbrowser.Error, OSError) as exc:
            self.post_message(ActionFinished("open", False, f"{_describe(exc)}; the URL: {url}"))
            return
        detail = f"opened {url}" if opened is not False else f"no browser found; the URL: {url}"
        self.post_message(ActionFinished("open", opened is not False, detail))

    def action_kill(self) -> None:
        node = self.dashboard.query_one(TopologyGraph).selected
        if not node:
            self.say("action", "kill: select a node first")
            return
        self.kill_node(node)

    @work(thread=True, exclusive=True, group="action", exit_on_error=False)
    def kill_node(self, node: str) -> None:
        try:
            killed = self.runtime.kill(node)
        except _IO_ERRORS as exc:
            self.post_message(ActionFinished(f"kill {node}", False, _describe(exc)))
            return
        self.post_message(
            ActionFinished(
                f"kill {node}", True, f"killed {killed}; watch the runtime bring it back"
            )
        )

    def action_up(self) -> None:
        if self.stack_up:
            self.say("action", "up: the stack is already up")
            return
        self.bring_up()

    @work(thread=True, exclusive=True, group="action", exit_on_error=False)
    def bring_up(self) -> None:
        def progress(text: str) -> None:
            self.call_from_thread(self.say, "action", f"up: {text}")

        try:
            self.runtime.up(progress)
        except _IO_ERRORS as exc:
            self.post_message(ActionFinished("up", False, _describe(exc)))
            return
        self.post_message(ActionFinished("up", True, "the stack is up"))
        self.call_from_thread(self.run_tap)

    def action_chaos(self) -> None:
        if not self.stack_up:
            self.say("action", "chaos: bring the stack up first (u)")
            return
        self.run_chaos()

    @work(thread=True, exclusive=True, group="chaos", exit_on_error=False)
    def run_chaos(self) -> None:
        """A short `kdemo chaos` run: the graph shows each node hit and coming back."""
        from kdemo.chaos.run import ChaosOptions, run_chaos  # late: only this action needs it

        options = ChaosOptions(**{"seed": int(time.time()), **self.chaos})

        def say(text: str) -> None:
            self.call_from_thread(self.say, "action", f"chaos: {text}")

        try:
            report = run_chaos(
                self.runtime,
                options,
                progress=say,
                on_fault=lambda f: say(f"{f.fault} {f.node} at {f.at_s:.0f} s"),
            )
        except _IO_ERRORS as exc:
            self.post_message(ActionFinished("chaos", False, _describe(exc)))
            return
        data = report.to_json()
        self.post_message(
            ActionFinished(
                "chaos",
                report.ok,
                f"{data['flows']} flows, {data['faults']['injected']} faults: {data['lost']} lost, "
                f"{data['doubled']} doubled, {data['dead_lettered']} dead-lettered"
                + ("" if report.ok else "; run `kdemo chaos` for the whole report"),
            )
        )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:  # type: ignore[type-arg]  # Screen's own type parameter is irrelevant here
        yield from super().get_system_commands(screen)
        yield SystemCommand("Simulate a comment", "Deliver a signed webhook", self.action_simulate)
        yield SystemCommand("Sign newest intent", "Sign with the test account", self.action_sign)
        yield SystemCommand("Link identity", "Link the test wallet to a login", self.action_link)
        yield SystemCommand("Open signing URL", "In the browser", self.action_open_url)
        yield SystemCommand("Kill selected node", "The runtime brings it back", self.action_kill)
        yield SystemCommand("Bring the stack up", "When it is down", self.action_up)
        yield SystemCommand(
            "Chaos", "Flows under faults, then an audit (about a minute)", self.action_chaos
        )
        yield SystemCommand("Dashboard help", "Keys and what the graph shows", self.action_help)
