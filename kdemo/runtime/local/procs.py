"""Starting supervised children and finding every process that belongs to a stack.

Each child gets PR_SET_PDEATHSIG=SIGKILL (it dies with its supervisor), its own
process group, and the marker `KDEMO_STACK_ID` in its environment. PostgreSQL
overwrites its environment block for its process titles, so its processes are
recognised by their working directory (the data directory) instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "MARKER_ENV",
    "kill_owned",
    "owned_pids",
    "pid_alive",
    "process_start_time",
    "spawn",
]

MARKER_ENV = "KDEMO_STACK_ID"
_PR_SET_PDEATHSIG = 1


def _child_setup(parent: int) -> Callable[[], None]:
    def setup() -> None:
        # Runs in the child after setuid (which would clear the death signal), before exec.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return setup


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log: Path,
    cwd: Path | None = None,
    user: int | None = None,
    group: int | None = None,
    die_with_parent: bool = True,
) -> subprocess.Popen[bytes]:
    """Start `argv` in its own process group, appending its output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        kwargs: dict[str, object] = {}
        if user is not None:
            kwargs.update(user=user, group=group, extra_groups=[])
        proc: subprocess.Popen[bytes] = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=_child_setup(os.getpid()) if die_with_parent else None,
            **kwargs,  # type: ignore[call-overload]
        )
    return proc


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _environ_has(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _cwd_in(pid: int, dirs: Sequence[Path]) -> bool:
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return any(cwd == d for d in dirs)


def owned_pids(stack: str, cwd_dirs: Sequence[Path] = ()) -> list[int]:
    """Live processes of the stack: its marker in their environment, or cwd in `cwd_dirs`."""
    marker = f"{MARKER_ENV}={stack}".encode()
    resolved = [d.resolve() for d in cwd_dirs]
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == me or not pid_alive(pid):
            continue
        if _environ_has(pid, marker) or (resolved and _cwd_in(pid, resolved)):
            found.append(pid)
    return sorted(found)


def kill_owned(stack: str, cwd_dirs: Sequence[Path] = (), *, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process of the stack until none is left; returns the pids killed."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        pids = owned_pids(stack, cwd_dirs)
        if not pids or time.monotonic() > deadline:
            return killed
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)
