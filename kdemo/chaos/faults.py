"""The faults `kdemo chaos` injects: which, where and when, reproducible from a seed.

A fault plan is drawn from `random.Random(seed)` before the run starts, so the same seed
on the same bus gives the same faults on the same nodes in the same order with the same
pauses between them; only where the load happens to be when each one lands differs between
runs. The nodes are those of the stack's bus (`topology.for_bus`): `nats` or `kafka`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from kdemo import topology
from kdemo.chaos import FAULTS
from kdemo.errors import KdemoError, UsageError
from kdemo.runtime.natsconfig import ACK_WAIT_S

if TYPE_CHECKING:
    from kdemo.runtime.base import Runtime

__all__ = [
    "FAULTS",
    "FaultPlan",
    "FaultRecord",
    "Injector",
    "parse_faults",
    "plan_faults",
    "redelivery_s",
    "stop_s_for",
]

STOP_MARGIN_S: Final = 2.0
"""A stop outlasts the bus's redelivery timeout by this much, so the bus has given up on
the frozen consumer before it thaws."""

RECOVERY_TIMEOUT_S: Final = 120.0


def redelivery_s(bus: str) -> float:
    """How long the bus waits for a silent consumer before it hands out again what that
    consumer held: JetStream's ack wait; on Kafka the consumer group's session timeout,
    after which the member is dropped and its uncommitted records are read again."""
    if bus == "kafka":
        from services.common.kafka_bus import SESSION_TIMEOUT_S  # late: loads confluent-kafka

        return SESSION_TIMEOUT_S
    return ACK_WAIT_S


def stop_s_for(bus: str) -> float:
    """How long a `stop` freezes its node on this bus: past the redelivery timeout."""
    return redelivery_s(bus) + STOP_MARGIN_S


STOP_S: Final = stop_s_for("nats")
"""The stop on a NATS stack (32 s: past the 30 s ack wait)."""


def parse_faults(text: str) -> tuple[str, ...]:
    """`kill,stop` → ("kill", "stop"); an empty text means no faults (a baseline run)."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        raise UsageError(
            f"--faults: unknown fault {unknown[0]!r}",
            f"use a comma-separated list of: {', '.join(FAULTS)} (or '' for none)",
        )
    return names


@dataclass(frozen=True)
class FaultPlan:
    """One planned fault: wait `after_s` after the previous one recovered, then inject."""

    after_s: float
    fault: str
    node: str


def plan_faults(
    seed: int,
    faults: Sequence[str],
    *,
    every_s: float,
    bus: str = "nats",
    count: int = 10_000,
) -> list[FaultPlan]:
    """The run's faults on a stack of `bus`: every node gets every fault before any gets
    one twice."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible plan, not a secret
    nodes = [n.name for n in topology.for_bus(bus).runtime_nodes()]
    pairs = [(fault, node) for fault in faults for node in nodes]
    plan: list[FaultPlan] = []
    while pairs and len(plan) < count:
        round_ = pairs[:]
        rng.shuffle(round_)
        for fault, node in round_:
            plan.append(FaultPlan(rng.uniform(0.5 * every_s, 1.5 * every_s), fault, node))
    return plan[:count]


@dataclass
class FaultRecord:
    """One injected fault and how long the stack took to be whole again."""

    fault: str
    node: str
    at_s: float
    """Seconds into the run when it was injected."""
    target: str = ""
    """What the runtime hit: `pid 4242`, `pod gateway-…`."""
    held_s: float = 0.0
    """How long a stopped node stayed frozen."""
    recovery_s: float | None = None
    """From the end of the fault (kill, restart: injection; stop: resume) to every node ready;
    None when the stack was not whole again within the recovery timeout."""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "fault": self.fault,
            "node": self.node,
            "at_s": round(self.at_s, 3),
            "target": self.target,
            "held_s": round(self.held_s, 3),
            "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 3),
            "error": self.error or None,
        }


@dataclass
class Injector:
    """Injects the planned faults one after another while `load_running()` is true."""

    runtime: Runtime
    plan: list[FaultPlan]
    started: float
    stop_s: float = STOP_S
    on_fault: Callable[[FaultRecord], None] = lambda _: None
    records: list[FaultRecord] = field(default_factory=list)
    _halt: threading.Event = field(default_factory=threading.Event)
    _abort: threading.Event = field(default_factory=threading.Event)

    def halt(self, *, at_once: bool = False) -> None:
        """Inject no more faults; a freeze under way runs its course unless `at_once`
        (Ctrl-C), and a frozen node is always resumed."""
        self._halt.set()
        if at_once:
            self._abort.set()

    def run(self) -> None:
        for step in self.plan:
            if self._halt.wait(step.after_s):
                return
            record = FaultRecord(step.fault, step.node, time.monotonic() - self.started)
            self.records.append(record)
            try:
                self._inject(step, record)
            except KdemoError as exc:
                # e.g. the node was still coming back from the previous fault: note it, go on
                record.error = exc.message
            self.on_fault(record)

    def _inject(self, step: FaultPlan, record: FaultRecord) -> None:
        before = _identity(self.runtime, step.node)
        if step.fault == "kill":
            record.target = self.runtime.kill(step.node)
        elif step.fault == "restart":
            record.target = self.runtime.restart(step.node)
        else:
            record.target = self.runtime.pause(step.node)
            frozen = time.monotonic()
            try:
                self._abort.wait(self.stop_s)
            finally:
                self.runtime.resume(step.node)
                record.held_s = time.monotonic() - frozen
        begun = time.monotonic()
        if step.fault != "stop":
            wait_replaced(self.runtime, step.node, before)
        whole = wait_whole(self.runtime)
        record.recovery_s = None if whole is None else time.monotonic() - begun

    def thread(self) -> threading.Thread:
        return threading.Thread(target=self.run, name="kdemo-chaos-faults", daemon=True)


def _identity(runtime: Runtime, node: str) -> object:
    """What distinguishes this incarnation of the node: its pid, or its pods' names."""
    for status in runtime.status():
        if status.name == node:
            return (
                status.pid
                if status.pods is None
                else sorted(str(p.get("name")) for p in status.pods)
            )
    return None


def wait_replaced(runtime: Runtime, node: str, before: object, timeout_s: float = 30.0) -> None:
    """Wait until the node hit is no longer the one that was running (a clean stop takes a
    moment, and until then the old process still answers its readiness probe)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if _identity(runtime, node) != before:
                return
        except KdemoError:
            pass
        time.sleep(0.05)


def wait_whole(runtime: Runtime, timeout_s: float = RECOVERY_TIMEOUT_S) -> float | None:
    """Seconds until every node reports ready again (None after `timeout_s`)."""
    begun = time.monotonic()
    while time.monotonic() - begun < timeout_s:
        try:
            if all(node.ready for node in runtime.status()):
                return time.monotonic() - begun
        except KdemoError:
            pass  # the runtime's own view is being rebuilt (a pod list, a state file)
        time.sleep(0.1)
    return None
