"""The shared service lifecycle, seen from outside: listen first, retry the dependency that is
away, say not ready meanwhile, and stop promptly on SIGTERM even while still connecting."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from kdemo.runtime.local.env import service_module
from kdemo.runtime.ports import grpc_services
from tests.conftest import ROOT, Stack

pytestmark = pytest.mark.stack


def _dead_port() -> int:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("name", ["gateway", "identity", "frontend"])
def test_a_service_whose_bus_is_away_answers_alive_but_not_ready(stack: Stack, name: str) -> None:
    env = stack.env_for(name, {"KDEMO_NATS_URL": f"nats://127.0.0.1:{_dead_port()}"})
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("KDEMO_")}
    log_path = stack.workdir / f"{name}-startup-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", service_module(name)],
            env=base_env | env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    port = stack.ports[f"{name}-metrics"] if name in grpc_services() else stack.ports[name]
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while "bus not reachable yet; retrying" not in log_path.read_text(errors="replace"):
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.1)
        assert httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        ready = httpx.get(f"{url}/readyz", timeout=2)
        assert ready.status_code == 503
        if name == "gateway":  # its routes say so in the error shape
            answer = httpx.get(f"{url}/api/bounties", timeout=2)
            assert answer.status_code == 503
            assert answer.json()["error"]["code"] == "starting"
        # Still retrying (waits of up to 10 s), yet SIGTERM stops it at once and cleanly.
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the SIGTERM it handled once it has shut down; serve_grpc returns.
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM), log_path.read_text()[-3000:]
        assert time.monotonic() - started < 8
        assert '"msg": "stopped"' in log_path.read_text(), log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
