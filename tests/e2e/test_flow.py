"""The whole flow through the CLI on the local runtime, twice, as a user would type it.

Once per bus: `kdemo up` (NATS, the default) and `kdemo up --bus kafka` (a real Kafka
broker; skipped, with the reason, without java or mvn). One stack per bus for the module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kdemo import topology
from kdemo.runtime import get_runtime
from tests.e2e.buses import BUSES

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]


UP_TIMEOUT_S = {"nats": 180.0, "kafka": 400.0}
"""A Kafka broker is a JVM (15-25 s to start here), and the first `up` on a machine fetches
its jars (about 40 s)."""


class Cli:
    def __init__(self, state_dir: Path, bus: str) -> None:
        self.bus = bus
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KDEMO_")}
        self.env["KDEMO_STATE_DIR"] = str(state_dir)
        self.env["KDEMO_LINK_PAIR_GRACE"] = "5"

    def run(
        self, *args: str, ok: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "kdemo", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if ok:
            command = " ".join(args)
            assert result.returncode == 0, f"kdemo {command}:\n{result.stdout}\n{result.stderr}"
        return result


def alive(pid: int, started: str) -> bool:
    """True while `pid` is the same process (same start time) as when recorded, and runs.

    A zombie has exited: it only waits for its parent (here possibly a PID 1 that does not
    reap orphans) to collect its exit status.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == started and fields[0] != "Z"


def start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def running_nodes(status: dict[str, object]) -> dict[str, tuple[int, str, int]]:
    """node -> (pid, the process's start time, restarts) from `status -o json`."""
    return {
        s["name"]: (int(s["pid"]), start_time(int(s["pid"])), int(s["restarts"]))
        for s in status["services"]  # type: ignore[attr-defined]
    }


def processes_of(status: dict[str, object], state_dir: Path) -> dict[int, str]:
    """pid -> start time of the supervisor, every node, and every child they spawned."""
    roots = [int(s["pid"]) for s in status["services"] if s.get("pid")]  # type: ignore[attr-defined]
    roots.append(int(json.loads((state_dir / "supervisor.json").read_text())["supervisor"]["pid"]))
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = list(roots)
    while todo:
        pid = todo.pop()
        try:
            found[pid] = start_time(pid)
        except OSError:
            continue
        todo.extend(children.get(pid, []))
    return found


@pytest.fixture(scope="module", params=BUSES)
def cli(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    bus: str = request.param
    state_dir = tmp_path_factory.mktemp(f"e2e-state-{bus}")
    cli = Cli(state_dir, bus)
    # NATS through the default, as the README's `kdemo up`; Kafka by asking for it.
    cli.run("up", *(["--bus", bus] if bus != "nats" else []), timeout=UP_TIMEOUT_S[bus])
    try:
        yield cli
    finally:
        cli.run("down", "--purge", ok=False)


def assert_edge_metrics_follow_the_topology(state_dir: Path, bus: str) -> None:
    """Every edge a service counts is a declared edge of the stack's bus's topology, and the
    flow used every required one."""
    observed = get_runtime(state_dir).observed_topology()
    assert observed.unobserved == []
    edges = topology.for_bus(bus).edges
    declared = {(e.source, e.target) for e in edges}
    seen = {(e.source, e.target) for e in observed.edges if e.requests > 0}
    assert seen - declared == set()
    required = {(e.source, e.target) for e in edges if not e.optional}
    assert required - seen == set()
    assert all(e.mean_latency_ms is not None for e in observed.edges if e.requests > 0)


def flow(cli: Cli, repo: str, number: int, login: str, *, linked_before: bool) -> None:
    out = cli.run(
        "simulate-comment",
        "Happy to fund this: $USDC:50$",
        "--repo",
        repo,
        "--number",
        str(number),
        "--user",
        login,
    ).stdout
    urls = [line for line in out.splitlines() if "/sign?t=" in line]
    assert len(urls) == 1, out

    page = httpx.get(urls[0], timeout=10)  # the funder opens the URL before signing
    assert page.status_code == 200
    assert "USDC" in page.text

    signed = cli.run("sign", urls[0]).stdout.strip()
    assert signed == f"https://github.com/{repo}/issues/{number}"

    listing = json.loads(cli.run("bounties", "--repo", repo, "-o", "json").stdout)
    bounty = next(b for b in listing["bounties"] if b["number"] == number)
    assert bounty["state"] == "signed"
    assert (bounty["amount"], bounty["denomination"]) == ("50", "USDC")
    signed_usdc = sum(
        int(b["amount"])
        for b in listing["bounties"]
        if b["state"] == "signed" and b["denomination"] == "USDC"
    )
    usdc = next(t for t in listing["totals"] if t["denomination"] == "USDC")
    assert usdc["base_units"] == str(signed_usdc * 10**6)  # calc: USDC has 6 decimals
    if not linked_before:  # identity does not know the wallet yet
        assert bounty["funder"]["login"] is None
        assert bounty["funder"]["verified"] is False

    linked = cli.run("link-identity", "--github", login)
    assert re.search(r"linked", linked.stdout + linked.stderr, re.IGNORECASE)

    listing = json.loads(cli.run("bounties", "--repo", repo, "-o", "json").stdout)
    bounty = next(b for b in listing["bounties"] if b["number"] == number)
    assert bounty["funder"]["login"] == login
    assert bounty["funder"]["verified"] is True


def test_flow_twice_then_smoke_then_down_leaves_nothing(cli: Cli) -> None:
    """The README's sequence twice, smoke twice, and `down` leaves no process behind."""
    status = json.loads(cli.run("status", "-o", "json").stdout)
    assert status["runtime"] == "local"
    assert status["bus"] == cli.bus
    assert {s["name"] for s in status["services"]} == {
        "github-app",
        "frontend",
        "gateway",
        "calc",
        "identity",
        cli.bus,
        "postgres",
    }
    assert all(s["ready"] for s in status["services"]), status

    flow(cli, "acme/widgets", 42, "octocat", linked_before=False)
    # The same sequence again against the same stack: relinking is a success.
    flow(cli, "acme/widgets", 42, "octocat", linked_before=True)

    # up twice is a no-op: the same processes, no restart, stack and secrets files untouched
    state_dir = Path(cli.env["KDEMO_STATE_DIR"])
    nodes_before = running_nodes(json.loads(cli.run("status", "-o", "json").stdout))
    files_before = {f: (state_dir / f).stat().st_mtime_ns for f in ("stack.json", "secrets.json")}
    assert cli.run("up").returncode == 0
    assert running_nodes(json.loads(cli.run("status", "-o", "json").stdout)) == nodes_before
    assert {f: (state_dir / f).stat().st_mtime_ns for f in files_before} == files_before
    assert_edge_metrics_follow_the_topology(state_dir, cli.bus)
    cli.run("smoke")
    cli.run("smoke")

    status = json.loads(cli.run("status", "-o", "json").stdout)
    processes = processes_of(status, state_dir)
    assert len(processes) >= 8  # supervisor, 5 services, the bus, postgres (and its workers)
    cli.run("down")
    leftovers = [pid for pid, started in processes.items() if alive(pid, started)]
    assert leftovers == []
