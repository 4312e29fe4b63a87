"""The command-line tools the cluster runtimes drive: docker and kind (kubectl: render.py).

Each check returns a clear error with the fix; `kdemo doctor` shows the same checks.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence

from kdemo.errors import KdemoError

__all__ = [
    "KIND_MIN_VERSION",
    "check_docker",
    "check_kind",
    "parse_kind_version",
    "run_tool",
]

KIND_MIN_VERSION = (0, 24, 0)
"""Earlier kind releases do not enforce NetworkPolicies."""
_KIND_VERSION = re.compile(r"kind v(\d+)\.(\d+)\.(\d+)")


def run_tool(argv: Sequence[str], *, what: str, hint: str, timeout: float = 600) -> str:
    """Run a tool; its failure becomes one KdemoError naming `what` with the tool's last line."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise KdemoError(f"{argv[0]} is not installed ({what})", hint) from exc
    except subprocess.TimeoutExpired as exc:
        raise KdemoError(f"{what} took longer than {timeout:.0f} s", hint) from exc
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise KdemoError(f"{what} failed: {last[0]}", hint)
    return done.stdout


def parse_kind_version(text: str) -> tuple[int, int, int] | None:
    """`kind v0.30.0 go1.24 linux/amd64` -> (0, 30, 0)."""
    match = _KIND_VERSION.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def check_docker() -> str:
    """The docker daemon's version; an error when the client or the daemon is missing."""
    if shutil.which("docker") is None:
        raise KdemoError(
            "docker is not installed (needed to build the images and to run kind)",
            "install it: apt-get install docker.io, or Docker Desktop",
        )
    return run_tool(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        what="asking the docker daemon for its version",
        hint="start the daemon (systemctl start docker) or point DOCKER_HOST at it",
        timeout=20,
    ).strip()


def check_kind() -> str:
    """kind's version; an error when it is missing or older than 0.24."""
    if shutil.which("kind") is None:
        raise KdemoError(
            "kind is not installed (needed for --runtime kind)",
            "install it: go install sigs.k8s.io/kind@latest, or see https://kind.sigs.k8s.io",
        )
    text = run_tool(["kind", "version"], what="kind version", hint="reinstall kind", timeout=20)
    version = parse_kind_version(text)
    if version is None or version < KIND_MIN_VERSION:
        wanted = ".".join(map(str, KIND_MIN_VERSION))
        raise KdemoError(
            f"kind {text.strip()!r} is older than {wanted}, which does not enforce NetworkPolicies",
            f"upgrade kind to {wanted} or newer: go install sigs.k8s.io/kind@latest",
        )
    return ".".join(map(str, version))
