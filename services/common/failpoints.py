"""Failpoints: exact crash points that only a test arms, through `KDEMO_FAILPOINTS`.

`failpoint("outbox.after_commit")` does nothing unless the service was started with
that name armed. The variable is read once, at start (`arm_or_exit`); the runtime
never passes it on, so only a test that starts the process itself can arm one.

    KDEMO_FAILPOINTS=outbox.after_commit,consumer.after_write=3*error

- `name` or `name=crash`: the process exits at once through `os._exit` (status 137,
  as a shell reports SIGKILL): no cleanup, no flush, nothing acked or answered.
- `name=error`: raises `FailpointError`, which the bus treats as transient (nak).
- `N*crash` / `N*error`: only the first N hits fire; later ones pass.

Unarmed, a failpoint is one check of an empty dict. `docs/architecture.md` lists
where each one sits and what its test proves.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CRASH_STATUS",
    "ENV",
    "NAMES",
    "FailpointError",
    "FailpointSpecError",
    "arm",
    "arm_or_exit",
    "failpoint",
    "parse",
]

log = logging.getLogger(__name__)

ENV = "KDEMO_FAILPOINTS"
CRASH_STATUS = 137
NAMES = frozenset(
    {
        "outbox.after_commit",  # relay: the row is committed, about to be published
        "outbox.after_publish",  # relay: JetStream acked the publish, the row is not yet deleted
        "consumer.after_write",  # bus: the handler's transaction committed, not yet acked
        "pairing.before_event",  # identity: the decision is written, its event not yet enqueued
        "webhook.after_record",  # github-app: the delivery is committed, not yet answered
        "replies.after_post",  # github-app: GitHub took the reply, it is not yet marked posted
    }
)
_ACTIONS = ("crash", "error")


class FailpointError(Exception):
    """The injected transient error of a failpoint armed with `error`."""


class FailpointSpecError(ValueError):
    """`KDEMO_FAILPOINTS` does not parse; the message names the part and the fix."""


@dataclass
class _Armed:
    action: str
    remaining: int | None
    """Hits left to fire (None: every hit)."""


_armed: dict[str, _Armed] = {}


def parse(spec: str) -> dict[str, _Armed]:
    """`name[=[N*]crash|error]`, comma-separated, into armed points by name."""
    armed: dict[str, _Armed] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, action = (s.strip() for s in part.partition("="))
        if name not in NAMES:
            raise FailpointSpecError(
                f"{ENV}: unknown failpoint {name!r}; known: {', '.join(sorted(NAMES))}"
            )
        count_text, star, action = action.rpartition("*")  # ("", "", action) without a count
        action = action or "crash"
        if action not in _ACTIONS:
            raise FailpointSpecError(
                f"{ENV}: {name}: unknown action {action!r}; use crash or error, e.g. {name}=error"
            )
        remaining: int | None = None
        if star:
            if not count_text.isdigit() or int(count_text) < 1:
                raise FailpointSpecError(
                    f"{ENV}: {name}: {count_text!r} is not a positive count; "
                    f"write e.g. {name}=3*{action}"
                )
            remaining = int(count_text)
        armed[name] = _Armed(action, remaining)
    return armed


def arm(spec: str) -> None:
    """Arm exactly the failpoints of `spec` (an empty spec disarms all)."""
    _armed.clear()
    _armed.update(parse(spec))


def arm_or_exit(service: str, env: Mapping[str, str] | None = None) -> None:
    """Read `KDEMO_FAILPOINTS` once at start; a bad value stops the service (status 2)."""
    spec = (os.environ if env is None else env).get(ENV, "")
    try:
        arm(spec)
    except FailpointSpecError as exc:
        log.error("invalid setting", extra={"problem": str(exc)})
        print(f"{service}: {exc} (see docs/architecture.md)", file=sys.stderr)
        raise SystemExit(2) from None
    if _armed:
        log.warning("failpoints armed: for tests only", extra={"failpoints": spec})


def failpoint(name: str) -> None:
    """Crash or fail here when `name` is armed; otherwise return at once."""
    if not _armed:
        return
    point = _armed.get(name)
    if point is None or point.remaining == 0:
        return
    if point.remaining is not None:
        point.remaining -= 1
    if point.action == "crash":
        # One unbuffered line so the log says why the process vanished; nothing else runs.
        os.write(2, f"failpoint {name}: crash\n".encode())
        os._exit(CRASH_STATUS)
    raise FailpointError(f"failpoint {name}: injected error")
