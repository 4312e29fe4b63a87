"""Reaching pods from this machine with `kubectl port-forward` (bound to 127.0.0.1 only).

The Kubernetes API carries the traffic, so no extra network path into the cluster is
opened: the same way `kubectl` users reach a pod.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Iterator

from kdemo.errors import KdemoError
from kdemo.runtime.kube.render import find_kubectl

__all__ = [
    "FORWARD_TIMEOUT_S",
    "Forwards",
    "parse_forwarding_line",
    "port_forward",
    "port_forward_argv",
]

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


def _start(
    argv: list[str], *, target: str, namespace: str, timeout: float
) -> tuple[subprocess.Popen[str], int]:
    """Start kubectl port-forward; the process and the local port it announced."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    found: list[int] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # read to the end, so kubectl never blocks on a full pipe
            port = parse_forwarding_line(line)
            if port is not None and not found:
                found.append(port)
                ready.set()
        ready.set()  # stdout closed: kubectl exited

    threading.Thread(target=read, name="kdemo-port-forward", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.1):
        if time.monotonic() > deadline:
            break
    if not found:
        proc.kill()
        proc.wait()
        err = proc.stderr.read().strip() if proc.stderr else ""
        _stop(proc)
        raise KdemoError(
            f"cannot port-forward to {target} in namespace {namespace}: "
            f"{err or 'kubectl gave no answer in time'}",
            "check `kdemo status`; the pod may still be starting",
        )
    return proc, found[0]


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


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
    proc, port = _start(argv, target=target, namespace=namespace, timeout=timeout)
    try:
        yield port
    finally:
        _stop(proc)


class Forwards:
    """Long-lived port-forwards, one kubectl per (target, port), shared by every caller.

    The dashboard scrapes five services every two seconds: a new kubectl per scrape would
    cost a process start and an API round trip each time. A forward whose kubectl exited
    (its pod went away) is started again on the next call; `reset` drops one that stopped
    answering. Thread-safe; `close` (also run at exit) stops every kubectl.
    """

    def __init__(self, *, context: str | None, namespace: str) -> None:
        self.context, self.namespace = context, namespace
        self._procs: dict[tuple[str, int], tuple[subprocess.Popen[str], int]] = {}
        self._lock = threading.Lock()
        atexit.register(self.close)

    def port(self, target: str, remote_port: int) -> int:
        """The local port forwarded to `target`'s `remote_port`, started when needed."""
        key = (target, remote_port)
        with self._lock:
            known = self._procs.get(key)
            if known is not None and known[0].poll() is None:
                return known[1]
            argv = port_forward_argv(
                find_kubectl(),
                context=self.context,
                namespace=self.namespace,
                target=target,
                remote_port=remote_port,
            )
            self._procs[key] = _start(
                argv, target=target, namespace=self.namespace, timeout=FORWARD_TIMEOUT_S
            )
            return self._procs[key][1]

    def reset(self, target: str, remote_port: int) -> None:
        """Stop the forward to `target` (after it failed); the next `port` starts a new one."""
        with self._lock:
            known = self._procs.pop((target, remote_port), None)
        if known is not None:
            _stop(known[0])

    def close(self) -> None:
        with self._lock:
            procs, self._procs = list(self._procs.values()), {}
        for proc, _ in procs:
            _stop(proc)
