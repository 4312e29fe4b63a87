"""The kind tests share one cluster and one stack: kdemo.testing's session fixtures.

`kind_stack` brings the stack up once with `kdemo up --runtime kind`; on our machines the
cluster runs the node image the offline chain built (tests/offline_kind.py). The cluster
lives until the session ends. These tests run in one pytest-xdist worker (tests/conftest.py
groups them) after that worker's other tests, and in one process after every other test
of the session; those in test_lifecycle.py, which take the stack down and bring it back,
run last of all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kdemo.testing import KindStack

LAST = "test_lifecycle.py"
READY_TIMEOUT_S = 240.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The kind tests after all others, the lifecycle ones last (stable otherwise)."""
    here = Path(__file__).parent
    items.sort(key=lambda item: (item.path.parent == here, item.path == here / LAST))


def status(stack: KindStack) -> dict[str, object]:
    done = stack.kdemo("status", "-o", "json")
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def nodes(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {row["name"]: row for row in report["services"]}  # type: ignore[attr-defined,index]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT_S) -> None:
    """Poll `condition` (each call asks the cluster) until it holds; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(1.0)


def all_ready(stack: KindStack) -> bool:
    return all(row["ready"] for row in nodes(status(stack)).values())
