"""Measure the two Python Kafka clients against a real local broker (docs/kafka.md, "Client").

    PYTHONPATH=/tmp/kbench-venv/lib/python3.11/site-packages \\
        .venv/bin/python scripts/bench_kafka_clients.py

confluent-kafka is a dependency of kdemo; aiokafka is not (it was not chosen), so install it
in a throwaway venv (`uv venv /tmp/kbench-venv && VIRTUAL_ENV=/tmp/kbench-venv uv pip install
aiokafka==0.14.0`) and put that venv's site-packages on PYTHONPATH; without it only
confluent-kafka is measured.

One broker (kdemo.runtime.kafkabroker: KRaft, SCRAM-SHA-512, StandardAuthorizer) is started
in a temporary directory on free loopback ports and stopped at the end. Every client logs in
as the `bench` SCRAM user, which has ACLs of its own (not the super user: the authorizer runs
on every request as it would for a service). Producers are idempotent with acks=all and
linger 5 ms (librdkafka's default; aiokafka's default is 0). For each client:

- produce: 20,000 records of ~1 KB to a 3-partition topic, from the first send until the
  last is acknowledged;
- latency: 200 records/s for 10 s, each stamped with the send time; a consumer in a group
  (manual commit: it commits each record's offset, synchronously, after receiving it, as a
  service would after its database transaction) notes when it received it; p50/p99;
- catch-up: a new group reads the 20,000 records from the beginning (committing each
  batch), first record to last.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import (
    KafkaError,
    KafkaException,
    Message,
    Producer,
)
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from confluent_kafka.aio import AIOConsumer

from kdemo.runtime.kafkabroker import KafkaBroker, fetch_kafka, find_java

PASSWORDS = {"admin": "bench-admin-0123456789", "bench": "bench-user-0123456789"}
PARTITIONS = 3
MESSAGES = 20_000
SIZE = 1024
RATE = 200
LATENCY_SECONDS = 10.0
LINGER_MS = 5


@dataclass
class Result:
    client: str
    produce_per_s: float = 0.0
    produce_mb_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    catchup_per_s: float = 0.0
    import_ms: float = 0.0


# -- the broker ---------------------------------------------------------------------------------


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def start_broker(root: Path) -> tuple[KafkaBroker, subprocess.Popen[bytes]]:
    port, controller = _free_ports(2)
    broker = KafkaBroker(find_java(), fetch_kafka(), root, port, controller, PASSWORDS)
    broker.format_storage()
    with (root / "broker.log").open("ab") as log:
        proc = subprocess.Popen(
            broker.broker_command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
        )
    broker.wait_ready(timeout=120)
    return broker, proc


def stop_broker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def confluent_config(bootstrap: str, user: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": PASSWORDS[user],
    }


def prepare(bootstrap: str, topics: list[str]) -> None:
    """The topics (3 partitions) and the bench user's ACLs, as the admin."""
    admin = AdminClient(confluent_config(bootstrap, "admin"))
    for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics]).values():
        future.result(30)
    allow = AclPermissionType.ALLOW
    lit = ResourcePatternType.LITERAL
    pre = ResourcePatternType.PREFIXED
    acls = [
        AclBinding(ResourceType.TOPIC, "bench.", pre, "User:bench", "*", op, allow)
        for op in (AclOperation.WRITE, AclOperation.READ, AclOperation.DESCRIBE)
    ]
    acls.append(
        AclBinding(ResourceType.GROUP, "bench.", pre, "User:bench", "*", AclOperation.READ, allow)
    )
    acls.append(
        AclBinding(
            ResourceType.BROKER,
            "kafka-cluster",
            lit,
            "User:bench",
            "*",
            AclOperation.IDEMPOTENT_WRITE,
            allow,
        )
    )
    for future in admin.create_acls(acls).values():
        future.result(30)
    # The broker applies ACLs from the metadata log a moment after the controller commits
    # them: wait until the bench user sees every topic, or its first records are refused.
    user = AdminClient(confluent_config(bootstrap, "bench"))
    deadline = time.monotonic() + 30
    while not set(topics) <= set(user.list_topics(timeout=10).topics):
        if time.monotonic() > deadline:
            raise SystemExit("the bench user's ACLs did not take effect within 30 s")
        time.sleep(0.1)


def payload(stamp: float) -> bytes:
    head = f"{stamp:.9f}|".encode()
    return head + b"x" * (SIZE - len(head))


def stamp_of(value: bytes) -> float:
    return float(value.split(b"|", 1)[0])


# -- confluent-kafka ----------------------------------------------------------------------------


class BridgedProducer:
    """librdkafka's Producer from asyncio: produce() only enqueues (never blocks), a thread
    serves the delivery callbacks and resolves asyncio futures. (AIOProducer of
    confluent_kafka.aio refuses headers and holds records up to its buffer_timeout.)"""

    def __init__(self, config: dict[str, Any]) -> None:
        self.loop = asyncio.get_running_loop()
        self.producer = Producer(config)
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.closing.is_set():
            self.producer.poll(0.05)

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.loop.create_future()

        def done(err: KafkaError | None, _msg: Message) -> None:
            self.loop.call_soon_threadsafe(_settle, future, err)

        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=done)
                return future
            except BufferError:  # the local queue is full: let deliveries drain it
                await asyncio.sleep(0.005)

    async def close(self) -> None:
        await asyncio.to_thread(self.producer.flush, 30)
        self.closing.set()
        await asyncio.to_thread(self.thread.join)


def _settle(future: asyncio.Future[None], err: KafkaError | None) -> None:
    if future.done():
        return
    if err is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaException(err))


def confluent_producer_config(bootstrap: str) -> dict[str, Any]:
    return {
        **confluent_config(bootstrap, "bench"),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": LINGER_MS,
    }


def confluent_consumer(bootstrap: str, group: str) -> dict[str, Any]:
    return {
        **confluent_config(bootstrap, "bench"),
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }


async def confluent_produce(bootstrap: str, topic: str) -> float:
    producer = BridgedProducer(confluent_producer_config(bootstrap))
    await (await producer.send(topic, payload(0.0), b"warm-up"))  # connected, producer id
    began = time.perf_counter()
    futures = [
        await producer.send(topic, payload(0.0), str(i % 64).encode()) for i in range(MESSAGES)
    ]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - began
    await producer.close()
    return elapsed


async def confluent_latency(bootstrap: str, topic: str) -> list[float]:
    consumer = AIOConsumer(confluent_consumer(bootstrap, f"{topic}.group"), max_workers=2)
    await consumer.subscribe([topic])
    latencies: list[float] = []
    want = int(RATE * LATENCY_SECONDS)
    ready = asyncio.Event()

    async def consume() -> None:
        while len(latencies) < want:
            msg = await consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            stamp = stamp_of(msg.value())
            if stamp:
                latencies.append(time.perf_counter() - stamp)
            await consumer.commit(message=msg, asynchronous=False)
            ready.set()

    reader = asyncio.create_task(consume())
    producer = BridgedProducer(confluent_producer_config(bootstrap))
    await (await producer.send(topic, payload(0.0), b"warm-up"))
    await asyncio.wait_for(ready.wait(), 60)  # the consumer is assigned and fetching
    await _paced(lambda i: producer.send(topic, payload(time.perf_counter()), str(i).encode()))
    await asyncio.wait_for(reader, 60)
    await producer.close()
    await consumer.close()
    return latencies


async def confluent_catchup(bootstrap: str, topic: str) -> float:
    consumer = AIOConsumer(confluent_consumer(bootstrap, f"{topic}.catchup"), max_workers=2)
    await consumer.subscribe([topic])
    got = 0
    began = 0.0
    while got < MESSAGES:
        batch = await consumer.consume(500, 0.5)
        records = [m for m in batch if not m.error()]
        if records and not began:
            began = time.perf_counter()
        got += len(records)
        if records:
            await consumer.commit(asynchronous=True)
    elapsed = time.perf_counter() - began
    await consumer.close()
    return elapsed


# -- aiokafka -----------------------------------------------------------------------------------


def aiokafka_args(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "bench",
        "sasl_plain_password": PASSWORDS["bench"],
    }


def aiokafka_producer(aiokafka: Any, bootstrap: str) -> Any:
    return aiokafka.AIOKafkaProducer(
        **aiokafka_args(bootstrap), enable_idempotence=True, acks="all", linger_ms=LINGER_MS
    )


async def aiokafka_produce(aiokafka: Any, bootstrap: str, topic: str) -> float:
    producer = aiokafka_producer(aiokafka, bootstrap)
    await producer.start()
    await (await producer.send(topic, payload(0.0), key=b"warm-up"))
    began = time.perf_counter()
    futures = [
        await producer.send(topic, payload(0.0), key=str(i % 64).encode()) for i in range(MESSAGES)
    ]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - began
    await producer.stop()
    return elapsed


async def aiokafka_latency(aiokafka: Any, bootstrap: str, topic: str) -> list[float]:
    consumer = aiokafka.AIOKafkaConsumer(
        topic,
        **aiokafka_args(bootstrap),
        group_id=f"{topic}.group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    latencies: list[float] = []
    want = int(RATE * LATENCY_SECONDS)
    structs = importlib.import_module("aiokafka.structs")
    ready = asyncio.Event()

    async def consume() -> None:
        while len(latencies) < want:
            msg = await consumer.getone()
            stamp = stamp_of(msg.value)
            if stamp:
                latencies.append(time.perf_counter() - stamp)
            tp = structs.TopicPartition(msg.topic, msg.partition)
            await consumer.commit({tp: msg.offset + 1})
            ready.set()

    reader = asyncio.create_task(consume())
    producer = aiokafka_producer(aiokafka, bootstrap)
    await producer.start()
    await (await producer.send(topic, payload(0.0), key=b"warm-up"))
    await asyncio.wait_for(ready.wait(), 60)
    await _paced(lambda i: producer.send(topic, payload(time.perf_counter()), key=str(i).encode()))
    await asyncio.wait_for(reader, 60)
    await producer.stop()
    await consumer.stop()
    return latencies


async def aiokafka_catchup(aiokafka: Any, bootstrap: str, topic: str) -> float:
    consumer = aiokafka.AIOKafkaConsumer(
        topic,
        **aiokafka_args(bootstrap),
        group_id=f"{topic}.catchup",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    await consumer.start()
    got = 0
    began = 0.0
    while got < MESSAGES:
        batches = await consumer.getmany(timeout_ms=500, max_records=500)
        n = sum(len(records) for records in batches.values())
        if n and not began:
            began = time.perf_counter()
        got += n
        if n:
            await consumer.commit()
    elapsed = time.perf_counter() - began
    await consumer.stop()
    return elapsed


# -- the run ------------------------------------------------------------------------------------


async def _paced(send: Callable[[int], Awaitable[Any]]) -> None:
    """Call `send(i)` RATE times a second for LATENCY_SECONDS, on a fixed schedule."""
    start = time.perf_counter()
    futures = []
    for i in range(int(RATE * LATENCY_SECONDS)):
        delay = start + i / RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        futures.append(await send(i))
    await asyncio.gather(*futures)


def import_ms(module: str) -> float:
    """A fresh interpreter's cost of `import module` (ms, best of three)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return min(runs) * 1000


def summarise(client: str, produce_s: float, latencies: list[float], catchup_s: float) -> Result:
    ms = sorted(x * 1000 for x in latencies)
    return Result(
        client=client,
        produce_per_s=MESSAGES / produce_s,
        produce_mb_s=MESSAGES * SIZE / produce_s / 1e6,
        p50_ms=statistics.median(ms),
        p99_ms=ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        max_ms=ms[-1],
        catchup_per_s=MESSAGES / catchup_s,
    )


async def measure(bootstrap: str, aiokafka: Any | None, rounds: int) -> list[Result]:
    results = []
    for n in range(rounds):
        produce = await confluent_produce(bootstrap, f"bench.confluent.{n}")
        latency = await confluent_latency(bootstrap, f"bench.confluent.lat.{n}")
        catchup = await confluent_catchup(bootstrap, f"bench.confluent.{n}")
        result = summarise("confluent-kafka 2.16.1", produce, latency, catchup)
        result.import_ms = import_ms("confluent_kafka")
        results.append(result)
        if aiokafka is not None:
            produce = await aiokafka_produce(aiokafka, bootstrap, f"bench.aiokafka.{n}")
            latency = await aiokafka_latency(aiokafka, bootstrap, f"bench.aiokafka.lat.{n}")
            catchup = await aiokafka_catchup(aiokafka, bootstrap, f"bench.aiokafka.{n}")
            result = summarise(f"aiokafka {aiokafka.__version__}", produce, latency, catchup)
            result.import_ms = import_ms("aiokafka")
            results.append(result)
    return results


def table(results: list[Result]) -> str:
    lines = [
        "| client | produce rec/s | produce MB/s | e2e p50 ms | e2e p99 ms | e2e max ms "
        "| catch-up rec/s | import ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.client} | {r.produce_per_s:,.0f} | {r.produce_mb_s:.1f} | {r.p50_ms:.1f} "
            f"| {r.p99_ms:.1f} | {r.max_ms:.1f} | {r.catchup_per_s:,.0f} | {r.import_ms:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=1, help="repeat every measurement")
    args = parser.parse_args()
    aiokafka: Any | None = None
    with contextlib.suppress(ImportError):
        aiokafka = importlib.import_module("aiokafka")
    if aiokafka is None:
        print("aiokafka is not importable: measuring confluent-kafka only", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="kdemo-kafka-bench-") as tmp:
        began = time.monotonic()
        broker, proc = start_broker(Path(tmp) / "kafka")
        print(
            f"broker ready on {broker.bootstrap} in {time.monotonic() - began:.1f} s",
            file=sys.stderr,
        )
        try:
            topics = []
            for n in range(args.rounds):
                for client in ("confluent", "aiokafka"):
                    topics += [f"bench.{client}.{n}", f"bench.{client}.lat.{n}"]
            prepare(broker.bootstrap, topics)
            results = asyncio.run(measure(broker.bootstrap, aiokafka, args.rounds))
        finally:
            stop_broker(proc)
    print(table(results))


if __name__ == "__main__":
    main()
