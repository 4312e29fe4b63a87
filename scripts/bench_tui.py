"""Benchmark the dashboard on a synthetic topology: 200 services, 1,000 pods.

Prints, and with --markdown FILE writes:
- layout of the whole graph (once per topology) and render of every line of it;
- a full refresh inside the running app (status of 1,000 pods applied, screen drawn);
- peak memory (RSS) of this process;
- 500 events/s through the bus-tap path: the lag from an event's arrival to its
  being drawn (mean, p99 and max), and whether the UI kept up.

Runs headless (Textual's test driver); no network, no stack.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

from kdemo.testing.recorded import RecordedRuntime, synthetic_topology
from kdemo.tui import DashboardApp
from kdemo.tui.graph_layout import NodeView, layout_graph, render_line
from kdemo.tui.widgets import TopologyGraph

SERVICES = 200
PODS = 1000
RATE = 500
EVENTS = 5000
REPEAT = 20


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_layout() -> dict[str, str]:
    nodes, edges = synthetic_topology(SERVICES)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        g = layout_graph(nodes, edges)
        times.append(time.perf_counter() - start)
    views = {n.name: NodeView("ready", ("5/5 pods", "up 1h00m")) for n in nodes}
    renders = []
    for _ in range(5):
        start = time.perf_counter()
        for y in range(g.height):
            render_line(g, y, views)
        renders.append(time.perf_counter() - start)
    screen = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        for y in range(35):
            render_line(g, y, views)
        screen.append(time.perf_counter() - start)
    return {
        "graph size (columns x lines)": f"{g.width} x {g.height}",
        "layout, whole graph (once per topology)": _ms(statistics.median(times)),
        "render, every line of the graph": _ms(statistics.median(renders)),
        "render, one 35-line screen": _ms(statistics.median(screen)),
    }


async def bench_app() -> dict[str, str]:
    nodes, edges = synthetic_topology(SERVICES)
    runtime = RecordedRuntime.synthetic(nodes, pods=PODS, tap_rate=RATE, tap_count=EVENTS)
    app = DashboardApp(runtime, nodes=nodes, edges=edges, poll_interval=0.5, flush_interval=0.1)
    results: dict[str, str] = {}
    async with app.run_test(size=(160, 50)) as pilot:
        while not app.rows:
            await pilot.pause(0.05)
        start = time.perf_counter()
        deadline = start + EVENTS / RATE + 30
        while app.tap_stats.events < EVENTS and time.perf_counter() < deadline:
            await pilot.pause(0.1)
        elapsed = time.perf_counter() - start
        stats = app.tap_stats
        results["tap: events drawn"] = f"{stats.events} of {EVENTS} at {RATE}/s"
        results["tap: wall time for all events"] = f"{elapsed:.1f} s (paced: {EVENTS / RATE:.0f} s)"
        results["tap: lag arrival → drawn (mean)"] = _ms(stats.mean_lag_s)
        results["tap: lag arrival → drawn (max)"] = _ms(stats.max_lag_s)
        results["tap: kept up"] = "yes" if stats.events == EVENTS and stats.max_lag_s < 1 else "no"
        graph = app.query_one(TopologyGraph)
        rows = list(app.rows.values())
        # What the app does on each status poll (the layout is made once per topology) ...
        refresh = []
        for _ in range(REPEAT):
            start = time.perf_counter()
            graph.show_status(rows)
            await pilot.pause()  # let the screen be drawn
            refresh.append(time.perf_counter() - start)
        results["app refresh: status of 1,000 pods + draw (median)"] = _ms(
            statistics.median(refresh)
        )
        results["app refresh (max)"] = _ms(max(refresh))
        # ... and the worst case, a topology change that needs a new layout too.
        relayout = []
        for _ in range(REPEAT):
            start = time.perf_counter()
            graph.show_status(rows)
            graph.layout_data = layout_graph(nodes, edges)
            await pilot.pause()
            relayout.append(time.perf_counter() - start)
        results["app refresh with a new layout (median)"] = _ms(statistics.median(relayout))
    results["peak RSS (whole process)"] = f"{_peak_rss_mb():.0f} MB"
    return results


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", type=Path, help="also write the figures as markdown here")
    args = parser.parse_args()
    figures = bench_layout()
    figures.update(asyncio.run(bench_app()))
    width = max(len(k) for k in figures)
    print(f"machine: {machine()}")
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.markdown:
        lines = [
            "## Dashboard (`scripts/bench_tui.py`)",
            "",
            f"Synthetic topology: {SERVICES} services, {PODS} pods, a bus and a database. "
            f"Machine: {machine()}.",
            "",
            "| measure | result |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in figures.items()),
            "",
        ]
        args.markdown.write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
