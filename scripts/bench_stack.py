"""Benchmarks of the local stack; prints the figures recorded in docs/benchmarks.md.

    uv run python scripts/bench_stack.py [--requests 2000] [--rate 200] [--signatures 100]

Uses its own state directory (a cold `kdemo up` after a purge), talks only to
127.0.0.1, bounds every loop in count and time, and brings the stack down at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from kdemo.flow.payloads import comment_payload
from kdemo.flow.wallet import Wallet
from kdemo.flow.webhook import Delivery, build_delivery
from kdemo.runtime.stackfile import load_stack

ROOT = Path(__file__).resolve().parent.parent


def kdemo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kdemo", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def memory_of_tree(root_pid: int) -> tuple[int, int, int]:
    """(resident bytes, proportional bytes, process count) of `root_pid` and its descendants.

    RSS counts pages shared between processes (PostgreSQL's shared buffers, the same
    libraries) once per process; PSS splits them, so its sum is what the stack costs.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
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
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
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
            # Wait until gateway has the pending intent, so we time the signature alone.
            for _ in range(200):
                if (
                    await client.get(f"{urls['gateway']}/api/bounties/{intent['intent_id']}")
                ).status_code == 200:
                    break
                await asyncio.sleep(0.01)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--signatures", type=int, default=100)
    args = parser.parse_args()

    state_dir = Path(tempfile.mkdtemp(prefix="kdemo-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDEMO_")}
    env["KDEMO_STATE_DIR"] = str(state_dir)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    try:
        started = time.perf_counter()
        kdemo(env, "up")
        cold = time.perf_counter() - started
        kdemo(env, "down")
        started = time.perf_counter()
        kdemo(env, "up")
        warm = time.perf_counter() - started
        print(f"kdemo up, cold (first ever, initdb included): {cold:.2f} s")
        print(f"kdemo up, warm (data kept, after down):       {warm:.2f} s")

        status = json.loads(kdemo(env, "status", "-o", "json").stdout)
        supervisor = json.loads((state_dir / "supervisor.json").read_text())
        rss, pss, procs = memory_of_tree(int(supervisor["supervisor"]["pid"]))
        print(
            f"memory of the whole stack at rest: PSS {pss / 2**20:.0f} MiB "
            f"(RSS summed {rss / 2**20:.0f} MiB) in {procs} processes "
            f"({len(status['services'])} nodes)"
        )

        stack = load_stack(state_dir)
        assert stack is not None, "kdemo up recorded no stack"
        urls = stack.urls
        secret = json.loads((state_dir / "secrets.json").read_text())["webhook_secret"]
        lat = asyncio.run(webhook_load(urls["github-app"], secret, args.requests, args.rate))
        print(
            f"webhook -> signing URL, {args.requests} requests at {args.rate:.0f}/s: "
            f"p50 {percentile(lat, 50) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms, "
            f"max {max(lat) * 1000:.1f} ms"
        )
        started = time.perf_counter()
        saturated = asyncio.run(webhook_load(urls["github-app"], secret, 3000, 5000.0))
        elapsed = time.perf_counter() - started
        print(
            f"webhook throughput at saturation (3000 offered at once): "
            f"{len(saturated) / elapsed:.0f}/s answered (each intent stored; publishing follows)"
        )
        rss, pss, procs = memory_of_tree(int(supervisor["supervisor"]["pid"]))
        print(
            f"memory of the whole stack after the load: PSS {pss / 2**20:.0f} MiB "
            f"(RSS summed {rss / 2**20:.0f} MiB)"
        )

        lat = asyncio.run(signature_to_ledger(urls, secret, args.signatures))
        print(
            f"signature accepted -> visible through gateway, {args.signatures} intents: "
            f"p50 {percentile(lat, 50) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms, "
            f"mean {statistics.mean(lat) * 1000:.1f} ms"
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "kdemo", "down", "--purge"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            check=False,
            timeout=120,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
