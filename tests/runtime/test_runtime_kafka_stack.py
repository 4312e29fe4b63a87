"""`kdemo up --bus kafka`: the whole local stack on a real Kafka broker, through the CLI.

One stack for the module, in a temporary state directory, brought up and down by `kdemo`
as a subprocess (as a user runs it). Skipped, with the reason, without Java or Maven; the
jars come from the real cache (~/.cache/kdemo), so only the first run on a machine fetches.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdemo.runtime.base import TapEvent
from kdemo.runtime.local import LocalRuntime
from kdemo.runtime.stackfile import load_stack
from kdemo.testing.servers import missing_kafka_tools

UP_TIMEOUT_S = 400.0
"""The first `up` on a machine fetches the jars (about 40 s); the broker takes 15-25 s."""


pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(missing_kafka_tools() is not None, reason=missing_kafka_tools() or ""),
    pytest.mark.timeout(900),
]


def kdemo(state_dir: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KDEMO_STATE_DIR": str(state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "kdemo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"{done.args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("kafka-state")
    try:
        _ok(kdemo(state, "up", "--bus", "kafka", timeout=UP_TIMEOUT_S))
        yield state
    finally:
        kdemo(state, "down", timeout=120)
        left = LocalRuntime(state).owned_processes()
        kdemo(state, "down", "--purge", timeout=120)
        assert left == [], f"processes left after down: {left}"


def _status(state_dir: Path) -> dict[str, object]:
    data = json.loads(_ok(kdemo(state_dir, "status", "--output", "json")).stdout)
    assert isinstance(data, dict)
    return data


def test_the_stack_runs_kafka_instead_of_nats_and_records_it(state_dir: Path) -> None:
    status = _status(state_dir)
    assert status["bus"] == "kafka"
    assert status["dlq"] == 0  # kafkaadmin answered as the admin
    rows = {row["name"]: row for row in status["services"]}  # type: ignore[attr-defined]
    assert "nats" not in rows
    assert rows["kafka"]["kind"] == "bus"
    assert rows["kafka"]["state"] == "ready"
    assert all(row["state"] == "ready" for row in rows.values()), rows
    stack = load_stack(state_dir)
    assert stack is not None
    assert stack.bus == "kafka"
    assert stack.kafka_dir is not None
    assert (Path(stack.kafka_dir) / "data" / "meta.properties").exists()
    assert {"kafka", "kafka-controller"} <= set(stack.ports)
    text = _ok(kdemo(state_dir, "status")).stdout
    assert "on kafka" in text
    # the broker's log is the node's log
    log = _ok(kdemo(state_dir, "logs", "kafka", "--lines", "100000")).stdout
    assert "Kafka Server started" in log


def test_up_on_the_other_bus_is_refused_and_changes_nothing(state_dir: Path) -> None:
    refused = kdemo(state_dir, "up", "--bus", "nats")
    assert refused.returncode == 2, refused.stderr
    said = " ".join(refused.stderr.split())
    assert "runs on kafka, not nats" in said
    assert "kdemo down" in said
    stack = load_stack(state_dir)
    assert stack is not None
    assert stack.bus == "kafka"
    # `up` without --bus, or with the stack's own, is the usual no-op
    _ok(kdemo(state_dir, "up", "--bus", "kafka"))
    _ok(kdemo(state_dir, "up"))


def test_smoke_passes_on_kafka_and_the_tap_sees_its_events(state_dir: Path) -> None:
    done = _ok(kdemo(state_dir, "smoke", timeout=300))
    assert "smoke passed" in done.stdout + done.stderr
    _ok(kdemo(state_dir, "dlq", "list"))

    async def read_all() -> list[TapEvent]:
        seen: list[TapEvent] = []
        async for event in LocalRuntime(state_dir).bus_tap(deliver_all=True):
            seen.append(event)
            if event.pending == 0:
                break
        return seen

    seen = asyncio.run(asyncio.wait_for(read_all(), timeout=60))
    subjects = {e.subject for e in seen}
    assert "kdemo.bounty.requested" in subjects, subjects
    assert "kdemo.bounty.recorded" in subjects, subjects


def test_down_and_up_again_keep_the_bus_and_its_data(state_dir: Path) -> None:
    stack = load_stack(state_dir)
    assert stack is not None
    assert stack.kafka_dir is not None
    cluster_id = (Path(stack.kafka_dir) / "cluster.id").read_text()
    ports = stack.ports
    _ok(kdemo(state_dir, "down"))
    assert LocalRuntime(state_dir).owned_processes() == []
    assert (Path(stack.kafka_dir) / "data" / "meta.properties").exists()  # data kept
    _ok(kdemo(state_dir, "up", timeout=UP_TIMEOUT_S))  # no --bus: the recorded one
    again = load_stack(state_dir)
    assert again is not None
    assert again.bus == "kafka"
    assert again.ports == ports
    assert (Path(stack.kafka_dir) / "cluster.id").read_text() == cluster_id
    log = (state_dir / "logs" / "supervisor.log").read_text().splitlines()
    provisioned = [json.loads(line) for line in log if '"kafka provisioned"' in line]
    assert len(provisioned) == 2
    assert provisioned[-1]["topics_created"] == []  # the topics were kept with the data
    assert provisioned[-1]["acls_created"] == 0
    assert _status(state_dir)["bus"] == "kafka"
