"""kdemo's own machines: the kind fixtures run on the offline chain (scripts/kind_offline).

Where docker and kind already work (a laptop, a hosted CI runner) nothing is prepared and
kind uses its own node image. Where they do not but this is root on Debian with Go (our
machines, which reach no container registry), the chain builds everything once into its
cache and starts its private Docker daemon; its settings are what the fixtures get.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAIN = [sys.executable, "-m", "scripts.kind_offline"]
CHAIN_TIMEOUT_S = 3600.0


def docker_and_kind_work() -> bool:
    """A docker daemon answers with this environment, and kind is on PATH."""
    if shutil.which("docker") is None or shutil.which("kind") is None:
        return False
    done = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0


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
    """Run the chain (seconds when cached); stop its daemon afterwards if it was not running."""
    if docker_and_kind_work() or not can_build_offline():
        yield {}  # nothing to prepare, or nothing we may prepare: kdemo.testing says why
        return
    from scripts.kind_offline.__main__ import locations

    _, daemon = locations()
    was_running = daemon.running()
    done = subprocess.run(
        CHAIN, cwd=ROOT, capture_output=True, text=True, timeout=CHAIN_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"the offline kind chain failed:\n{done.stderr[-4000:]}")
    lines = done.stdout.strip().splitlines()
    assert lines[-2].startswith("DOCKER_HOST="), done.stdout
    assert lines[-1].startswith("KDEMO_KIND_NODE_IMAGE="), done.stdout
    try:
        yield parse_settings(done.stdout)
    finally:
        if not was_running:
            subprocess.run(
                [*CHAIN, "stop"], cwd=ROOT, capture_output=True, timeout=300, check=False
            )
