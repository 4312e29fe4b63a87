"""Pytest fixtures for your own tests against a kdemo stack on kind.

Use them with `pytest_plugins = ["kdemo.testing"]` in your top-level conftest.py, then ask
for `kind_stack`: the stack brought up once per test session with `kdemo up --runtime
kind` (its `runtime`, and `kdemo(...)` to run the CLI against it). `kind_cluster` names
the cluster it uses (and says whether the session creates it). Both skip the test, with
the reason, where docker, kind or kubectl is missing.

Override `kind_environment` to prepare the machine first: it returns the settings (e.g.
`DOCKER_HOST`, `KDEMO_KIND_NODE_IMAGE`) the fixtures put in the environment. A cluster the
session created is deleted at its end unless `KDEMO_KEEP_CLUSTER=1`; one that already
existed is reused and kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kdemo.errors import KdemoError

if TYPE_CHECKING:
    from kdemo.runtime.kube import KindRuntime

# The cluster runtime (and its Kubernetes client) is imported by the fixtures that use it:
# `kdemo.testing.recorded` is imported where it is not wanted (scripts/bench_tui.py measures
# its own process's memory).

__all__ = ["KindCluster", "KindStack", "kind_cluster", "kind_environment", "kind_stack"]

UP_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class KindCluster:
    name: str
    context: str
    created: bool
    """True when this session creates it (and so deletes it)."""


@dataclass
class KindStack:
    """A stack on kind, brought up by the CLI exactly as a user does."""

    cluster: KindCluster
    state_dir: Path
    runtime: KindRuntime
    up: subprocess.CompletedProcess[str]
    """The `kdemo up --runtime kind -o json` that brought it up (stdout, progress on stderr)."""
    up_seconds: float

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KDEMO_STATE_DIR": str(self.state_dir)}

    def kdemo(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run `kdemo ARGS` against this stack; the result, whatever the exit code."""
        return run_kdemo(*args, env=self.env, timeout=timeout)


def run_kdemo(
    *args: str, env: Mapping[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kdemo", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def kind_environment() -> dict[str, str]:
    """Settings put into the environment before any kind fixture runs (none by default)."""
    return {}


@pytest.fixture(scope="session")
def kind_cluster(kind_environment: dict[str, str]) -> Iterator[KindCluster]:
    """The kind cluster `KDEMO_KIND_CLUSTER` (default `kdemo`): reused if there, else created
    by `kind_stack`."""
    from kdemo.runtime.kube import kind as kindtool
    from kdemo.runtime.kube.kind_runtime import CLUSTER_ENV, DEFAULT_CLUSTER
    from kdemo.runtime.kube.render import find_kubectl
    from kdemo.runtime.kube.tools import check_docker, check_kind

    saved = {key: os.environ.get(key) for key in kind_environment}
    os.environ.update(kind_environment)
    try:
        try:
            check_docker()
            check_kind()
            find_kubectl()
        except KdemoError as exc:
            pytest.skip(f"{exc.message} ({exc.hint})")
        name = os.environ.get(CLUSTER_ENV, DEFAULT_CLUSTER)
        created = not kindtool.cluster_exists(name)
        yield KindCluster(name, kindtool.context_name(name), created)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def kind_stack(
    kind_cluster: KindCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KindStack]:
    """The whole stack deployed on `kind_cluster` by `kdemo up --runtime kind`, and ready."""
    from kdemo.runtime.kube import KindRuntime
    from kdemo.runtime.kube.kind_runtime import CLUSTER_ENV

    state_dir: Path = tmp_path_factory.mktemp("kdemo-kind-state")
    env = {**os.environ, "KDEMO_STATE_DIR": str(state_dir), CLUSTER_ENV: kind_cluster.name}
    runtime = KindRuntime(state_dir, cluster=kind_cluster.name)
    try:
        start = time.monotonic()
        done = run_kdemo("up", "--runtime", "kind", "-o", "json", env=env, timeout=UP_TIMEOUT_S)
        took = time.monotonic() - start
        if done.returncode != 0:
            pytest.fail(f"kdemo up --runtime kind failed:\n{done.stderr[-4000:]}")
        json.loads(done.stdout)  # the answer is the JSON the command promises
        yield KindStack(kind_cluster, state_dir, runtime, done, took)
    finally:
        runtime.close()
        if kind_cluster.created and os.environ.get("KDEMO_KEEP_CLUSTER") != "1":
            _delete(kind_cluster.name, env)


def _delete(cluster: str, env: Mapping[str, str]) -> None:
    """`kdemo down`; when that fails (a stack half up), delete the cluster with kind."""
    try:
        if run_kdemo("down", env=env, timeout=600).returncode == 0:
            return
    except subprocess.TimeoutExpired:
        pass  # kind itself, below
    subprocess.run(
        ["kind", "delete", "cluster", "--name", cluster],
        env=dict(env),
        capture_output=True,
        timeout=600,
        check=False,
    )
