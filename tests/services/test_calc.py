"""calc as a real process: `python -m services.calc` on free loopback ports, called over gRPC."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from services.common.grpc_service import MAX_RECEIVE_BYTES, MAX_SUMMARIZE_ITEMS, grpc_channel
from services.gateway.clients import CalcClient
from services.protos import calc_pb2, calc_pb2_grpc

pytestmark = pytest.mark.stack  # the calc service as a process

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 20.0


@dataclass
class Calc:
    process: subprocess.Popen[str]
    grpc_addr: str
    metrics_url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _edge_sample(name: str) -> float:
    """The client-side counter `name` for the gateway -> calc gRPC edge, in this process."""
    labels = {"from": "gateway", "to": "calc", "protocol": "gRPC"}
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _health(addr: str, service: str = "") -> int:
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
        status: int = reply.status
        return status


def _start(**env: str) -> Calc:
    grpc_port, metrics_port = _free_port(), _free_port()
    environment = {
        **os.environ,
        "KDEMO_HOST": "127.0.0.1",
        "KDEMO_GRPC_PORT": str(grpc_port),
        "KDEMO_METRICS_PORT": str(metrics_port),
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.calc"],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    calc = Calc(process, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{metrics_port}")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"calc exited with {process.returncode}:\n{output}")
        try:
            if _health(calc.grpc_addr) == health_pb2.HealthCheckResponse.SERVING:
                return calc
        except grpc.RpcError:
            pass  # not listening yet
        time.sleep(0.1)
    process.kill()
    raise AssertionError("calc did not report SERVING in time")


def _stop(calc: Calc) -> str:
    """SIGTERM the process and return everything it logged."""
    if calc.process.poll() is None:
        calc.process.send_signal(signal.SIGTERM)
    try:
        output, _ = calc.process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        calc.process.kill()
        output, _ = calc.process.communicate()
        raise AssertionError(f"calc did not stop on SIGTERM:\n{output}") from None
    return output


@pytest.fixture(scope="module")
def calc() -> Iterator[Calc]:
    running = _start(KDEMO_CALC_FEE_BPS="250")
    yield running
    _stop(running)


@pytest.mark.parametrize("service", ["", "calc", "kdemo.calc.v1.Calc"])
def test_grpc_health_reports_serving(calc: Calc, service: str) -> None:
    """The standard grpc.health.v1 service reports SERVING: overall, for calc and for Calc."""
    assert _health(calc.grpc_addr, service) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("denomination", "amount", "expected"),
    [
        ("USDC", "50", ("USDC", 6, "50000000", "1250000", "48750000")),
        (
            "dai",
            "1000000000000000000",
            (
                "DAI",
                18,
                "1" + "0" * 36,
                "25" + "0" * 33,
                str(10**36 - 25 * 10**33),
            ),
        ),
    ],
)
async def test_quote(
    calc: Calc, denomination: str, amount: str, expected: tuple[str, int, str, str, str]
) -> None:
    """Quote answers exact base units, fee and payout as decimal strings."""
    async with grpc_channel("gateway", "calc", calc.grpc_addr) as channel:
        reply = await calc_pb2_grpc.CalcStub(channel).Quote(
            calc_pb2.QuoteRequest(denomination=denomination, amount=amount), timeout=5
        )
    assert (reply.denomination, reply.decimals, reply.base_units, reply.fee, reply.payout) == (
        expected
    )
    assert (reply.amount, reply.fee_bps) == (amount, 250)


async def test_summarize(calc: Calc) -> None:
    """Summarize answers one total per denomination, sorted by denomination."""
    items = [("USDC", "50"), ("WBTC", "1"), ("usdc", "25")]
    async with grpc_channel("gateway", "calc", calc.grpc_addr) as channel:
        reply = await calc_pb2_grpc.CalcStub(channel).Summarize(
            calc_pb2.SummarizeRequest(
                items=[calc_pb2.Item(denomination=d, amount=a) for d, a in items]
            ),
            timeout=5,
        )
    got = [
        (t.denomination, t.decimals, t.count, t.amount, t.base_units, t.fee, t.payout)
        for t in reply.totals
    ]
    assert got == [
        ("USDC", 6, 2, "75", "75000000", "1875000", "73125000"),
        ("WBTC", 8, 1, "1", "100000000", "2500000", "97500000"),
    ]


@pytest.mark.parametrize(
    ("rpc", "request_", "message_start"),
    [
        (
            "Quote",
            calc_pb2.QuoteRequest(denomination="FOO", amount="5"),
            "denomination: unknown denomination 'FOO'; supported: DAI",
        ),
        ("Quote", calc_pb2.QuoteRequest(denomination="USDC", amount="1.5"), "amount: '1.5': "),
        ("Quote", calc_pb2.QuoteRequest(denomination="USDC"), "amount: required"),
        (
            "Summarize",
            calc_pb2.SummarizeRequest(items=[calc_pb2.Item(denomination="XX", amount="1")]),
            "items[0].denomination: unknown denomination 'XX'",
        ),
    ],
)
async def test_bad_input_is_invalid_argument(
    calc: Calc, rpc: str, request_: Message, message_start: str
) -> None:
    """Unknown denominations and bad amounts are INVALID_ARGUMENT, the message naming the
    field; the client side counts the call as an error on the gateway -> calc edge."""
    errors_before = _edge_sample("kdemo_edge_errors_total")
    async with grpc_channel("gateway", "calc", calc.grpc_addr) as channel:
        call = getattr(calc_pb2_grpc.CalcStub(channel), rpc)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request_, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(message_start)
    assert _edge_sample("kdemo_edge_errors_total") == errors_before + 1


def _items(count: int) -> calc_pb2.SummarizeRequest:
    return calc_pb2.SummarizeRequest(
        items=[calc_pb2.Item(denomination="USDC", amount="1") for _ in range(count)]
    )


async def test_summarize_takes_at_most_the_item_limit(calc: Calc) -> None:
    """A full batch is summed; one item more is INVALID_ARGUMENT naming the field, the count,
    the limit and the fix."""
    async with grpc_channel("gateway", "calc", calc.grpc_addr) as channel:
        stub = calc_pb2_grpc.CalcStub(channel)
        full = await stub.Summarize(_items(MAX_SUMMARIZE_ITEMS), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Summarize(_items(MAX_SUMMARIZE_ITEMS + 1), timeout=5)

    assert [(t.denomination, t.count) for t in full.totals] == [("USDC", MAX_SUMMARIZE_ITEMS)]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == (
        f"items: {MAX_SUMMARIZE_ITEMS + 1} given, at most {MAX_SUMMARIZE_ITEMS} per call; "
        "split the items into batches and add up their totals"
    )


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        pytest.param(b"\xff\xff\xff\xff", "INVALID_ARGUMENT", "Wire format", id="bad-wire-type"),
        pytest.param(b"\x0a\x05ab", "INVALID_ARGUMENT", "Wire format", id="truncated"),
        pytest.param(b"\x0a\x04\x0a\x02\xff\xfe", "INVALID_ARGUMENT", "UTF-8", id="bad-utf8"),
        pytest.param(
            b"\x0a" * (MAX_RECEIVE_BYTES + 1),
            "RESOURCE_EXHAUSTED",
            "larger than max",
            id="oversized",
        ),
    ],
)
async def test_hostile_bytes_are_refused_and_calc_keeps_serving(
    calc: Calc, raw: bytes, code: str, words: str
) -> None:
    """Bytes that are not a SummarizeRequest, or more than the server reads, are refused with
    the caller's status (never UNKNOWN); the process lives on and answers the next call."""
    async with grpc_channel("gateway", "calc", calc.grpc_addr) as channel:
        summarize = channel.unary_unary(
            "/kdemo.calc.v1.Calc/Summarize",
            request_serializer=None,  # the bytes go out as they are
            response_deserializer=calc_pb2.SummarizeReply.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await summarize(raw, timeout=10)
        after = await calc_pb2_grpc.CalcStub(channel).Quote(
            calc_pb2.QuoteRequest(denomination="USDC", amount="1"), timeout=5
        )

    assert caught.value.code() == getattr(grpc.StatusCode, code)
    assert words in (caught.value.details() or "")
    if code == "INVALID_ARGUMENT":
        assert (caught.value.details() or "").startswith("request: ")
    assert after.base_units == "1000000"
    assert calc.process.poll() is None


async def test_gateway_summarizes_more_than_one_batch(calc: Calc) -> None:
    """gateway's client splits a list longer than calc's limit into batches (three calls here)
    and adds their totals up to what one call would answer."""
    items = [("USDC", 3)] * (2 * MAX_SUMMARIZE_ITEMS + 1) + [("WBTC", 2), ("dai", 5)]
    before = _edge_sample("kdemo_edge_requests_total")
    async with grpc_channel("gateway", "calc", calc.grpc_addr) as channel:
        totals = await CalcClient(channel).summarize(items)

    assert _edge_sample("kdemo_edge_requests_total") == before + 3
    count = 2 * MAX_SUMMARIZE_ITEMS + 1
    usdc = count * 3 * 10**6
    assert totals == [
        {
            "denomination": "DAI",
            "count": 1,
            "amount": "5",
            "base_units": str(5 * 10**18),
            "fee": str(5 * 10**18 * 250 // 10_000),
            "payout": str(5 * 10**18 - 5 * 10**18 * 250 // 10_000),
            "decimals": 18,
        },
        {
            "denomination": "USDC",
            "count": count,
            "amount": str(count * 3),
            "base_units": str(usdc),
            "fee": str(count * (3 * 10**6 * 250 // 10_000)),
            "payout": str(usdc - count * (3 * 10**6 * 250 // 10_000)),
            "decimals": 6,
        },
        {
            "denomination": "WBTC",
            "count": 1,
            "amount": "2",
            "base_units": "200000000",
            "fee": "5000000",
            "payout": "195000000",
            "decimals": 8,
        },
    ]


async def test_client_channel_records_the_edge(calc: Calc) -> None:
    """grpc_channel counts each call on its edge, labelled with the topology's node names."""
    before = _edge_sample("kdemo_edge_requests_total")
    async with grpc_channel("gateway", "calc", calc.grpc_addr) as channel:
        stub = calc_pb2_grpc.CalcStub(channel)
        for _ in range(3):
            await stub.Quote(calc_pb2.QuoteRequest(denomination="ETH", amount="1"), timeout=5)
    assert _edge_sample("kdemo_edge_requests_total") == before + 3


@pytest.mark.parametrize(
    ("path", "status", "body_part"),
    [
        ("/healthz", 200, '"ok"'),
        ("/readyz", 200, '"ready"'),
        ("/metrics", 200, "python_info"),
    ],
)
def test_http_endpoints(calc: Calc, path: str, status: int, body_part: str) -> None:
    """The metrics port serves liveness, readiness and Prometheus metrics."""
    response = httpx.get(calc.metrics_url + path, timeout=5)
    assert response.status_code == status
    assert body_part in response.text


def test_metrics_are_prometheus_text(calc: Calc) -> None:
    """/metrics answers in the Prometheus text exposition format."""
    response = httpx.get(calc.metrics_url + "/metrics", timeout=5)
    assert response.headers["content-type"].startswith("text/plain; version=")


def test_sigterm_stops_cleanly() -> None:
    """SIGTERM drains and stops the process with exit code 0, every log line JSON."""
    running = _start()
    output = _stop(running)
    assert running.process.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    messages = [line["msg"] for line in lines]
    assert "shutting down" in messages
    assert messages[-1] == "stopped"
    assert all(line["service"] == "calc" for line in lines)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("KDEMO_CALC_FEE_BPS", "10001"), ("KDEMO_GRPC_PORT", "http")],
)
def test_bad_configuration_exits_2_naming_the_variable(variable: str, value: str) -> None:
    """A bad environment variable stops calc at once with exit code 2, naming it and the fix."""
    done = subprocess.run(
        [sys.executable, "-m", "services.calc"],
        cwd=REPO,
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    (line,) = [json.loads(text) for text in done.stdout.splitlines() if text.strip()]
    assert line["level"] == "error"
    assert f"{variable}={value!r}" in line["msg"]
    assert "set it to" in line["msg"]
