"""Pytest fixtures for your own tests against a kdemo stack on kind.

Use them with `pytest_plugins = ["kdemo.testing"]` in your conftest.py, then ask for
`kind_stack` (a deployed stack: its `public_urls()`, `status()`, `webhook_secret()`...)
or just `kind_cluster`. Both skip the test, with the reason, where docker or kind is
missing. A cluster the fixture created is deleted at the end of the session unless
`KDEMO_KEEP_CLUSTER=1`; a cluster that already existed is reused and kept.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kdemo.errors import KdemoError
from kdemo.runtime.kube import KindRuntime
from kdemo.runtime.kube import kind as kindtool
from kdemo.runtime.kube.kubernetes import DEFAULT_CLUSTER
from kdemo.runtime.kube.tools import check_docker, check_kind

__all__ = ["KindCluster", "kind_cluster", "kind_stack"]


@dataclass(frozen=True)
class KindCluster:
    name: str
    context: str
    created: bool
    """True when this session created it (and so deletes it)."""


def _progress(message: str) -> None:
    print(f"kdemo: {message}", file=sys.stderr)


@pytest.fixture(scope="session")
def kind_cluster() -> KindCluster:
    """The kind cluster `KDEMO_KIND_CLUSTER` (default `kdemo`): reused if there, else created."""
    try:
        check_docker()
        check_kind()
    except KdemoError as exc:
        pytest.skip(f"{exc.message} ({exc.hint})")
    name = os.environ.get("KDEMO_KIND_CLUSTER", DEFAULT_CLUSTER)
    created = not kindtool.cluster_exists(name)
    return KindCluster(name, kindtool.context_name(name), created)


@pytest.fixture(scope="session")
def kind_stack(
    kind_cluster: KindCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KindRuntime]:
    """The whole stack deployed on `kind_cluster` and ready (`kdemo up --runtime kind`)."""
    state_dir: Path = tmp_path_factory.mktemp("kdemo-kind-state")
    runtime = KindRuntime(state_dir, cluster=kind_cluster.name)
    runtime.up(_progress)
    try:
        yield runtime
    finally:
        if kind_cluster.created and os.environ.get("KDEMO_KEEP_CLUSTER") != "1":
            runtime.down(progress=_progress)
