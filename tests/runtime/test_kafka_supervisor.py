"""The local supervisor with a Kafka broker: the storage format runs off its loop.

A real broker (its first format is one JVM run, seconds on this machine); skipped, with
the reason, without java/mvn.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kdemo.runtime import kafkabroker
from kdemo.runtime.local.nodes import kafka_of
from kdemo.runtime.local.secrets import load_or_create_secrets
from kdemo.runtime.local.supervisor import Supervisor
from kdemo.runtime.ports import allocate_ports
from kdemo.runtime.stackfile import StackRecord, save_stack
from kdemo.testing.servers import missing_kafka_tools

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(missing_kafka_tools() is not None, reason=missing_kafka_tools() or ""),
    pytest.mark.timeout(300),
]


def test_the_first_format_runs_while_the_supervisor_goes_on(tmp_path: Path) -> None:
    """The loop that starts the broker also starts postgres and restarts whatever exits:
    it must not wait seconds for the storage tool's JVM."""
    kafkabroker.fetch_kafka()  # the jars, as `up` makes sure of before the supervisor runs
    secrets = load_or_create_secrets(tmp_path, env={})
    stack = StackRecord(
        runtime="local",
        ports=allocate_ports(env={}, bus="kafka"),
        kafka_dir=str(tmp_path / "kafka"),
        bus="kafka",
        nodes=("kafka",),
    )
    save_stack(tmp_path, stack)
    supervisor = Supervisor(tmp_path, secrets=secrets)
    broker = supervisor.children["kafka"]
    ticks = 0
    try:
        began = time.monotonic()
        supervisor.start(broker)
        assert time.monotonic() - began < 1.0
        assert (broker.state, broker.proc) == ("preparing", None)
        while broker.state != "running":
            assert time.monotonic() - began < 180, "the broker was never started"
            assert broker.state == "preparing", broker.state  # the format did not fail
            supervisor.tick()
            ticks += 1
            time.sleep(0.05)
        assert ticks > 10  # the loop kept going while the JVM formatted
        assert kafka_of(tmp_path, stack, secrets).formatted()
        assert broker.alive()
    finally:
        try:
            supervisor.shutdown()
        finally:
            if broker.alive() and broker.proc is not None:  # never leave a broker behind
                os.killpg(broker.proc.pid, signal.SIGKILL)
    assert broker.proc is not None
    assert broker.proc.poll() is not None  # stopped with the stack
