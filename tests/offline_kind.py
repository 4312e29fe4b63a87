"""Where kdemo's own suite runs its kind tests: never on a Docker the user relies on.

The kind and image tests use, in this order:
0. the offline chain `.ci/run` builds in the background while the rest of the suite runs
   (`KDEMO_TEST_KIND_CHAIN_DIR`): they wait for it, and run last;
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
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.kind_offline.__main__ import NOT_CACHED_EXIT, locations

ROOT = Path(__file__).resolve().parent.parent
CHAIN = [sys.executable, "-m", "scripts.kind_offline"]
TEST_CLUSTER = "kdemo-test"
USE_DOCKER_ENV = "KDEMO_TEST_USE_DOCKER"
CHAIN_DIR_ENV = "KDEMO_TEST_KIND_CHAIN_DIR"
CHAIN_WAIT_S = 3600.0
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


class ChainNotReady(Exception):
    """The background chain failed, or did not finish in time."""


def wait_for_chain(directory: Path, timeout: float = CHAIN_WAIT_S) -> dict[str, str]:
    """The settings of a chain building in the background, once it is done.

    The builder writes the chain's stdout to `settings`, its stderr to `log`, and, once the
    chain has ended, its exit status to `status` (whole: written aside, then renamed)."""
    status = directory / "status"
    deadline = time.monotonic() + timeout
    while not status.exists():
        if time.monotonic() > deadline:
            raise ChainNotReady(f"the offline kind chain did not finish in {timeout:.0f} s")
        time.sleep(1.0)
    code = status.read_text().strip()
    if code != "0":
        log = directory / "log"
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
        raise ChainNotReady(f"the offline kind chain failed (exit {code}):\n{tail}")
    return parse_settings((directory / "settings").read_text())


def can_build_offline() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("apt-get", "go"))


def offline_environment() -> Iterator[dict[str, str]]:
    """The settings for the kind fixtures; skips (with the way out) where there are none."""
    settings = {"KDEMO_KIND_CLUSTER": os.environ.get("KDEMO_KIND_CLUSTER", TEST_CLUSTER)}
    if chain_dir := os.environ.get(CHAIN_DIR_ENV):
        try:
            built = wait_for_chain(Path(chain_dir))
        except ChainNotReady as error:
            pytest.fail(str(error))
        yield {**settings, **built}
        return
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
