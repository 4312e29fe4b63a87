"""`kdemo chaos` on the kind stack: the same faults through the Runtime interface (pods
deleted, containers frozen by containerd), the same audit."""

from __future__ import annotations

import json

import pytest

from kdemo.chaos.faults import plan_faults
from kdemo.testing import KindStack
from tests.kind.conftest import nodes, status, wait_for

pytestmark = [pytest.mark.kind, pytest.mark.timeout(900)]

# Seed 1188 plans: stop gateway (frozen past the ack wait), a clean restart of nats, kill
# github-app: all three kinds while the load (80 s at 0.5 flows/s) still runs.
SEED, FLOWS, RATE = 1188, 40, 0.5


def test_chaos_on_kind_loses_and_doubles_nothing(kind_stack: KindStack) -> None:
    planned = [(p.fault, p.node) for p in plan_faults(SEED, ("kill", "stop", "restart"), every_s=1)]
    assert planned[:3] == [("stop", "gateway"), ("restart", "nats"), ("kill", "github-app")]
    done = kind_stack.kdemo(
        "chaos", "--flows", str(FLOWS), "--rate", str(RATE), "--seed", str(SEED),
        "--every", "1", "-o", "json", timeout=800,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    report = json.loads(done.stdout)
    assert (report["lost"], report["doubled"], report["recorded_refused"]) == (0, 0, 0)
    assert report["dead_lettered"] == 0
    assert report["outcomes"]["signed"] == {"accepted": FLOWS}
    faults = [(f["fault"], f["node"]) for f in report["faults"]["list"] if not f["error"]]
    assert faults[:3] == planned[:3], report["faults"]
    stop = report["faults"]["list"][0]
    assert stop["held_s"] >= 31
    assert stop["target"].startswith("container ")  # frozen by containerd, not a pod deleted
    assert report["checked"]["bounty.recorded"] == FLOWS
    # The next tests expect one pod per node: wait out the grace period of those restarted.
    wait_for(
        lambda: all(
            row["ready"] and len(row["pods"]) == 1 for row in nodes(status(kind_stack)).values()
        ),
        "every node ready with one pod after chaos",
    )
