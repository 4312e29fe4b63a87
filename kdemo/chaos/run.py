"""`run_chaos`: the load and the faults together, then the audit, as one report."""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from kdemo.chaos.audit import Audit, audit_run, wait_settled
from kdemo.chaos.driver import FlowRecord, LoadPlan, drive, summary
from kdemo.chaos.faults import FaultRecord, Injector, plan_faults, stop_s_for, wait_whole
from kdemo.errors import KdemoError
from kdemo.runtime.base import Runtime

__all__ = ["ChaosOptions", "ChaosReport", "run_chaos"]

SETTLE_S: Final = 120.0
"""After the last flow: time for redeliveries (up to the bus's redelivery timeout) to reach
the ledger."""


@dataclass(frozen=True)
class ChaosOptions:
    flows: int = 100
    rate: float = 5.0
    faults: tuple[str, ...] = ("kill", "stop", "restart")
    seed: int = 1
    every_s: float = 4.0
    """Mean pause between one fault's recovery and the next fault."""
    stop_s: float | None = None
    """How long a stop freezes its node; None: past the stack's bus's redelivery timeout
    (`faults.stop_s_for`)."""
    settle_s: float = SETTLE_S


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class ChaosReport:
    options: ChaosOptions
    repo: str
    records: list[FlowRecord]
    faults: list[FaultRecord]
    audit: Audit
    seconds: float
    settle_s: float
    problems: list[str] = field(default_factory=list)
    """Flows that did not complete, faults the stack did not recover from."""
    bus: str = "nats"
    stop_s: float = 0.0
    """How long each stop froze its node."""

    @property
    def ok(self) -> bool:
        return self.audit.ok and not self.problems

    def stages(self) -> dict[str, dict[str, float | None]]:
        samples: dict[str, list[float]] = {"comment": [], "sign": [], "link": []}
        for record in self.records:
            for stage, seconds in record.stage_s.items():
                samples[stage].append(seconds)
        samples["record"] = self.audit.record_s
        return {
            stage: {
                "count": len(values),
                "p50_ms": _ms(percentile(values, 50)),
                "p99_ms": _ms(percentile(values, 99)),
            }
            for stage, values in samples.items()
        }

    def to_json(self) -> dict[str, Any]:
        recoveries = [f.recovery_s for f in self.faults if f.recovery_s is not None]
        return {
            "ok": self.ok,
            "flows": len(self.records),
            "rate": self.options.rate,
            "seed": self.options.seed,
            "bus": self.bus,
            "repo": self.repo,
            "seconds": round(self.seconds, 3),
            "settle_s": round(self.settle_s, 3),
            "outcomes": summary(self.records),
            "faults": {
                "injected": len(self.faults),
                "kinds": list(self.options.faults),
                "stop_s": round(self.stop_s, 3),
                "recovery_s": {
                    "p50": _round(percentile(recoveries, 50)),
                    "max": _round(max(recoveries, default=None)),
                },
                "list": [f.to_json() for f in self.faults],
            },
            "lost": self.audit.count("lost"),
            "doubled": self.audit.count("doubled"),
            "recorded_refused": self.audit.count("recorded-refused"),
            "dead_lettered": len(self.audit.dead_letters),
            "copies": dict(self.audit.copies),
            "unanswered_intents": self.audit.unanswered_intents,
            "checked": dict(self.audit.checked),
            "findings": [f.to_json() for f in self.audit.findings],
            "dead_letters": self.audit.dead_letters,
            "stages": self.stages(),
            "problems": self.problems,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def run_chaos(
    runtime: Runtime,
    options: ChaosOptions,
    *,
    progress: Callable[[str], None] = lambda _: None,
    on_fault: Callable[[FaultRecord], None] = lambda _: None,
    on_flow: Callable[[FlowRecord], None] = lambda _: None,
) -> ChaosReport:
    """Drive the flows while injecting faults, wait for the stack to settle, audit it."""
    if wait_whole(runtime, timeout_s=30.0) is None:
        raise KdemoError("the stack is not whole: some nodes are not ready", "see `kdemo status`")
    _check_faults_supported(runtime, options.faults)
    bus = runtime.bus()
    stop_s = options.stop_s if options.stop_s is not None else stop_s_for(bus)
    run_id = secrets.token_hex(4)
    repo = f"chaos/run-{run_id}"
    plan = LoadPlan(
        flows=options.flows,
        rate=options.rate,
        repo=repo,
        run_id=run_id,
        seed=options.seed,
        webhook_secret=runtime.webhook_secret(),
        urls=runtime.public_urls(),
    )
    started = time.monotonic()
    injector = Injector(
        runtime,
        plan_faults(options.seed, options.faults, every_s=options.every_s, bus=bus),
        started,
        stop_s=stop_s,
        on_fault=on_fault,
    )
    faults = injector.thread()
    stop = threading.Event()
    faults.start()
    try:
        progress(f"driving {options.flows} flows at {options.rate:g}/s with faults")
        records = drive(plan, on_flow=on_flow, stop=stop)
    except BaseException:
        stop.set()
        injector.halt(at_once=True)
        raise
    finally:
        injector.halt()
        faults.join()  # a frozen node is resumed before this returns
    problems: list[str] = []
    progress("waiting for every node to be ready")
    if wait_whole(runtime) is None:
        problems.append("the stack was not whole again after the last fault")
    progress("waiting for the ledger to settle")
    settle = wait_settled(runtime, repo, records, timeout_s=options.settle_s, progress=progress)
    progress("auditing the ledger, the services' tables and the stream")
    audit = audit_run(runtime, repo, records)
    incomplete = [r for r in records if not r.complete]
    for record in incomplete[:10]:
        problems.append(
            f"flow {record.index} did not complete (comment {record.comment}, "
            f"signature {record.signed}, link {record.link}): {record.error}"
        )
    if len(incomplete) > 10:
        problems.append(f"... and {len(incomplete) - 10} more flows did not complete")
    problems += [
        f"{f.fault} {f.node} at {f.at_s:.1f} s: the stack was not whole again"
        for f in injector.records
        if f.recovery_s is None and not f.error
    ]
    return ChaosReport(
        options,
        repo,
        records,
        injector.records,
        audit,
        time.monotonic() - started,
        settle,
        problems,
        bus,
        stop_s,
    )


def _check_faults_supported(runtime: Runtime, faults: tuple[str, ...]) -> None:
    """Fail before the run, not halfway: every fault asked for and the audit's reads."""
    runtime.query("ledger", "SELECT 1")
    needs = {"restart": ["restart"], "stop": ["pause", "resume"], "kill": ["kill"]}
    for fault in faults:
        for method in needs[fault]:
            if getattr(type(runtime), method) is getattr(Runtime, method):
                raise KdemoError(
                    f"the {runtime.name} runtime cannot inject {fault!r} faults",
                    "leave it out of --faults, or run chaos on the local or kind runtime",
                )
