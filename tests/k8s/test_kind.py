"""On a real kind cluster (skipped where docker or kind is missing): up, status, smoke.

The kind workflow (.github/workflows/kind.yml) runs these on a hosted runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kdemo import topology
from kdemo.runtime.kube import KindRuntime

pytest_plugins = ["kdemo.testing"]
pytestmark = [pytest.mark.kind, pytest.mark.timeout(1800)]


def _kdemo(runtime: KindRuntime, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KDEMO_STATE_DIR": str(runtime.state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "kdemo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_status_lists_every_node_ready(kind_stack: KindRuntime) -> None:
    """`kdemo status -o json` shows every node of the topology ready, with its pods."""
    done = _kdemo(kind_stack, "status", "-o", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["runtime"] == "kind"
    rows = {r["name"]: r for r in report["services"]}
    assert set(rows) == {n.name for n in topology.runtime_nodes()}
    assert all(r["ready"] and r["pods"] for r in rows.values()), rows


def test_smoke_passes(kind_stack: KindRuntime) -> None:
    """`kdemo smoke` runs the whole flow against the cluster."""
    done = _kdemo(kind_stack, "smoke")
    assert done.returncode == 0, done.stdout + done.stderr


def test_second_up_keeps_the_secret(kind_stack: KindRuntime) -> None:
    """A second `up` changes nothing: the cluster's Secret (and so the webhook secret) stays."""
    before = kind_stack.webhook_secret()
    done = _kdemo(kind_stack, "up", "--runtime", "kind")
    assert done.returncode == 0, done.stderr
    assert kind_stack.webhook_secret() == before


def test_scrape_through_port_forward(kind_stack: KindRuntime) -> None:
    """A service's metrics come back through a port-forward to its pod."""
    assert "kdemo_edge_requests_total" in kind_stack.scrape("gateway")
