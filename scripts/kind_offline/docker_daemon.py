"""A Docker daemon of kdemo's own: its socket, exec root, pidfile, data and bridge.

It never touches the default socket or `docker0`, so a user's own Docker keeps working
beside it: the bridge is `kdemo0`, NAT and iptables are left alone (kind's ports are
published on 127.0.0.1 by docker-proxy), and the daemon stops cleanly with `stop`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .shell import ChainError, run, say

__all__ = ["BRIDGE", "PrivateDocker", "lacks_sys_resource"]

BRIDGE = "kdemo0"
BRIDGE_ADDRESS = ipaddress.ip_interface("172.31.254.1/24")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
_CAP_SYS_RESOURCE = 24
_FILES = Path(__file__).resolve().parent / "files"


def lacks_sys_resource() -> bool:
    """True when this machine's capability bounding set misses CAP_SYS_RESOURCE."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return not (int(line.split()[1], 16) >> _CAP_SYS_RESOURCE) & 1
    return False


@dataclass(frozen=True)
class PrivateDocker:
    run_dir: Path
    """Socket, pidfile, exec root and log: /run/kdemo-kind by default."""
    data_root: Path
    """Images and containers: inside the cache, so images survive a reboot."""

    @property
    def host(self) -> str:
        return f"unix://{self.run_dir / 'docker.sock'}"

    @property
    def env(self) -> dict[str, str]:
        """What a docker client (and kind) needs; the legacy builder: there is no buildx."""
        return {"DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "dockerd.pid"

    def running(self) -> bool:
        if not (self.run_dir / "docker.sock").exists():
            return False
        done = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env={**os.environ, **self.env},
            capture_output=True,
            timeout=20,
            check=False,
        )
        return done.returncode == 0

    def start(self) -> bool:
        """Start the daemon unless it already runs; True when this call started it."""
        if self.running():
            return False
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        _ensure_bridge()
        config = self.run_dir / "daemon.json"
        config.write_text("{}\n")  # never the host's /etc/docker/daemon.json
        argv = [
            "dockerd",
            "--config-file", str(config),
            "--data-root", str(self.data_root),
            "--exec-root", str(self.run_dir / "exec"),
            "--pidfile", str(self.pidfile),
            "--host", self.host,
            "--bridge", BRIDGE,
            # Its own namespaces, should it share a system containerd with another dockerd.
            "--containerd-namespace", "kdemo-kind",
            "--containerd-plugins-namespace", "kdemo-kind-plugins",
            # Nothing to route or masquerade: containers reach each other on their own
            # networks and the host publishes kind's ports on 127.0.0.1 with docker-proxy.
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
        ]  # fmt: skip
        if lacks_sys_resource():
            wrapper = self.run_dir / "runc-nosysresource"
            shutil.copyfile(_FILES / "runc-nosysresource", wrapper)
            wrapper.chmod(0o755)
            argv += ["--add-runtime", f"nosysresource={wrapper}"]
            argv += ["--default-runtime", "nosysresource"]
        log = self.run_dir / "dockerd.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this script: kind and kdemo use it next
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.running():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
                self.stop()  # the bridge and anything it mounted
                raise ChainError(f"dockerd did not start:\n{tail}")
            time.sleep(0.2)
        say(f"started a private dockerd (pid {proc.pid}) on {self.host}")
        return True

    def stop(self) -> None:
        """Stop the daemon (its containers stop with it), unmount its leftovers, drop the bridge."""
        pid = _read_pid(self.pidfile)
        if pid is not None and _command(pid) == "dockerd":  # not a stale pid of another program
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            say(f"stopped the private dockerd (pid {pid})")
        _unmount_under(self.run_dir)
        # dockerd also bind-mounts its data root onto itself (to make it private): gone with it.
        _unmount_under(self.data_root, itself=True)
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _ensure_bridge() -> None:
    """The daemon's own bridge; refused when its subnet is already routed on this machine."""
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        return
    routes = run(["ip", "-4", "route", "show"])
    for line in routes.splitlines():
        network = line.split()[0]
        if network == "default":
            continue
        with contextlib.suppress(ValueError):
            if ipaddress.ip_network(network, strict=False).overlaps(BRIDGE_ADDRESS.network):
                raise ChainError(
                    f"{BRIDGE_ADDRESS.network} is already routed here ({line.strip()}); "
                    f"change BRIDGE_ADDRESS in {__file__}"
                )
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "address", "add", str(BRIDGE_ADDRESS), "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def _unmount_under(folder: Path, *, itself: bool = False) -> None:
    """Unmount what dockerd left mounted under `folder` (network namespaces in its exec
    root), deepest first, and with `itself` the folder's own mount too."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    under = [m for m in mounts if m.startswith(f"{folder}/") or (itself and m == str(folder))]
    for mount in sorted(under, reverse=True):
        subprocess.run(["umount", "--lazy", mount], capture_output=True, timeout=30, check=False)


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"  # a zombie is gone
