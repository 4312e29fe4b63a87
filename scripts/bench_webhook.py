"""The webhook path side by side with Probot, and the CLI's start against kubectl's.

    uv run python scripts/bench_webhook.py [--duration 8] [--rates 200,500]
        [--rate-seconds 10] [--cli-runs 10] [--profile DIR] [--profile-seconds 15]
        [--payloads both|examples|own] [--wait-idle MINUTES] [--idle-load 1.5]

Brings up a kdemo stack of its own (its own KDEMO_STATE_DIR, `kdemo up`, and
`kdemo down --purge` at the end), installs Probot 14.3.2 and @octokit/webhooks-examples
into a cache (~/.cache/kdemo/bench/probot, `npm install --prefix`; fetched once, then
nothing is downloaded) and runs a minimal Probot app (scripts/bench/probot_app.mjs) that
verifies and parses issue_comment deliveries with the same webhook secret. Both get the
same signed requests: issue_comment `created` payloads from @octokit/webhooks-examples
and from kdemo's own builder (kdemo.flow.payloads), each with a fresh delivery id, comment
id, issue number and a `$USDC:5$` in its body, so every one of them is a new intent in
kdemo (intent and outbox row committed before the 200).

Two generators, both fed requests built and signed beforehand:

- saturation: wrk (one thread, 16 connections, scripts/bench/rotate.lua): C, and it
  spends a few percent of a core at Probot's rates, so on two cores the servers are what
  is measured. Closed loop: its latencies are those of a saturated server.
- fixed rates: an open-loop asyncio generator in a process of its own (this script with
  `open-loop`); latency counts from the moment a request was due, so a request that
  waited for a connection is not flattered.

Printed: throughput at saturation of each and the ratio kdemo/Probot; p50/p99/max at each
fixed rate; CPU ms per webhook of github-app, PostgreSQL (all its processes), gateway and
Probot, from /proc/<pid>/stat deltas over each run (plus a settle time, so the relay's
publishing and gateway's storing are counted); the load generator's own CPU; and the wall
time of `kdemo --help` and `kdemo status` against `kubectl --help` (median of N runs).
`--profile DIR` then records github-app and gateway with py-spy (installed with uv into a
cache venv, ~/.cache/kdemo/bench/py-spy) under wrk's load and prints the top frames of each.

Talks only to 127.0.0.1, bounds every run in time and count, and leaves nothing running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdemo.flow.payloads import comment_payload
from kdemo.flow.webhook import build_delivery
from kdemo.runtime.stackfile import load_stack
from kdemo.runtime.statedir import user_cache_dir
from scripts.bench_stack import children_of, read_response

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent / "bench"
CACHE = user_cache_dir() / "bench"
PROBOT_VERSION = "14.3.2"
NPM_PACKAGES = (f"probot@{PROBOT_VERSION}", "@octokit/webhooks-examples")
CONNECTIONS = 16
TICK = os.sysconf("SC_CLK_TCK")
BODY = " Funding: $USDC:5$"


# -- the machine -------------------------------------------------------------------------


def machine() -> str:
    """nproc, CPU model, memory and load average, on one line."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    return f"{os.cpu_count()} cores, {model}, {mem_kib / 2**20:.1f} GiB, load average {load}"


def other_benchmarks() -> list[str]:
    """Command lines of other benchmarks or Kafka brokers running now (they skew every figure)."""
    found = []
    for pattern in ("bench_stack.py", "java.*kafka", "pytest"):
        done = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True)
        found += [line[:120] for line in done.stdout.splitlines() if str(os.getpid()) not in line]
    return found


def add_idle_options(parser: argparse.ArgumentParser) -> None:
    """`--wait-idle MINUTES` and `--idle-load LOAD`, for `wait_idle`."""
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        help="first wait up to this many minutes for other benchmarks to end and the load to drop",
    )
    parser.add_argument("--idle-load", type=float, default=1.5, help="see --wait-idle")


def wait_idle(minutes: float, load: float) -> None:
    """Wait (at most `minutes`) until no other benchmark runs and the 1-min load is below `load`."""
    deadline = time.monotonic() + 60 * minutes
    while time.monotonic() < deadline:
        if not other_benchmarks() and os.getloadavg()[0] < load:
            return
        time.sleep(10)
    print(f"still busy after {minutes:.0f} min; measuring anyway", flush=True)


# -- Probot ------------------------------------------------------------------------------


def install_probot(prefix: Path) -> None:
    """Probot and the webhook examples in `prefix` (npm install, once; later runs use it)."""
    installed = prefix / "node_modules" / "probot" / "package.json"
    examples = prefix / "node_modules" / "@octokit" / "webhooks-examples" / "package.json"
    if (
        installed.is_file()
        and examples.is_file()
        and json.loads(installed.read_text())["version"] == PROBOT_VERSION
    ):
        return
    prefix.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", *NPM_PACKAGES],
        check=True,
        timeout=600,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def probot_server(prefix: Path, secret: str) -> Iterator[tuple[str, int]]:
    """The minimal Probot app on 127.0.0.1: (its URL, its pid); stopped on the way out."""
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(BENCH / "probot_app.mjs"), str(prefix), str(port)],
        env=os.environ | {"BENCH_WEBHOOK_SECRET": secret, "NODE_ENV": "production"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"the Probot app did not start (it printed {line!r})")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the deliveries ----------------------------------------------------------------------


def templates(prefix: Path, which: str = "both") -> list[dict[str, Any]]:
    """issue_comment `created` payloads: @octokit/webhooks-examples' (`examples`), kdemo's
    builder's (`own`) or `both`."""
    index = prefix / "node_modules" / "@octokit" / "webhooks-examples" / "api.github.com"
    events = json.loads((index / "index.json").read_text())
    examples = next(e for e in events if e["name"] == "issue_comment")["examples"]
    created = [e for e in examples if e.get("action") == "created"]
    own = comment_payload("Happy to fund this:", repo="bench/kdemo", number=1, login="bench")
    return {"examples": created, "own": [own]}.get(which, [*created, own])


def vary(template: dict[str, Any], run: str, i: int) -> dict[str, Any]:
    """A copy of `template` that kdemo records as a new intent: own repo, issue and comment."""
    payload: dict[str, Any] = json.loads(json.dumps(template))
    repo = f"bench{run}/load"
    comment_id = 10**9 + i
    payload["repository"]["full_name"] = repo
    payload["repository"]["name"] = "load"
    payload["issue"]["number"] = i % 5000 + 1
    payload["comment"]["id"] = comment_id
    payload["comment"]["body"] = (payload["comment"]["body"] or "") + BODY
    payload["comment"]["html_url"] = (
        f"https://github.com/{repo}/issues/{i % 5000 + 1}#issuecomment-{comment_id}"
    )
    return payload


def raw_request(payload: dict[str, Any], secret: str) -> bytes:
    """A complete signed HTTP/1.1 POST /webhook, as GitHub would send it."""
    delivery = build_delivery(payload, secret)
    headers = delivery.headers | {
        "Host": "127.0.0.1",
        "Content-Length": str(len(delivery.body)),
    }
    head = "POST /webhook HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + delivery.body


@dataclass
class Requests:
    """Signed requests in a file (length line, then bytes), for wrk and the open loop."""

    path: Path
    count: int
    mean_bytes: float


def write_requests(
    path: Path, shapes: list[dict[str, Any]], secret: str, first: int, count: int
) -> Requests:
    """`count` requests numbered from `first`, the shapes in turn, each a new intent."""
    run = uuid.uuid4().hex[:8]
    total = 0
    with path.open("wb") as out:
        for i in range(first, first + count):
            request = raw_request(vary(shapes[i % len(shapes)], run, i), secret)
            out.write(f"{len(request)}\n".encode() + request)
            total += len(request)
    return Requests(path, count, total / count)


def read_requests(path: Path) -> list[bytes]:
    requests = []
    with path.open("rb") as source:
        while line := source.readline():
            requests.append(source.read(int(line)))
    return requests


# -- CPU from /proc ----------------------------------------------------------------------


def cpu_seconds(root: int, tree: dict[int, list[int]]) -> float:
    """CPU time of `root` and its descendants, reaped children included (utime..cstime)."""
    total = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])
        todo.extend(tree.get(pid, []))
    return total / TICK


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    tree = children_of()
    return {name: cpu_seconds(pid, tree) for name, pid in pids.items()}


# -- the generators ----------------------------------------------------------------------


@dataclass
class Result:
    """One load run against one server."""

    answered: int
    seconds: float
    non200: int
    p50: float
    p99: float
    max: float
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds over the run and the settle time, per process tree."""
    generator_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(run: Callable[[], Result], pids: dict[str, int], settle: float) -> Result:
    """`run()`, with the CPU of `pids` and of the generator over it (and `settle` s after)."""
    before, gen_before = cpu_snapshot(pids), children_cpu()
    result = run()
    time.sleep(settle)
    after, gen_after = cpu_snapshot(pids), children_cpu()
    result.cpu = {name: after[name] - before[name] for name in pids}
    result.generator_cpu = gen_after - gen_before
    return result


def wrk(url: str, requests: Requests, seconds: float) -> Result:
    """wrk at saturation: one thread, CONNECTIONS connections, the requests in turn."""
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds:.0f}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "rotate.lua"),
            url,
            "--",
            str(requests.path),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK_JSON "))
    data = json.loads(line.removeprefix("WRK_JSON "))
    if data["sent"] > requests.count:
        print(f"  note: wrk sent {data['sent']} of {requests.count} requests: some repeated")
    return Result(
        answered=data["requests"] - data["non200"],
        seconds=data["duration_us"] / 1e6,
        non200=data["non200"] + data["errors"],
        p50=data["p50_us"] / 1e6,
        p99=data["p99_us"] / 1e6,
        max=data["max_us"] / 1e6,
    )


def open_loop(url: str, requests: Requests, rate: float, count: int) -> Result:
    """`count` requests at `rate`/s from a process of its own (this script's `open-loop`)."""
    done = subprocess.run(
        [sys.executable, __file__, "open-loop", url, str(requests.path), str(rate), str(count)],
        capture_output=True,
        text=True,
        timeout=count / rate + 120,
        check=True,
        cwd=ROOT,
    )
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Result(**data)


async def drive_open_loop(url: str, path: Path, rate: float, count: int) -> dict[str, Any]:
    """Send `count` requests at `rate`/s over kept-alive connections; latency from each due time."""
    host, port = url.removeprefix("http://").split(":")
    requests = read_requests(path)[:count]
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(CONNECTIONS * 4):
        pool.put_nowait(await asyncio.open_connection(host, int(port)))
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: Counter[bytes] = Counter()

    async def one(request: bytes, due: float) -> None:
        reader, writer = await pool.get()
        writer.write(request)
        status = await read_response(reader)
        latencies.append(loop.time() - due)
        statuses[status.split(b" ")[1] if b" " in status else b"?"] += 1
        pool.put_nowait((reader, writer))

    start = loop.time() + 0.2
    tasks = []
    for i, request in enumerate(requests):
        due = start + i / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    seconds = loop.time() - start
    while not pool.empty():
        pool.get_nowait()[1].close()
    ordered = sorted(latencies)
    return {
        "answered": statuses[b"200"],
        "seconds": seconds,
        "non200": len(latencies) - statuses[b"200"],
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)],
        "max": ordered[-1],
    }


# -- the kdemo stack ---------------------------------------------------------------------


@dataclass
class Stack:
    """A kdemo stack in a state directory of its own."""

    state_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kdemo-bw-")))

    @property
    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("KDEMO_")}
        return clean | {"KDEMO_STATE_DIR": str(self.state_dir)}

    def kdemo(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kdemo", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def up(self) -> None:
        done = self.kdemo("up")
        if done.returncode != 0:
            raise RuntimeError(f"kdemo up exited {done.returncode}:\n{done.stdout}{done.stderr}")

    def purge(self) -> None:
        self.kdemo("down", "--purge", timeout=120)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def endpoints(self) -> tuple[str, str]:
        """github-app's URL and the webhook secret."""
        stack = load_stack(self.state_dir)
        assert stack is not None, "kdemo up recorded no stack"
        secrets = json.loads((self.state_dir / "secrets.json").read_text())
        return stack.urls["github-app"], str(secrets["webhook_secret"])

    def pids(self, *names: str) -> dict[str, int]:
        nodes = json.loads((self.state_dir / "supervisor.json").read_text())["nodes"]
        return {name: int(nodes[name]["pid"]) for name in names}


# -- the CLI's start ---------------------------------------------------------------------


def median_wall(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, check=False, timeout=60)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cli_times(stack: Stack, runs: int) -> dict[str, float]:
    """Median wall time of each command, the three interleaved run by run."""
    kdemo = str(Path(sys.executable).parent / "kdemo")
    commands = {
        "kubectl --help": ["kubectl", "--help"],
        "kdemo --help": [kdemo, "--help"],
        "kdemo status": [kdemo, "status"],
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(median_wall(argv, stack.env, 1))
    return {name: statistics.median(values) for name, values in samples.items()}


# -- the profile -------------------------------------------------------------------------


def py_spy() -> Path:
    """py-spy in a venv of its own under the cache (uv; never in the project's venv)."""
    venv = CACHE / "py-spy"
    binary = venv / "bin" / "py-spy"
    if not binary.exists():
        subprocess.run(["uv", "venv", "--quiet", str(venv)], check=True, timeout=120)
        subprocess.run(
            ["uv", "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "py-spy"],
            check=True,
            timeout=300,
        )
    return binary


def start_py_spy(pids: dict[str, int], seconds: float, out: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy recording each named process for `seconds`, into `out`/<name>.folded."""
    out.mkdir(parents=True, exist_ok=True)
    spy = str(py_spy())
    return [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                f"{seconds:.0f}",
                "--rate",
                "250",
                "--nonblocking",
                "--nolineno",
                "--format",
                "raw",
                "--output",
                str(out / f"{name}.folded"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


def profile(
    pids: dict[str, int], url: str, requests: Requests, seconds: float, out: Path
) -> dict[str, Path]:
    """py-spy records of each named process (collapsed stacks) while wrk saturates `url`."""
    spies = start_py_spy(pids, seconds, out)
    try:
        time.sleep(1)
        wrk(url, requests, seconds - 2)
        for spy in spies:
            spy.wait(timeout=seconds + 30)
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.kill()
                spy.wait()
    return {name: out / f"{name}.folded" for name in pids}


def package_of(frame: str) -> str:
    """`psycopg` for `f (psycopg/cursor.py)`; `services/github_app` for kdemo's own."""
    path = frame.rpartition(" (")[2].rstrip(")")
    parts = path.split("/")
    if parts[0] == "services" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else path


def summarize_profile(folded: Path, top: int = 25) -> list[str]:
    """The frames with the most samples at the top (self) and anywhere (total), in %;
    and self time summed by package."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    samples = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        samples += count
        own[frames[-1]] += count
        packages[package_of(frames[-1])] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples on CPU; self time by package:"]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in packages.most_common(15)]
    lines.append("self time by frame:")
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("total (the frame or anything it called):")
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in total.most_common(top * 2)]
    return lines


# -- what is printed ---------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def cpu_line(result: Result) -> str:
    per = ", ".join(
        f"{name} {1000 * cpu / result.answered:.2f}" for name, cpu in result.cpu.items()
    )
    gen = 100 * result.generator_cpu / result.seconds if result.seconds else 0.0
    return f"CPU ms per webhook: {per}; the generator used {gen:.0f}% of a core"


def show(label: str, result: Result) -> None:
    print(
        f"{label}: {result.answered} answered 200 in {result.seconds:.1f} s = "
        f"{result.rate:.0f}/s, non-200 or errors {result.non200}; "
        f"p50 {ms(result.p50)}, p99 {ms(result.p99)}, max {ms(result.max)}  "
        f"(load {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    print(f"  {cpu_line(result)}", flush=True)


# -- the run -----------------------------------------------------------------------------


@dataclass
class Servers:
    kdemo_url: str
    probot_url: str
    kdemo_pids: dict[str, int]
    probot_pids: dict[str, int]


def saturation(servers: Servers, requests: Requests, seconds: float) -> tuple[Result, Result]:
    """wrk at each, Probot first; the ratio of their answered rates is printed."""
    probot = measured(lambda: wrk(servers.probot_url, requests, seconds), servers.probot_pids, 1)
    show(f"Probot at saturation (wrk, {CONNECTIONS} connections, {seconds:.0f} s)", probot)
    kdemo = measured(lambda: wrk(servers.kdemo_url, requests, seconds), servers.kdemo_pids, 3)
    show(f"kdemo at saturation (wrk, {CONNECTIONS} connections, {seconds:.0f} s)", kdemo)
    print(f"  ratio kdemo/Probot at saturation: {kdemo.rate / probot.rate:.2f}x", flush=True)
    return probot, kdemo


def fixed_rate(
    servers: Servers, requests: Requests, rate: float, count: int
) -> tuple[Result, Result]:
    probot = measured(
        lambda: open_loop(servers.probot_url, requests, rate, count), servers.probot_pids, 1
    )
    show(f"Probot, {count} at {rate:.0f}/s open loop", probot)
    kdemo = measured(
        lambda: open_loop(servers.kdemo_url, requests, rate, count), servers.kdemo_pids, 3
    )
    show(f"kdemo, {count} at {rate:.0f}/s open loop (webhook -> signing URL)", kdemo)
    return probot, kdemo


def warm_up(servers: Servers, requests: Requests) -> None:
    """A few hundred requests to each, so neither pays its first-request costs in a figure."""
    for url in (servers.probot_url, servers.kdemo_url):
        open_loop(url, requests, 200.0, min(requests.count, 300))


def run(args: argparse.Namespace) -> None:
    if args.wait_idle:
        wait_idle(args.wait_idle, args.idle_load)
    print(f"machine: {machine()}", flush=True)
    busy = other_benchmarks()
    if busy:
        print("WARNING: other work is running, the figures will be skewed:\n  " + "\n  ".join(busy))
    prefix = CACHE / "probot"
    install_probot(prefix)
    shapes = templates(prefix, args.payloads)
    stack = Stack()
    work = Path(tempfile.mkdtemp(prefix="kdemo-bw-requests-"))
    try:
        started = time.perf_counter()
        stack.up()
        print(f"kdemo up: {time.perf_counter() - started:.2f} s", flush=True)
        kdemo_url, secret = stack.endpoints()
        times = cli_times(stack, args.cli_runs)
        base = times["kubectl --help"]
        for name, wall in times.items():
            print(
                f"{name}: median of {args.cli_runs} {ms(wall)} ({wall / base:.2f}x kubectl --help)"
            )
        first = 0

        def batch(name: str, count: int) -> Requests:
            nonlocal first
            made = write_requests(work / f"{name}.req", shapes, secret, first, count)
            first += count
            return made

        sizes = sorted({len(raw_request(vary(s, "x", 0), secret)) for s in shapes})
        print(f"payload shapes: {len(shapes)}, request sizes {sizes} bytes", flush=True)
        with probot_server(prefix, secret) as (probot_url, probot_pid):
            servers = Servers(
                kdemo_url,
                probot_url,
                stack.pids("github-app", "postgres", "gateway"),
                {"probot": probot_pid},
            )
            warm_up(servers, batch("warm", 300))
            print(f"load average before the loads: {os.getloadavg()[0]:.2f}", flush=True)
            saturated = batch("saturation", args.saturation_requests)
            saturation(servers, saturated, args.duration)
            for rate in args.rates:
                count = int(rate * args.rate_seconds)
                fixed_rate(servers, batch(f"rate-{rate:.0f}", count), rate, count)
            print(f"load average after the loads: {os.getloadavg()[0]:.2f}", flush=True)
            if args.profile is not None:
                profiled = ("github-app", "gateway")
                records = profile(
                    {name: servers.kdemo_pids[name] for name in profiled},
                    kdemo_url,
                    batch("profile", args.saturation_requests),
                    args.profile_seconds,
                    args.profile,
                )
                for name, folded in records.items():
                    print(f"py-spy profile of {name} under wrk: {folded}")
                    print("\n".join(summarize_profile(folded)))
    finally:
        stack.purge()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "open-loop":
        url, path, rate, count = sys.argv[2:6]
        result = asyncio.run(drive_open_loop(url, Path(path), float(rate), int(count)))
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of wrk per server")
    parser.add_argument(
        "--saturation-requests",
        type=int,
        default=12000,
        help="distinct signed requests for wrk (kdemo must not get one twice)",
    )
    parser.add_argument(
        "--rates",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[200.0, 500.0],
        help="fixed rates, requests/s, comma-separated",
    )
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--cli-runs", type=int, default=10)
    parser.add_argument(
        "--payloads",
        choices=["both", "examples", "own"],
        default="both",
        help="@octokit/webhooks-examples' issue_comment payloads, kdemo's builder's, or both",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="record github-app and gateway into DIR"
    )
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    add_idle_options(parser)
    run(parser.parse_args())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
