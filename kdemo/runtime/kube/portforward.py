"""Reaching pods from this machine with `kubectl port-forward` (bound to 127.0.0.1 only).

The Kubernetes API carries the traffic, so no extra network path into the cluster is
opened: the same way `kubectl` users reach a pod.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Iterator

from kdemo.errors import KdemoError
from kdemo.runtime.kube.render import find_kubectl

__all__ = ["FORWARD_TIMEOUT_S", "parse_forwarding_line", "port_forward", "port_forward_argv"]

FORWARD_TIMEOUT_S = 20.0
_FORWARDING = re.compile(r"^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


def port_forward_argv(
    kubectl: str, *, context: str | None, namespace: str, target: str, remote_port: int
) -> list[str]:
    """The command line: a random free local port on 127.0.0.1 towards `target`."""
    argv = [kubectl]
    if context:
        argv += ["--context", context]
    return [
        *argv,
        "--namespace",
        namespace,
        "port-forward",
        "--address",
        "127.0.0.1",
        target,
        f":{remote_port}",
    ]


def parse_forwarding_line(line: str) -> int | None:
    """The local port from kubectl's `Forwarding from 127.0.0.1:PORT -> REMOTE` line."""
    match = _FORWARDING.match(line.strip())
    return int(match.group(1)) if match else None


@contextlib.contextmanager
def port_forward(
    *,
    context: str | None,
    namespace: str,
    target: str,
    remote_port: int,
    timeout: float = FORWARD_TIMEOUT_S,
) -> Iterator[int]:
    """Forward a local port to `target` (`pod/NAME`, `svc/NAME`); yields the local port."""
    argv = port_forward_argv(
        find_kubectl(), context=context, namespace=namespace, target=target, remote_port=remote_port
    )
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    found: list[int] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            port = parse_forwarding_line(line)
            if port is not None and not found:
                found.append(port)
                ready.set()
        ready.set()  # stdout closed: kubectl exited

    reader = threading.Thread(target=read, name="kdemo-port-forward", daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if time.monotonic() > deadline:
                break
        if not found:
            proc.kill()
            err = proc.stderr.read().strip() if proc.stderr else ""
            raise KdemoError(
                f"cannot port-forward to {target} in namespace {namespace}: "
                f"{err or 'kubectl gave no answer in time'}",
                "check `kdemo status`; the pod may still be starting",
            )
        yield found[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
