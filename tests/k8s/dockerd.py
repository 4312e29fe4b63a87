"""A docker daemon of the test's own, and the project image built on a local base image.

Nothing can be pulled on these machines, so the base is a debootstrap of the host's
Debian release (scripts/build_base_image.sh), cached in KDEMO_TEST_CACHE between runs;
the daemon's data root lives there too when no other test run holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("KDEMO_TEST_CACHE", "/var/cache/kdemo-test"))
START_TIMEOUT_S = 30.0


def _install_docker() -> None:
    """apt-get install docker.io debootstrap, when we are root on a Debian-like host."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("dockerd is not installed and this user cannot apt-get install docker.io")
    done = subprocess.run(
        ["apt-get", "install", "-y", "-o", "DPkg::Lock::Timeout=300", "docker.io", "debootstrap"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot install docker.io: {done.stderr.strip().splitlines()[-1:]}")


@contextlib.contextmanager
def _data_root() -> Iterator[Path]:
    """The cached data root (images survive runs) unless another run holds it: then a temp one."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "docker.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with tempfile.TemporaryDirectory(prefix="kdemo-docker-") as tmp:
                yield Path(tmp)
            return
        yield CACHE / "docker"


@contextlib.contextmanager
def dockerd() -> Iterator[dict[str, str]]:
    """Start a private dockerd (no bridge, no iptables: containers use the host network)."""
    if shutil.which("dockerd") is None or shutil.which("debootstrap") is None:
        _install_docker()
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root here")
    with _data_root() as data, tempfile.TemporaryDirectory(prefix="kd-", dir="/tmp") as run:
        sock = Path(run) / "docker.sock"
        log = Path(run) / "dockerd.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [
                    "dockerd",
                    "--data-root",
                    str(data),
                    "--exec-root",
                    f"{run}/exec",
                    "--pidfile",
                    f"{run}/docker.pid",
                    "--host",
                    f"unix://{sock}",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--bridge=none",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_BUILDKIT": "0"}
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                ok = (
                    subprocess.run(
                        ["docker", "version", "--format", "{{.Server.Version}}"],
                        env=env,
                        capture_output=True,
                        timeout=10,
                        check=False,
                    ).returncode
                    == 0
                )
                if ok:
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    reason = log.read_text().strip().splitlines()[-1:]
                    pytest.skip(f"dockerd cannot start here: {reason}")
                time.sleep(0.2)
            yield env
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _unmount_under(Path(run))


def _unmount_under(folder: Path) -> None:
    """dockerd leaves its network namespace mounted in the exec root: unmount before cleanup."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(str(folder))), reverse=True):
        subprocess.run(["umount", "--lazy", mount], capture_output=True, timeout=30, check=False)


def base_image(env: dict[str, str]) -> str:
    """kdemo-base:<release>: debootstrap + docker import, cached."""
    release = "local"
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            release = line.split("=", 1)[1].strip('"')
    tag = f"kdemo-base:{release}"
    subprocess.run(
        [str(ROOT / "scripts" / "build_base_image.sh"), tag, str(CACHE)],
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    return tag


def build_image(env: dict[str, str], base: str, tag: str = "kdemo:test") -> str:
    """The project image on `base`; pip reaches the index through the host's network."""
    done = subprocess.run(
        [
            "docker",
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--tag",
            tag,
            str(ROOT),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return tag
