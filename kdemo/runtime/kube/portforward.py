"""Reaching pods from this machine with `kubectl port-forward` (bound to 127.0.0.1 only).

The Kubernetes API carries the traffic, so no extra network path into the cluster is
opened: the same way `kubectl` users reach a pod.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import re
import subprocess
import threading
from collections.abc import Iterator
from typing import IO

from kdemo.errors import KdemoError
from kdemo.runtime.kube.render import find_kubectl

__all__ = [
    "FORWARD_TIMEOUT_S",
    "Forward",
    "Forwards",
    "parse_forwarding_line",
    "port_forward",
    "port_forward_argv",
]

FORWARD_TIMEOUT_S = 20.0
_FORWARDING = re.compile(r"^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


def port_forward_argv(
    kubectl: str,
    *,
    context: str | None,
    namespace: str,
    target: str,
    remote_port: int,
    local_port: int = 0,
) -> list[str]:
    """The command line: `local_port` (0: a free one) on 127.0.0.1 towards `target`."""
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
        f"{local_port or ''}:{remote_port}",
    ]


def parse_forwarding_line(line: str) -> int | None:
    """The local port from kubectl's `Forwarding from 127.0.0.1:PORT -> REMOTE` line."""
    match = _FORWARDING.match(line.strip())
    return int(match.group(1)) if match else None


class Forward:
    """One running `kubectl port-forward`: its local port, once kubectl announced it.

    Both of kubectl's pipes are read to the end by threads of their own (a full pipe would
    stall kubectl); the last lines of stderr are kept to explain a failure.
    """

    def __init__(self, argv: list[str], *, target: str, namespace: str, timeout: float) -> None:
        self.target = target
        self._errors: collections.deque[str] = collections.deque(maxlen=5)
        self._announced = threading.Event()
        self._ports: list[int] = []
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        stdout, stderr = self._proc.stdout, self._proc.stderr
        if stdout is None or stderr is None:  # never: both are PIPE (this narrows the types)
            raise KdemoError(f"kubectl port-forward to {target} has no output pipes")
        self._readers = [
            threading.Thread(target=self._read_stdout, args=(stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not self._announced.wait(timeout) or not self._ports:
            self.stop()
            reason = "; ".join(self._errors) or "kubectl gave no answer in time"
            raise KdemoError(
                f"cannot port-forward to {target} in namespace {namespace}: {reason}",
                "check `kdemo status`; the pod may still be starting",
            )
        self.port = self._ports[0]

    def _read_stdout(self, pipe: IO[str]) -> None:
        with pipe:
            for line in pipe:
                port = parse_forwarding_line(line)
                if port is not None and not self._ports:
                    self._ports.append(port)
                    self._announced.set()
        self._announced.set()  # kubectl exited

    def _read_stderr(self, pipe: IO[str]) -> None:
        with pipe:
            for line in pipe:
                if line.strip():
                    self._errors.append(line.strip())

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)  # the pipes close when kubectl is gone


@contextlib.contextmanager
def port_forward(
    *,
    context: str | None,
    namespace: str,
    target: str,
    remote_port: int,
    local_port: int = 0,
    timeout: float = FORWARD_TIMEOUT_S,
) -> Iterator[int]:
    """Forward `local_port` (0: a free one) to `target` (`pod/NAME`, `svc/NAME`); yields the
    local port once kubectl listens on it."""
    argv = port_forward_argv(
        find_kubectl(),
        context=context,
        namespace=namespace,
        target=target,
        remote_port=remote_port,
        local_port=local_port,
    )
    forward = Forward(argv, target=target, namespace=namespace, timeout=timeout)
    try:
        yield forward.port
    finally:
        forward.stop()


class Forwards:
    """Long-lived port-forwards, one kubectl per (target, port), shared by every caller.

    The dashboard scrapes five services every two seconds: a new kubectl per scrape would
    cost a process start and an API round trip each time. A forward whose kubectl exited
    (its pod went away) is started again on the next call; `reset` drops one that stopped
    answering. Thread-safe: a forward being started holds up only callers of the same one.
    `close` (also run at exit) stops every kubectl.
    """

    def __init__(self, *, context: str | None, namespace: str) -> None:
        self.context, self.namespace = context, namespace
        self._forwards: dict[tuple[str, int], Forward] = {}
        self._locks: collections.defaultdict[tuple[str, int], threading.Lock] = (
            collections.defaultdict(threading.Lock)
        )
        self._lock = threading.Lock()
        atexit.register(self.close)

    def port(self, target: str, remote_port: int, *, local_port: int = 0) -> int:
        """The local port forwarded to `target`'s `remote_port`, started when needed
        (on `local_port` when given: a Kafka listener advertises the forward's address)."""
        key = (target, remote_port)
        with self._lock:
            key_lock = self._locks[key]
        with key_lock:
            with self._lock:
                known = self._forwards.get(key)
            if known is not None and known.alive:
                return known.port
            if known is not None:
                known.stop()  # exited: collect it before starting another
            argv = port_forward_argv(
                find_kubectl(),
                context=self.context,
                namespace=self.namespace,
                target=target,
                remote_port=remote_port,
                local_port=local_port,
            )
            forward = Forward(
                argv, target=target, namespace=self.namespace, timeout=FORWARD_TIMEOUT_S
            )
            with self._lock:
                self._forwards[key] = forward
            return forward.port

    def reset(self, target: str, remote_port: int) -> None:
        """Stop the forward to `target` (after it failed); the next `port` starts a new one."""
        with self._lock:
            known = self._forwards.pop((target, remote_port), None)
        if known is not None:
            known.stop()

    def close(self) -> None:
        """Stop every forward (and forget the exit hook: a closed pool holds nothing)."""
        with self._lock:
            forwards, self._forwards = list(self._forwards.values()), {}
        for forward in forwards:
            forward.stop()
        atexit.unregister(self.close)
