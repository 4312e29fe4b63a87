"""Running commands and timing steps; everything said goes to stderr (stdout is for `eval`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ChainError", "NotCached", "Timings", "at_idle_priority", "run", "say"]

_PRIORITY: list[str] = []
"""What every command runs under: nothing, or idle CPU and disk priority."""


def at_idle_priority() -> None:
    """Run every command from now on at idle CPU and disk priority (nice 19, ionice idle):
    the builds then use only what the rest of the machine leaves. The private daemon is
    started otherwise and keeps the normal priority."""
    _PRIORITY[:] = ["nice", "-n", "19", "ionice", "-c", "3"]


class ChainError(Exception):
    """A step failed: the message names the step and the command's last lines."""


class NotCached(ChainError):
    """`--cached-only` and a step would have to build."""


def say(message: str) -> None:
    print(f"kind-offline: {message}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    log: Path | None = None,
    timeout: float = 3600,
) -> str:
    """Run a command; its stdout. Both outputs are appended to `log` when given; a failure
    raises ChainError with the last lines of what the command said."""
    try:
        done = subprocess.run(
            [*_PRIORITY, *argv],
            env={**os.environ, **(env or {})},
            cwd=cwd,
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ChainError(f"{argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise ChainError(f"`{' '.join(argv[:4])}` took longer than {timeout:.0f} s") from exc
    said = (done.stdout + done.stderr).decode(errors="replace")
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            out.write(f"\n$ {' '.join(argv)}\n{said}")
    if done.returncode != 0:
        tail = "\n".join(said.strip().splitlines()[-15:])
        where = f" (the whole output: {log})" if log is not None else ""
        raise ChainError(f"`{' '.join(argv[:4])}` failed{where}:\n{tail}")
    return str(done.stdout.decode(errors="replace"))


@dataclass
class Timings:
    """How long each step took, and whether the cache already had it."""

    cached_only: bool = False
    """Refuse every step that would build or install (NotCached)."""
    rows: list[tuple[str, float, bool]] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, what: str, *, cached: bool) -> Iterator[None]:
        if not cached and self.cached_only:
            raise NotCached(f"{what} is not built yet")
        if cached:
            self.rows.append((what, 0.0, True))
            say(f"{what}: cached")
            yield
            return
        say(f"{what}…")
        start = time.monotonic()
        yield
        took = time.monotonic() - start
        self.rows.append((what, took, False))
        say(f"{what}: done in {took:.0f} s")

    def report(self) -> None:
        total = sum(t for _, t, _ in self.rows)
        say(f"{'step':<48} {'time':>8}")
        for what, took, cached in self.rows:
            say(f"{what:<48} {'cached' if cached else f'{took:.0f} s':>8}")
        say(f"{'total':<48} {total:>6.0f} s")
