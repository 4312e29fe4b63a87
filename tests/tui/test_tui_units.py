"""The dashboard's pure parts: layout, journeys, metrics, event routing, forms."""

from __future__ import annotations

import pytest

from kdemo import topology
from kdemo.errors import UsageError
from kdemo.observe import grown_edges, node_traffic, parse_edges
from kdemo.testing.recorded import FIXED_NOW, RecordedRuntime, cloud_event, synthetic_topology
from kdemo.tui.app import edges_crossed
from kdemo.tui.banner import BannerMessages
from kdemo.tui.graph_layout import (
    LIT_STYLE,
    EdgeKey,
    NodeView,
    count_crossings,
    layout_graph,
    render_line,
)
from kdemo.tui.journeys import JourneyBook, event_name, format_duration
from kdemo.tui.screens.forms import parse_comment_form
from kdemo.tui.widgets.panes import fit_columns


def _text(runs: list[tuple[str, str]]) -> str:
    return "".join(t for t, _ in runs)


def test_layout_fits_120_columns_and_places_every_node() -> None:
    """The declared topology is laid out within 120 columns with one box per non-hub node."""
    g = layout_graph(topology.NODES, topology.EDGES)
    assert g.width <= 120
    hubs = {"nats", "postgres"}
    assert set(g.boxes) == {n.name for n in topology.NODES} - hubs
    assert [b.name for b in g.bars] == ["nats", "postgres"]


def test_layout_draws_externals_apart_from_services() -> None:
    """External actors sit left of the first stack boundary, or right of the last one."""
    g = layout_graph(topology.NODES, topology.EDGES)
    left, right = min(g.boundaries), max(g.boundaries)
    for n in topology.NODES:
        if n.name in g.boxes:
            box = g.boxes[n.name]
            outside = box.x + box.w <= left or box.x >= right
            assert outside == (n.kind is topology.NodeKind.EXTERNAL), n.name


def test_every_non_hub_edge_is_labelled_with_its_protocol() -> None:
    """Each edge between boxes carries its protocol's name on the graph."""
    g = layout_graph(topology.NODES, topology.EDGES)
    lines = [_text(render_line(g, y, {})) for y in range(g.height)]
    for route in g.routes:
        if route.to_hub:
            continue
        assert route.label_at is not None
        x, y = route.label_at
        assert lines[y][x : x + len(route.label)] == route.protocol, route.key


def test_bus_caption_names_every_published_event() -> None:
    """The subjects moving over the bus are written under its bar."""
    g = layout_graph(topology.NODES, topology.EDGES)
    captions = " ".join(text for _, text in g.captions)
    for name in topology.EVENT_NAMES:
        assert name in captions


@pytest.mark.parametrize(
    ("state", "badge"),
    [("ready", "● ready"), ("down", "✖ down"), ("starting", "◌ starting"), ("restarting", "↻")],
)
def test_box_shows_state_badge_and_facts(state: str, badge: str) -> None:
    """A box's first inner line is its state's badge and the next its pid."""
    g = layout_graph(topology.NODES, topology.EDGES)
    box = g.boxes["calc"]
    view = NodeView(state, ("pid 4242", "up 5s"), 0)
    assert badge in _text(render_line(g, box.y + 1, {"calc": view}))
    assert "pid 4242" in _text(render_line(g, box.y + 2, {"calc": view}))


def test_lit_edge_is_drawn_in_the_lit_style() -> None:
    """Lighting an edge changes the style its cells are drawn in."""
    g = layout_graph(topology.NODES, topology.EDGES)
    route = next(r for r in g.routes if r.key == ("gateway", "calc"))
    y = route.points[0][1]
    styles = {s for _, s in render_line(g, y, {}, {("gateway", "calc"): LIT_STYLE})}
    assert LIT_STYLE in styles
    assert LIT_STYLE not in {s for _, s in render_line(g, y, {})}


def test_synthetic_topology_lays_out_200_services() -> None:
    """The benchmark's 200-service graph is laid out with a box for every service."""
    nodes, edges = synthetic_topology(200)
    g = layout_graph(nodes, edges)
    assert sum(1 for b in g.boxes.values() if b.name.startswith("svc-")) == 200


@pytest.mark.parametrize(
    ("subject", "name"),
    [
        ("kdemo.bounty.requested.0xabc", "bounty.requested"),
        ("kdemo.bounty.signed.0xabc.0xdef", "bounty.signed"),
        ("kdemo.dlq.bounty.signed.0xabc.0xdef", "dlq.bounty.signed"),
    ],
)
def test_event_name_from_subject(subject: str, name: str) -> None:
    """Subjects map to event names; dead letters keep their `dlq.` prefix."""
    assert event_name(subject) == name


@pytest.mark.parametrize(
    ("subject", "crossed", "dead"),
    [
        ("kdemo.bounty.requested.0x1", {("github-app", "nats"), ("gateway", "nats")}, False),
        ("kdemo.identity.linked.abc", {("identity", "nats")}, False),
        ("kdemo.dlq.bounty.signed.0x1.0x2", {("gateway", "nats")}, True),
    ],
)
def test_event_crosses_publisher_and_consumer_edges(
    subject: str, crossed: set[tuple[str, str]], dead: bool
) -> None:
    """An event lights its publisher's and consumers' edges; a dead letter its consumer's."""
    assert edges_crossed(subject) == (crossed, dead)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.08, "80ms"), (4.25, "4.2s"), (185, "3m05s"), (7440, "2h04m")]
)
def test_format_duration(seconds: float, text: str) -> None:
    """Durations read short: ms, s, m and h."""
    assert format_duration(seconds) == text


def test_journeys_rebuilt_from_recorded_story() -> None:
    """The recorded events give one attributed journey and one waiting for a signature."""
    book = JourneyBook()
    for tap in RecordedRuntime.demo()._events:
        book.apply(tap)
    done, waiting = sorted(book.journeys.values(), key=lambda j: j.number)
    assert set(done.times) == {"received", "intent", "signed", "recorded", "attributed"}
    assert done.funder_login == "alice"
    assert dict(done.durations(FIXED_NOW))["signed"] == "21.4s"
    assert waiting.pending_signature
    assert book.newest_pending() is waiting
    assert dict(waiting.durations(FIXED_NOW))["signed"] == "…42.0s"


def test_signature_before_intent_still_makes_one_journey() -> None:
    """Out-of-order events fold into the same journey, each stage at its own time."""
    book = JourneyBook()
    key = "0x" + "c3" * 32
    book.apply(
        cloud_event(
            "bounty.signed", f"{key}.0xaa", {"intent_id": key, "address": "0xAA"}, 20, seq=1
        )
    )
    book.apply(
        cloud_event(
            "bounty.requested", key, {"intent_id": key, "repository": "a/b", "number": 2}, 10, seq=2
        )
    )
    journey = book.journeys[key]
    assert journey.times["intent"] == 10
    assert journey.times["signed"] == 20
    assert journey.signers == {"0xaa"}


def test_gateway_funder_login_attributes_a_recorded_bounty() -> None:
    """gateway's `funder.login` attributes a recorded bounty nobody linked on the bus."""
    book = JourneyBook()
    key = "0x" + "d4" * 32
    book.apply(
        cloud_event(
            "bounty.recorded",
            f"{key}.0xbb",
            {"intent_id": key, "address": "0xbb", "state": "signed"},
            5,
            seq=1,
        )
    )
    assert book.apply_funders([{"intent_id": key, "funder": {"login": "carol"}}], now=9) == [key]
    assert book.journeys[key].times["attributed"] == 9


METRICS = """\
# TYPE kdemo_edge_requests_total counter
kdemo_edge_requests_total{{from="gateway",to="calc",protocol="gRPC"}} {calc}
kdemo_edge_requests_total{{from="gateway",to="identity",protocol="gRPC"}} 3
# TYPE kdemo_edge_request_duration_seconds histogram
kdemo_edge_request_duration_seconds_sum{{from="gateway",to="calc",protocol="gRPC"}} {total}
kdemo_edge_request_duration_seconds_count{{from="gateway",to="calc",protocol="gRPC"}} {calc}
"""


def test_grown_counters_light_only_edges_that_carried_requests() -> None:
    """Between two scrapes, only edges whose counter grew are reported."""
    before = parse_edges(METRICS.format(calc=10, total=0.05))
    after = parse_edges(METRICS.format(calc=14, total=0.09))
    assert grown_edges(before, after) == {("gateway", "calc")}
    traffic = node_traffic(before, after, interval_s=2.0)
    assert traffic.rate == pytest.approx(2.0)
    assert traffic.latency_ms == pytest.approx(10.0)


def test_restarted_service_resets_counters_without_negative_rate() -> None:
    """A counter that went down (the service restarted) gives no rate rather than a negative one."""
    before = parse_edges(METRICS.format(calc=10, total=0.05))
    after = parse_edges(METRICS.format(calc=1, total=0.001))
    assert grown_edges(before, after) == set()
    assert node_traffic(before, after, interval_s=2.0).rate is None


@pytest.mark.parametrize(
    ("repo", "number", "text", "login", "field"),
    [
        ("nope", "1", "$USDC:5$", "octocat", "repository"),
        ("o/r", "zero", "$USDC:5$", "octocat", "number"),
        ("o/r", "1", "  ", "octocat", "comment text"),
        ("o/r", "1", "$USDC:5$", "-bad-", "author"),
    ],
)
def test_comment_form_names_the_bad_field(
    repo: str, number: str, text: str, login: str, field: str
) -> None:
    """Each bad field of the comment form is refused with its name and a fix."""
    with pytest.raises(UsageError) as caught:
        parse_comment_form(repo, number, text, pull_request=False, login=login)
    assert field in caught.value.message
    assert caught.value.hint


def test_banner_clears_one_key_and_keeps_the_others_in_a_fixed_order() -> None:
    """Each concern sets and clears its own message; the banner lists them stack, tap,
    metrics, action whatever order they were said in."""
    banner = BannerMessages()
    assert banner.set("action", "sign: signed by 0xabc")
    assert banner.set("metrics", "not answering /metrics: calc")
    assert banner.set("stack", "the stack is down: press u to bring it up")
    assert not banner.set("stack", "the stack is down: press u to bring it up")
    assert banner.lines() == [
        "the stack is down: press u to bring it up",
        "not answering /metrics: calc",
        "sign: signed by 0xabc",
    ]
    assert banner.set("metrics", None)
    assert not banner.clear("tap")
    assert banner.lines() == ["the stack is down: press u to bring it up", "sign: signed by 0xabc"]
    assert banner.get("action") == "sign: signed by 0xabc"
    banner.clear("stack")
    banner.clear("action")
    assert not banner


def test_edges_to_a_hub_join_one_trunk_per_column() -> None:
    """Each column's edges to nats (or postgres) share one trunk down to the bar: the bar is
    met once per column, not once per edge, and the trunk stands for all of them."""
    g = layout_graph(topology.NODES, topology.EDGES)
    nats = next(bar for bar in g.bars if bar.name == "nats")
    to_nats = [e for e in topology.EDGES if e.target == "nats"]
    trunks = [r for r in g.routes if r.trunk and r.trunk[1] == "nats" and len(r.points) == 2]
    trunks = [r for r in trunks if r.points[-1][1] == nats.y]
    assert len(nats.junctions) == len(trunks) < len(to_nats)
    assert {k for r in trunks for k in r.edges} == {EdgeKey(e.source, e.target) for e in to_nats}


def test_layout_search_keeps_crossings_few() -> None:
    """The layout keeps the routing with the fewest crossings it finds (35 drawn before)."""
    g = layout_graph(topology.NODES, topology.EDGES)
    assert count_crossings(g) <= 7


def test_lit_trunk_follows_any_of_its_edges() -> None:
    """A trunk lights when any edge it carries does (gateway's events light its nats line)."""
    g = layout_graph(topology.NODES, topology.EDGES)
    trunk = next(
        r
        for r in g.routes
        if r.trunk and EdgeKey("gateway", "nats") in r.edges and r.points[0][0] == r.points[-1][0]
    )
    x, y = trunk.points[-1]  # where it meets the bar; just above it only the trunk is drawn
    runs = render_line(g, y - 1, {}, {EdgeKey("gateway", "nats"): LIT_STYLE})
    styles = [s for text, s in runs for _ in text]
    assert styles[x] == LIT_STYLE


@pytest.mark.parametrize(
    ("available", "shown", "cut"),
    [
        (60, [0, 1, 2], {}),
        (30, [1, 2], {}),
        (26, [1, 2], {2: 10}),
        (10, [1, 2], {2: 6}),
    ],
)
def test_fit_columns_drops_first_then_cuts(
    available: int, shown: list[int], cut: dict[int, int]
) -> None:
    """Columns named to drop go first; only then is the shrinkable one cut (never below 6)."""
    assert fit_columns([8, 12, 12], available, drop=(0,), shrink=2) == (shown, cut)
