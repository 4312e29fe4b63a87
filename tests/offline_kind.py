"""Where kdemo's own suite runs its kind tests: never on a Docker the user relies on.

The kind and image tests use, in this order:
1. the private daemon of `just kind-offline` (scripts/kind_offline) when it runs and
   `KDEMO_KIND_NODE_IMAGE` names its node image — what `.ci/run` sets up;
2. this machine's own docker and kind, only when `KDEMO_TEST_USE_DOCKER=1` says they are
   the tests' to use (a throw-away CI runner);
3. the offline chain started here, when everything it builds is already cached (seconds);
otherwise they skip, saying how to prepare the machine. Their cluster is `kdemo-test`, so
a user's `kdemo` cluster is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.kind_offline.__main__ import NOT_CACHED_EXIT, locations

ROOT = Path(__file__).resolve().parent.parent
CHAIN = [sys.executable, "-m", "scripts.kind_offline"]
TEST_CLUSTER = "kdemo-test"
USE_DOCKER_ENV = "KDEMO_TEST_USE_DOCKER"
PREPARE_HINT = (
    'prepare it once with `eval "$(just kind-offline)"` (root, Debian, Go; about 25 minutes, '
    f"then cached), or set {USE_DOCKER_ENV}=1 to let the tests use this machine's docker and kind"
)


def parse_settings(stdout: str) -> dict[str, str]:
    """The chain's `KEY=VALUE` lines (what a shell would `eval`)."""
    settings = {}
    for line in stdout.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.replace("_", "").isalnum() and key.isupper():
            settings[key] = value
    return settings


def can_build_offline() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("apt-get", "go"))


def offline_environment() -> Iterator[dict[str, str]]:
    """The settings for the kind fixtures; skips (with the way out) where there are none."""
    settings = {"KDEMO_KIND_CLUSTER": os.environ.get("KDEMO_KIND_CLUSTER", TEST_CLUSTER)}
    _, daemon = locations()
    if os.environ.get("KDEMO_KIND_NODE_IMAGE") and daemon.running():
        yield {**settings, "DOCKER_HOST": daemon.host}
        return
    if os.environ.get(USE_DOCKER_ENV) == "1":
        yield settings
        return
    if not can_build_offline():
        pytest.skip(f"no private docker daemon for the kind tests: {PREPARE_HINT}")
    was_running = daemon.running()
    done = subprocess.run(
        [*CHAIN, "build", "--cached-only"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode == NOT_CACHED_EXIT:
        pytest.skip(f"the kind node image is not built here: {PREPARE_HINT}")
    if done.returncode != 0:
        pytest.fail(f"the offline kind chain failed:\n{done.stderr[-4000:]}")
    lines = done.stdout.strip().splitlines()
    assert lines[-2].startswith("DOCKER_HOST="), done.stdout
    assert lines[-1].startswith("KDEMO_KIND_NODE_IMAGE="), done.stdout
    try:
        yield {**settings, **parse_settings(done.stdout)}
    finally:
        if not was_running:
            subprocess.run(
                [*CHAIN, "stop"], cwd=ROOT, capture_output=True, timeout=300, check=False
            )
