"""Signatures at a fixed rate: how long from frontend accepting one to gateway showing it.

    uv run python scripts/bench_signatures.py [--rate 200] [--seconds 10]

The target (docs/performance.md): signature accepted -> visible in gateway, p99 <= 50 ms
at 200 signatures/s. On a stack of its own (a state directory of its own, purged at the
end), the script:

1. makes rate x seconds fresh intents from signed webhooks, then waits until gateway
   holds every one, so that no signature queues behind a `bounty.requested`;
2. fetches each intent's typed data from frontend and signs it with one fresh wallet,
   building every request before the run;
3. subscribes to `kdemo.bounty.recorded.>` as the stack's admin user: gateway publishes
   that event once the signature is committed in its ledger (its outbox relay is woken
   at the commit), so its arrival is when gateway shows the bounty signed, or just after;
4. posts the signatures at the rate, open loop over kept-alive connections, latency
   counted from when each was due (no coordinated omission).

With `--profile DIR`, py-spy records frontend and gateway during the run. Prints due ->
frontend's answer ("accepted"), answer -> bounty.recorded ("visible") and
due -> visible, p50 / p99 / max; CPU ms per signature of frontend, gateway, PostgreSQL
and nats-server; then checks through gateway's API that every bounty is signed.
Talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import nats
from nats.aio.msg import Msg

from kdemo.flow.wallet import Wallet
from kdemo.runtime.stackfile import load_stack
from scripts.bench_stack import comment_delivery, percentile, read_response
from scripts.bench_webhook import (
    Stack,
    add_idle_options,
    cpu_snapshot,
    machine,
    ms,
    start_py_spy,
    summarize_profile,
    wait_idle,
)

CONNECTIONS = 16
SETTLE_S = 3.0
"""After the last answer: the visible events still on their way are waited for this long."""


@dataclass(frozen=True)
class Intent:
    intent_id: str
    token: str


@dataclass
class Timing:
    due: float
    answered: float | None = None
    status: bytes = b""
    visible: float | None = None


async def make_intents(urls: dict[str, str], secret: str, count: int) -> list[Intent]:
    """`count` fresh intents, 16 webhooks in flight; then wait for gateway to hold each."""
    run = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(i: int) -> Intent:
            delivery = comment_delivery(
                secret, f"bench/sig-{run}", i % 500 + 1, "Funding: $USDC:7$", 3 * 10**9 + i
            )
            async with gate:
                answer = await client.post(
                    f"{urls['github-app']}/webhook", content=delivery.body, headers=delivery.headers
                )
            answer.raise_for_status()
            intent = answer.json()["intents"][0]
            token = parse_qs(urlsplit(intent["signing_url"]).query)["t"][0]
            return Intent(intent["intent_id"], token)

        intents = await asyncio.gather(*(one(i) for i in range(count)))
        deadline = time.monotonic() + 300
        for intent in intents:
            url = f"{urls['gateway']}/api/bounties/{intent.intent_id}"
            while (await client.get(url)).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"intent {intent.intent_id} never reached gateway")
                await asyncio.sleep(0.05)
    return list(intents)


async def signed_requests(frontend: str, intents: list[Intent]) -> list[bytes]:
    """One complete `POST /api/signatures` per intent, signed by one fresh wallet."""
    wallet = Wallet.fresh()
    host = urlsplit(frontend).netloc
    requests = []
    async with httpx.AsyncClient(timeout=30) as client:
        for intent in intents:
            doc = await client.get(f"{frontend}/api/intents/{intent.token}")
            doc.raise_for_status()
            body = json.dumps(
                {
                    "token": intent.token,
                    "address": wallet.address,
                    "signature": wallet.sign_typed_data(doc.json()["typed_data"]),
                }
            ).encode()
            head = (
                f"POST /api/signatures HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/json\r\nAccept: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            requests.append(head.encode() + body)
    return requests


async def post_at_rate(
    frontend: str,
    requests: list[bytes],
    intents: list[Intent],
    rate: float,
    nats_url: str,
    admin_password: str,
) -> dict[str, Timing]:
    """The signatures at `rate`/s; each intent's due, answer and visible times."""
    loop = asyncio.get_running_loop()
    timings: dict[str, Timing] = {}
    seen: dict[str, float] = {}
    all_seen = asyncio.Event()

    async def on_recorded(msg: Msg) -> None:
        seen.setdefault(msg.subject.split(".")[3], loop.time())
        if len(seen) >= len(requests):
            all_seen.set()

    nc = await nats.connect(nats_url, user="admin", password=admin_password)
    await nc.subscribe("kdemo.bounty.recorded.>", cb=on_recorded)
    await nc.flush()
    parts = urlsplit(frontend)
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(await asyncio.open_connection(parts.hostname, parts.port))

    async def one(request: bytes, timing: Timing) -> None:
        reader, writer = await pool.get()
        writer.write(request)
        timing.status = await read_response(reader)
        timing.answered = loop.time()
        pool.put_nowait((reader, writer))

    tasks = []
    start = loop.time() + 0.1
    for i, (request, intent) in enumerate(zip(requests, intents, strict=True)):
        timing = timings[intent.intent_id] = Timing(due=start + i / rate)
        delay = timing.due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, timing)))
    await asyncio.gather(*tasks)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_seen.wait(), SETTLE_S)
    await nc.drain()
    while not pool.empty():
        pool.get_nowait()[1].close()
    for intent_id, timing in timings.items():
        timing.visible = seen.get(intent_id)
    return timings


async def all_signed(gateway: str, intents: list[Intent]) -> int:
    """How many of `intents` gateway's API shows as signed."""
    async with httpx.AsyncClient(timeout=30) as client:
        signed = 0
        for intent in intents:
            answer = await client.get(f"{gateway}/api/bounties/{intent.intent_id}")
            signed += answer.status_code == 200 and answer.json()["bounty"]["state"] == "signed"
    return signed


def line(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: none"
    return (
        f"{label}: p50 {ms(statistics.median(values))}, "
        f"p99 {ms(percentile(values, 99))}, max {ms(max(values))}"
    )


def run(args: argparse.Namespace) -> None:
    if args.wait_idle:
        wait_idle(args.wait_idle, args.idle_load)
    print(f"machine: {machine()}", flush=True)
    stack = Stack()
    try:
        stack.up()
        record = load_stack(stack.state_dir)
        assert record is not None, "kdemo up recorded no stack"
        urls = record.urls
        secrets = json.loads((stack.state_dir / "secrets.json").read_text())
        nats_url = f"nats://127.0.0.1:{record.ports['nats']}"
        count = round(args.rate * args.seconds)
        intents = asyncio.run(make_intents(urls, secrets["webhook_secret"], count))
        requests = asyncio.run(signed_requests(urls["frontend"], intents))
        pids = stack.pids("frontend", "gateway", "postgres", "nats")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{count} intents in gateway, signed; load average {load}", flush=True)
        spies = []
        if args.profile is not None:
            profiled = {name: pids[name] for name in ("frontend", "gateway")}
            spies = start_py_spy(profiled, args.seconds, args.profile)
        before = cpu_snapshot(pids)
        timings = asyncio.run(
            post_at_rate(
                urls["frontend"],
                requests,
                intents,
                args.rate,
                nats_url,
                secrets["nats_passwords"]["admin"],
            )
        )
        after = cpu_snapshot(pids)
        ok = [t for t in timings.values() if t.status.startswith(b"HTTP/1.1 20")]
        answered = [t.answered - t.due for t in ok if t.answered is not None]
        visible = [t.visible - t.answered for t in ok if t.visible and t.answered]
        due_to_visible = [t.visible - t.due for t in ok if t.visible]
        print(
            f"{count} signatures at {args.rate:.0f}/s: {len(ok)} accepted, "
            f"{len(timings) - len(ok)} refused, {len(visible)} seen as bounty.recorded",
            flush=True,
        )
        print("  " + line("due -> frontend's answer (accepted)", answered))
        print("  " + line("accepted -> bounty.recorded (visible through gateway)", visible))
        print("  " + line("due -> visible", due_to_visible))
        per = ", ".join(
            f"{name} {1000 * (after[name] - before[name]) / max(1, len(ok)):.2f}" for name in pids
        )
        print(f"  CPU ms per signature: {per}", flush=True)
        signed = asyncio.run(all_signed(urls["gateway"], intents))
        print(f"  gateway shows {signed} of {count} bounties signed", flush=True)
        for spy in spies:
            spy.wait(timeout=args.seconds + 30)
        if args.profile is not None:
            for name in ("frontend", "gateway"):
                folded = args.profile / f"{name}.folded"
                print(f"py-spy profile of {name}: {folded}")
                print("\n".join(summarize_profile(folded, top=15)), flush=True)
    finally:
        stack.purge()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="signatures per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    add_idle_options(parser)
    parser.add_argument(
        "--profile", type=Path, default=None, help="record frontend and gateway into DIR"
    )
    run(parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
