"""Benchmarks of the local stack; prints the figures recorded in docs/benchmarks.md.

    uv run python scripts/bench_stack.py [--bus nats|kafka|both] [--requests 2000]
        [--rate 200] [--signatures 100] [--up-only]

Each bus's stack has its own state directory: a cold `kdemo up --bus <bus>` after
nothing, then `down`, a warm `up`, memory at rest, and a round of loads. The Kafka
jars' cache (~/.cache/kdemo) is kept, so a cold `up` fetches nothing once it is filled.

`--bus both` (the default) measures both stacks in one run, one stack up at a time, the
rounds of loads in the order nats, kafka, kafka, nats: each bus's round has one of the
other's next to it, so the ratios kafka/nats compare figures taken minutes apart on the
same noisy machine. Each line then says its bus and its round, and a side-by-side table
ends the output. Every timed line says the load average before and after it.

Each `up` is compared with a floor measured in the same run just before it: `initdb`
and a first start of the same PostgreSQL binaries, to ready (what no `up` can beat
without skipping the database). `--up-only` stops after the ups and the memory at rest.

Talks only to 127.0.0.1, bounds every loop in count and time, and brings every stack
down (purged) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from kdemo.flow.payloads import comment_payload
from kdemo.flow.wallet import Wallet
from kdemo.flow.webhook import Delivery, build_delivery
from kdemo.runtime.kafkabroker import cached, default_cache_dir
from kdemo.runtime.local.postgres import pg_cluster, postgres_root
from kdemo.runtime.local.procs import spawn
from kdemo.runtime.ports import allocate_ports
from kdemo.runtime.stackfile import load_stack

ROOT = Path(__file__).resolve().parent.parent
BUSES = ("nats", "kafka")
BOTH_SCHEDULE = ("nats", "kafka", "kafka", "nats")
"""The rounds of loads with `--bus both`: round i of one bus next to round i of the other."""
PENDING_POLLS = 12_000
"""Polls for an intent to reach gateway before its signature: two minutes at the least."""
T = TypeVar("T")


def kdemo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "kdemo", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`kdemo {' '.join(args)}` exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def children_of() -> dict[int, list[int]]:
    """Every process's children, by parent pid, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """Read one HTTP/1.1 response with a Content-Length body; its status line."""
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


def memory_of_tree(root_pid: int) -> tuple[int, int, int]:
    """(resident bytes, proportional bytes, process count) of `root_pid` and its descendants.

    RSS counts pages shared between processes (PostgreSQL's shared buffers, the same
    libraries) once per process; PSS splits them, so its sum is what the stack costs.
    """
    children = children_of()
    rss = pss = count = 0
    todo = [root_pid]
    while todo:
        pid = todo.pop()
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {line.split(":")[0]: line.split()[1] for line in rollup if ":" in line}
        rss += int(fields.get("Rss", 0)) * 1024
        pss += int(fields.get("Pss", 0)) * 1024
        count += 1
        todo.extend(children.get(pid, []))
    return rss, pss, count


def comment_delivery(secret: str, repo: str, number: int, body: str, comment_id: int) -> Delivery:
    """A signed `issue_comment` delivery, built as `kdemo simulate-comment` builds it."""
    payload = comment_payload(
        body, repo=repo, number=number, login="bench", user_id=4242, comment_id=comment_id
    )
    return build_delivery(payload, secret)


def signed_webhooks(app_url: str, secret: str, total: int) -> list[bytes]:
    """`total` complete HTTP/1.1 requests, each a fresh signed comment, built before the run."""
    run = uuid.uuid4().hex[:8]
    host = urlsplit(app_url).netloc
    requests = []
    for i in range(total):
        delivery = comment_delivery(
            secret, f"bench/load-{run}", i % 500 + 1, "Funding: $USDC:5$", 10**9 + i
        )
        headers = delivery.headers | {"Host": host, "Content-Length": str(len(delivery.body))}
        head = "POST /webhook HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        requests.append(head.encode() + b"\r\n" + delivery.body)
    return requests


async def webhook_load(
    app_url: str, secret: str, total: int, rate: float, *, connections: int = 32
) -> list[float]:
    """Send `total` signed comments at `rate`/s (open loop); latency of each answer, seconds.

    The requests are built beforehand and sent over kept-alive connections by a bare
    HTTP/1.1 client, so the load generator spends little of the two cores the stack
    runs on. Latency counts from the moment a request was due, so a request that had
    to wait for a free connection is not flattered (no coordinated omission).
    """
    requests = signed_webhooks(app_url, secret, total)
    parts = urlsplit(app_url)
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(parts.hostname, parts.port))
    loop = asyncio.get_running_loop()
    latencies: list[float] = []

    async def one(request: bytes, due: float) -> None:
        reader, writer = await pool.get()
        writer.write(request)
        status = await read_response(reader)
        latencies.append(loop.time() - due)
        pool.put_nowait((reader, writer))
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"github-app answered {status!r}")

    tasks = []
    start = loop.time() + 0.1
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return latencies


async def signature_to_ledger(urls: dict[str, str], secret: str, count: int) -> list[float]:
    """For `count` fresh intents: time from the signature's 200 to the bounty signed in gateway."""
    wallet = Wallet.fresh()
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(count):
            delivery = comment_delivery(
                secret, f"bench/sig-{run}", i + 1, "Funding: $USDC:7$", 2 * 10**9 + i
            )
            answer = await client.post(
                f"{urls['github-app']}/webhook", content=delivery.body, headers=delivery.headers
            )
            answer.raise_for_status()
            intent = answer.json()["intents"][0]
            token = parse_qs(urlsplit(intent["signing_url"]).query)["t"][0]
            # Wait until gateway has the pending intent, so we time the signature alone: the
            # first one comes after what the loads before left to relay and consume (3,000
            # intents, a minute's work on a busy machine), which no signature should queue
            # behind (on NATS, gateway reads its one stream in order).
            for _ in range(PENDING_POLLS):
                if (
                    await client.get(f"{urls['gateway']}/api/bounties/{intent['intent_id']}")
                ).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            else:
                raise RuntimeError(f"intent {intent['intent_id']} never reached gateway")
            intent_doc = await client.get(f"{urls['frontend']}/api/intents/{token}")
            typed = intent_doc.json()["typed_data"]
            posted = await client.post(
                f"{urls['frontend']}/api/signatures",
                headers={"Accept": "application/json"},
                json={
                    "token": token,
                    "address": wallet.address,
                    "signature": wallet.sign_typed_data(typed),
                },
            )
            posted.raise_for_status()
            accepted = time.perf_counter()
            for _ in range(1000):
                answer = await client.get(f"{urls['gateway']}/api/bounties/{intent['intent_id']}")
                if answer.status_code == 200 and answer.json()["bounty"]["state"] == "signed":
                    break
                await asyncio.sleep(0.002)
            else:
                raise RuntimeError(f"intent {intent['intent_id']} never became signed")
            latencies.append(time.perf_counter() - accepted)
    return latencies


# -- the stacks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    rss: int
    pss: int
    processes: int
    nodes: dict[str, int]
    """PSS of each node's process tree (the supervisor's own is the rest of `pss`)."""


def clean_env() -> dict[str, str]:
    """This environment without any KDEMO_ setting (a stack, a Kafka cache elsewhere)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KDEMO_")}


@dataclass
class Stack:
    """One bus's stack in a state directory of its own."""

    bus: str
    state_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kdemo-bench-")))
    running: bool = False

    @property
    def env(self) -> dict[str, str]:
        return clean_env() | {"KDEMO_STATE_DIR": str(self.state_dir)}

    def kdemo(self, *args: str) -> str:
        return kdemo(self.env, *args).stdout

    def up(self) -> float:
        """`kdemo up --bus <bus>`, seconds to all ready."""
        started = time.perf_counter()
        self.running = True  # even if it fails half way: `purge` takes down what started
        self.kdemo("up", "--bus", self.bus)
        return time.perf_counter() - started

    def down(self) -> None:
        self.kdemo("down")
        self.running = False

    def purge(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "kdemo", "down", "--purge"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            check=False,
            timeout=120,
        )
        self.running = False
        with contextlib.suppress(OSError):
            self.state_dir.rmdir()  # empty once purged

    def memory(self) -> Memory:
        supervisor = json.loads((self.state_dir / "supervisor.json").read_text())
        rss, pss, procs = memory_of_tree(int(supervisor["supervisor"]["pid"]))
        nodes = {
            name: memory_of_tree(int(node["pid"]))[1]
            for name, node in supervisor["nodes"].items()
            if node.get("pid")
        }
        return Memory(rss, pss, procs, nodes)

    def endpoints(self) -> tuple[dict[str, str], str]:
        """The services' URLs and the webhook secret."""
        stack = load_stack(self.state_dir)
        assert stack is not None, "kdemo up recorded no stack"
        secrets = json.loads((self.state_dir / "secrets.json").read_text())
        return stack.urls, secrets["webhook_secret"]

    def log_tails(self, lines: int = 15) -> Iterator[str]:
        for log in sorted((self.state_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            yield f"--- {self.bus}: {log.name} (last {len(tail)} lines)"
            yield from tail


def postgres_floor() -> float:
    """Seconds for `initdb` and a first start of the stack's PostgreSQL binaries, to ready.

    Same binaries, user and options as a stack's (`pg_cluster`), in a data directory of
    its own, deleted after.
    """
    scratch = Path(tempfile.mkdtemp(prefix="kdemo-floor-"))
    port = allocate_ports(env={}, bus="nats")["postgres"]
    cluster = pg_cluster(scratch, port, uuid.uuid4().hex, postgres_root(scratch, env={}))
    proc = None
    try:
        started = time.perf_counter()
        cluster.initdb()
        proc = spawn(
            cluster.argv(),
            env=cluster.env(),
            log=scratch / "postgres.log",
            cwd=cluster.root,
            user=cluster.uid,
            group=cluster.gid,
        )
        for _ in range(3000):  # 30 s at the most
            if cluster.ready():
                return time.perf_counter() - started
            time.sleep(0.01)
        raise RuntimeError(f"the floor's PostgreSQL never became ready: see {scratch}")
    finally:
        if proc is not None:
            proc.send_signal(2)  # SIGINT: a fast shutdown
            proc.wait(timeout=30)
        shutil.rmtree(cluster.root, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


# -- what is printed -------------------------------------------------------------------


@dataclass
class Out:
    """Prints each figure with the load average around it; labelled (`--bus both`) with its
    bus and round."""

    labelled: bool

    def line(self, text: str, label: str, load: tuple[float, float] | None = None) -> None:
        if self.labelled:
            text = f"[{label}] {text}"
        if load is not None:
            text += f"  (load {load[0]:.1f} -> {load[1]:.1f})"
        print(text, flush=True)


def with_load(work: Callable[[], T]) -> tuple[T, tuple[float, float]]:
    """`work()`, and the machine's 1-minute load average before and after it."""
    before = os.getloadavg()[0]
    result = work()
    return result, (before, os.getloadavg()[0])


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(size: float) -> str:
    return f"{size / 2**20:.0f} MiB"


# -- the phases, the same for either bus -------------------------------------------------


@dataclass(frozen=True)
class Start:
    cold: float
    warm: float
    floor: float
    nodes: int
    rest: Memory


@dataclass(frozen=True)
class Round:
    bus: str
    webhook: list[float]
    answered_per_s: float
    after_loads: Memory
    signature: list[float]


def bring_up(stack: Stack, out: Out) -> Start:
    """A cold `up`, `down`, a warm `up`; the memory of the stack at rest."""
    label = f"{stack.bus} up"
    cold_floor, cold_floor_load = with_load(postgres_floor)
    cold, cold_load = with_load(stack.up)
    stack.down()
    warm_floor, warm_floor_load = with_load(postgres_floor)
    warm, warm_load = with_load(stack.up)
    load = os.getloadavg()
    out.line(f"floor before the cold up: {cold_floor:.2f} s", label, cold_floor_load)
    out.line(
        f"kdemo up, cold (first ever, initdb included): {cold:.2f} s = "
        f"{cold / cold_floor:.1f}x floor",
        label,
        cold_load,
    )
    out.line(f"floor before the warm up: {warm_floor:.2f} s", label, warm_floor_load)
    out.line(
        f"kdemo up, warm (data kept, after down):       {warm:.2f} s = "
        f"{warm / warm_floor:.1f}x floor",
        label,
        warm_load,
    )
    if not out.labelled:
        print("load average after the ups: {:.2f} {:.2f} {:.2f}".format(*load))
    status = json.loads(stack.kdemo("status", "-o", "json"))
    rest = stack.memory()
    out.line(
        f"memory of the whole stack at rest: PSS {mib(rest.pss)} "
        f"(RSS summed {mib(rest.rss)}) in {rest.processes} processes "
        f"({len(status['services'])} nodes)",
        label,
    )
    if out.labelled:
        each = ", ".join(f"{name} {mib(size)}" for name, size in rest.nodes.items())
        out.line(f"PSS at rest per node: {each}", label)
    return Start(cold, warm, min(cold_floor, warm_floor), len(status["services"]), rest)


def load_round(stack: Stack, args: argparse.Namespace, out: Out, label: str) -> Round:
    """Webhooks at the rate, webhooks at saturation, then signatures one at a time."""
    urls, secret = stack.endpoints()
    lat, load = with_load(
        lambda: asyncio.run(webhook_load(urls["github-app"], secret, args.requests, args.rate))
    )
    out.line(
        f"webhook -> signing URL, {args.requests} requests at {args.rate:.0f}/s: "
        f"p50 {ms(percentile(lat, 50))}, p99 {ms(percentile(lat, 99))}, max {ms(max(lat))}",
        label,
        load,
    )
    started = time.perf_counter()
    saturated, load = with_load(
        lambda: asyncio.run(webhook_load(urls["github-app"], secret, 3000, 5000.0))
    )
    answered = len(saturated) / (time.perf_counter() - started)
    out.line(
        f"webhook throughput at saturation (3000 offered at once): "
        f"{answered:.0f}/s answered (each intent stored; publishing follows)",
        label,
        load,
    )
    after = stack.memory()
    out.line(
        f"memory of the whole stack after the load: PSS {mib(after.pss)} "
        f"(RSS summed {mib(after.rss)})",
        label,
    )
    sig, load = with_load(lambda: asyncio.run(signature_to_ledger(urls, secret, args.signatures)))
    out.line(
        f"signature accepted -> visible through gateway, {args.signatures} intents: "
        f"p50 {ms(percentile(sig, 50))}, p99 {ms(percentile(sig, 99))}, "
        f"mean {ms(statistics.mean(sig))}",
        label,
        load,
    )
    return Round(stack.bus, lat, answered, after, sig)


def measure(
    buses: tuple[str, ...], args: argparse.Namespace, out: Out
) -> tuple[dict[str, Start], list[Round]]:
    """Each bus's stack brought up from nothing, then the rounds of loads in turn.

    Only the stack of the round runs: the other is taken down before it (and brought up
    again, warm, for its next round), so neither stack's idle work weighs on the other's.
    """
    stacks = {bus: Stack(bus) for bus in buses}
    schedule = BOTH_SCHEDULE if len(buses) > 1 and not args.up_only else buses
    starts: dict[str, Start] = {}
    rounds: list[Round] = []
    try:
        for bus in schedule:
            stack = stacks[bus]
            for other in stacks.values():
                if other is not stack and other.running:
                    other.down()
            if bus not in starts:
                starts[bus] = bring_up(stack, out)
            if args.up_only:
                continue
            elif not stack.running:
                warm, load = with_load(stack.up)
                out.line(f"kdemo up, warm again: {warm:.2f} s", f"{bus} up", load)
            number = sum(r.bus == bus for r in rounds) + 1
            rounds.append(load_round(stack, args, out, f"{bus} round {number}"))
    except BaseException:
        for stack in stacks.values():
            if stack.running:
                print("\n".join(stack.log_tails()), file=sys.stderr)
        raise
    finally:
        for stack in stacks.values():
            stack.purge()
    return starts, rounds


# -- the side-by-side table --------------------------------------------------------------


def ratio(kafka: float, nats: float) -> str:
    return f"{kafka / nats:.2f}" if nats else "—"


def table_row(name: str, nats: float, kafka: float, show: Callable[[float], str]) -> str:
    return f"| {name} | {show(nats)} | {show(kafka)} | {ratio(kafka, nats)} | |"


def round_rows(
    name: str, nats: list[Round], kafka: list[Round], figure: Callable[[list[Round]], float]
) -> str:
    """A figure over all of each bus's rounds, and its ratio in each pair of rounds."""
    both_n, both_k = figure(nats), figure(kafka)
    pairs = " / ".join(ratio(figure([k]), figure([n])) for n, k in zip(nats, kafka, strict=True))
    return f"| {name} | {ms(both_n)} | {ms(both_k)} | {ratio(both_k, both_n)} | {pairs} |"


def per_node(start: Start) -> dict[str, int]:
    """PSS at rest of each node, the bus under one name, and the supervisor's own."""
    sizes = {
        "the bus (nats-server / Kafka broker)" if name in BUSES else name: size
        for name, size in start.rest.nodes.items()
    }
    sizes["the supervisor"] = start.rest.pss - sum(start.rest.nodes.values())
    return sizes


def side_by_side(starts: dict[str, Start], rounds: list[Round], args: argparse.Namespace) -> None:
    nats, kafka = starts["nats"], starts["kafka"]
    by_bus = {bus: [r for r in rounds if r.bus == bus] for bus in BUSES}

    def over_rounds(name: str, pick: Callable[[Round], list[float]], pct: float) -> str:
        def figure(rounds: list[Round]) -> float:
            return percentile([x for r in rounds for x in pick(r)], pct)

        return round_rows(name, by_bus["nats"], by_bus["kafka"], figure)

    def seconds(value: float) -> str:
        return f"{value:.2f} s"

    def rate(value: float) -> str:
        return f"{value:.0f}/s"

    node_rows = [
        table_row(f"PSS at rest: {name}", nats_size, per_node(kafka)[name], mib)
        for name, nats_size in per_node(nats).items()
    ]
    webhook = f"webhook → signing URL at {args.rate:.0f}/s"
    signature = "signature accepted → visible through gateway"
    rows = [
        "| measure | nats | kafka | kafka/nats | kafka/nats per pair of rounds |",
        "|---|---|---|---|---|",
        table_row("`kdemo up`, cold, to all ready", nats.cold, kafka.cold, seconds),
        table_row("`kdemo up`, warm (data kept)", nats.warm, kafka.warm, seconds),
        table_row(
            f"whole stack at rest, PSS ({nats.rest.processes} / {kafka.rest.processes} processes)",
            nats.rest.pss,
            kafka.rest.pss,
            mib,
        ),
        *node_rows,
        table_row("whole stack at rest, RSS summed", nats.rest.rss, kafka.rest.rss, mib),
        table_row(
            "whole stack after round 1's loads, PSS",
            by_bus["nats"][0].after_loads.pss,
            by_bus["kafka"][0].after_loads.pss,
            mib,
        ),
        over_rounds(f"{webhook}, p50", lambda r: r.webhook, 50),
        over_rounds(f"{webhook}, p99", lambda r: r.webhook, 99),
        over_rounds(f"{webhook}, max", lambda r: r.webhook, 100),
        over_rounds(f"{signature}, p50", lambda r: r.signature, 50),
        over_rounds(f"{signature}, p99", lambda r: r.signature, 99),
    ]
    answered = {b: statistics.mean(r.answered_per_s for r in rs) for b, rs in by_bus.items()}
    rows.append(
        table_row(
            "webhooks answered at saturation (mean of rounds)",
            answered["nats"],
            answered["kafka"],
            rate,
        )
    )
    print(
        f"\nboth buses, latencies over {len(by_bus['nats'])} rounds each "
        f"({args.requests} webhooks, {args.signatures} signatures a round):"
    )
    print("\n".join(rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bus", choices=[*BUSES, "both"], default="both")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--signatures", type=int, default=100)
    parser.add_argument(
        "--up-only", action="store_true", help="measure the ups (and memory at rest) only"
    )
    args = parser.parse_args()

    buses = BUSES if args.bus == "both" else (args.bus,)
    out = Out(labelled=len(buses) > 1)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    if out.labelled:
        print("load average at the start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if "kafka" in buses:
        jars = default_cache_dir(clean_env())
        print(
            f"kafka jars: {jars} "
            + (
                "cached: no cold up fetches them"
                if cached(jars)
                else "not cached: the first cold up fetches them with mvn, which its time includes"
            )
        )
    starts, rounds = measure(buses, args, out)
    if out.labelled and not args.up_only:
        print("load average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        side_by_side(starts, rounds, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
