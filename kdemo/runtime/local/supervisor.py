"""The supervisor: one detached process that starts the stack in order and keeps it running.

    python -m kdemo.runtime.local.supervisor --state-dir DIR

Starts postgres and the bus (nats, or kafka for `--bus kafka`), then the services
(creating roles, databases, the stream and the durables, or the Kafka topics, users and
ACLs on the way), restarts any child that exits with exponential backoff, and records
every child in `supervisor.json`. SIGTERM stops the services, then the bus and postgres,
and exits.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from kdemo.runtime.busadmin import BusAccess, ensure_stream, intent_ttl, run_sync
from kdemo.runtime.kafkabroker import ADMIN_USER as KAFKA_ADMIN
from kdemo.runtime.local.nodes import (
    NodeSpec,
    kafka_of,
    nats_of,
    node_specs,
    postgres_of,
    stages,
)
from kdemo.runtime.local.postgres import ensure_roles
from kdemo.runtime.local.procs import process_start_time, spawn
from kdemo.runtime.local.secrets import load_secrets
from kdemo.runtime.local.state import SUPERVISOR_FILE, log_path
from kdemo.runtime.natsconfig import ADMIN_USER
from kdemo.runtime.secrets import Secrets
from kdemo.runtime.stackfile import STACK_FILE, load_stack
from kdemo.runtime.statedir import write_json

__all__ = ["BACKOFF_CAP_S", "BACKOFF_START_S", "HEALTHY_RESET_S", "Supervisor", "main"]

BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 10.0
HEALTHY_RESET_S = 30.0
STOP_GRACE_S = 3.0
STOP_GRACE: dict[str, float] = {"kafka": 10.0}
"""Nodes that need longer to stop cleanly: the broker flushes and closes its logs (measured
0.8 to 2.8 s here); killed, it recovers its logs at the next start."""
STORE_FAILED = b"Critical write error"
"""What nats-server logs when its file store fails a write (a full disk)."""
MIN_FREE_BYTES = 4 << 20
"""Free space the bus's disk needs before nats is restarted after that."""


def _log(msg: str, **fields: Any) -> None:
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "msg": msg, **fields}
    print(json.dumps(line), flush=True)


@dataclass
class Child:
    spec: NodeSpec
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    state: str = "pending"
    """pending (not started yet), preparing (its data is being set up in a thread), running,
    restarting (waiting out its backoff), stopped."""
    restarts: int = 0
    backoff: float = BACKOFF_START_S
    started_mono: float = 0.0
    started_wall: float | None = None
    next_start: float = 0.0
    last_exit: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    preparing: concurrent.futures.Future[None] | None = None
    """Setting up the node's data before its first start (the broker's storage format)."""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def to_json(self) -> dict[str, Any]:
        pid = self.proc.pid if self.proc is not None and self.alive() else None
        return {
            "pid": pid,
            "pgid": pid,
            "state": self.state,
            "restarts": self.restarts,
            "started_at": self.started_wall,
            "last_exit": self.last_exit,
            "start_ticks": process_start_time(pid) if pid else None,
        }


class Supervisor:
    def __init__(self, state_dir: Path, *, secrets: Secrets | None = None) -> None:
        self.state_dir = state_dir
        stack = load_stack(state_dir)
        if stack is None:
            raise SystemExit(f"no {STACK_FILE} in {state_dir}")
        self.stack = stack
        self.secrets = secrets or load_secrets(state_dir)
        specs = node_specs(state_dir, stack, self.secrets, dict(os.environ))
        self.children = {
            name: Child(spec, log_path(state_dir, name)) for name, spec in specs.items()
        }
        self.stages = [[n for n in stage if n in self.children] for stage in stages(stack.bus)]
        self.hooks: dict[str, Callable[[], None]] = {
            "postgres": self._prepare_databases,
            "nats": self._prepare_stream,
            "kafka": self._provision_kafka,
        }
        self.stopping = False
        self.phase = "starting"
        self.prepared: set[str] = set()
        self.nats_log_read = 0
        """How much of nats' log `_watch_nats_store` has read (it starts at nats' start)."""
        """Nodes that are ready and whose preparation (roles, stream) is done."""
        self.started_wall = time.time()
        self.workers = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prepare")
        """Slow set-up (a JVM run) off the loop, which keeps supervising the other nodes."""

    # -- hooks run once their node is ready -------------------------------------------

    def _prepare_databases(self) -> None:
        ensure_roles(
            postgres_of(self.state_dir, self.stack, self.secrets), self.secrets.db_passwords
        )

    def _prepare_stream(self) -> None:
        url = nats_of(self.state_dir, self.stack, self.secrets).url
        access = BusAccess(url, ADMIN_USER, self.secrets.nats_passwords[ADMIN_USER])
        run_sync(ensure_stream(access, ttl_s=intent_ttl()))

    def _provision_kafka(self) -> None:
        """Topics, SCRAM users and ACLs from the topology, before any service starts
        (`kafkaadmin.provision` is idempotent: a restart changes nothing)."""
        from kdemo.runtime import kafkaadmin  # late: confluent-kafka only for a Kafka stack

        broker = kafka_of(self.state_dir, self.stack, self.secrets)
        report = run_sync(
            kafkaadmin.provision(
                broker.bootstrap,
                self.secrets.kafka_passwords[KAFKA_ADMIN],
                self.secrets.kafka_passwords,
            )
        )
        _log(
            "kafka provisioned",
            node="kafka",
            topics_created=report.topics_created,
            users_upserted=report.users_upserted,
            acls_created=report.acls_created,
            acls_deleted=report.acls_deleted,
        )

    # -- child management --------------------------------------------------------------

    def write_state(self) -> None:
        me = os.getpid()
        write_json(
            self.state_dir / SUPERVISOR_FILE,
            {
                "supervisor": {
                    "pid": me,
                    "start_ticks": process_start_time(me),
                    "started_at": self.started_wall,
                    "phase": self.phase,
                    "prepared": sorted(self.prepared),
                },
                "nodes": {name: child.to_json() for name, child in self.children.items()},
            },
        )

    def start(self, child: Child) -> None:
        spec = child.spec
        if spec.name == "nats":
            nats_of(self.state_dir, self.stack, self.secrets).write_config()
            with contextlib.suppress(OSError):
                self.nats_log_read = child.log.stat().st_size
        if spec.name == "postgres":
            postgres_of(self.state_dir, self.stack, self.secrets).initdb()
        if spec.name == "kafka" and not self._kafka_storage_ready(child):
            return  # formatting in a thread, or failed: tick() comes back to it
        try:
            child.proc = spawn(
                spec.argv, env=spec.env, log=child.log, cwd=spec.cwd, user=spec.uid, group=spec.gid
            )
        except OSError as exc:
            _log("cannot start", node=spec.name, error=str(exc))
            self._schedule_restart(child)
            return
        child.state = "running"
        child.started_mono = time.monotonic()
        child.started_wall = time.time()
        _log("started", node=spec.name, pid=child.proc.pid)
        self.write_state()

    def _kafka_storage_ready(self, child: Child) -> bool:
        """Whether the broker's storage is formatted. The first format runs a JVM for
        seconds: it runs in a worker thread while the loop goes on (postgres starts, the
        others are watched), and the broker is started by the tick after it finished."""
        broker = kafka_of(self.state_dir, self.stack, self.secrets)
        if child.preparing is None:
            try:
                broker.write_config()
            except OSError as exc:
                return self._kafka_format_failed(child, exc)
            if broker.formatted():
                return True
            child.preparing = self.workers.submit(broker.format_storage)
            child.state = "preparing"
            _log("formatting the kafka storage", node="kafka")
            self.write_state()
            return False
        if not child.preparing.done():
            return False
        error = child.preparing.exception()
        child.preparing = None
        if error is not None:
            return self._kafka_format_failed(child, error)
        return True

    def _kafka_format_failed(self, child: Child, exc: BaseException) -> bool:
        _log("cannot format the kafka storage", node="kafka", error=str(exc))
        with contextlib.suppress(OSError), child.log.open("a") as out:
            out.write(f"kdemo: cannot format the Kafka storage: {exc}\n")  # for `up`
        self._schedule_restart(child)
        self.write_state()
        return False

    def _watch_nats_store(self) -> None:
        """Restart nats once its disk has room again after its store failed a write.

        nats-server then refuses every write to the stream until it restarts, and publishers
        only see timeouts: the outboxes keep the events, but nothing would ever drain them.
        """
        child = self.children.get("nats")
        if child is None or child.proc is None or not child.alive():
            return
        try:
            with child.log.open("rb") as fh:
                fh.seek(self.nats_log_read)
                new = fh.read()
        except OSError:
            return
        if STORE_FAILED not in new:
            self.nats_log_read += new.rfind(b"\n") + 1  # whole lines only
            return
        store = nats_of(self.state_dir, self.stack, self.secrets).root
        if shutil.disk_usage(store).free < MIN_FREE_BYTES:
            return  # read again next time, until there is space
        _log("restarting nats: its store failed a write and there is space again", node="nats")
        self.nats_log_read += len(new)
        child.proc.send_signal(child.spec.stop_signal)  # tick() restarts it

    def _schedule_restart(self, child: Child) -> None:
        child.state = "restarting"
        child.next_start = time.monotonic() + child.backoff
        child.backoff = min(child.backoff * 2, BACKOFF_CAP_S)

    def tick(self) -> None:
        """Reap exited children, restart those whose backoff is over."""
        self._watch_nats_store()
        now = time.monotonic()
        changed = False
        for child in self.children.values():
            if child.state == "running" and child.proc is not None:
                code = child.proc.poll()
                if code is None:
                    if now - child.started_mono >= HEALTHY_RESET_S:
                        child.backoff = BACKOFF_START_S
                    continue
                # Whatever it left in its process group (postgres backends) goes too.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                child.last_exit = code
                _log("exited", node=child.spec.name, code=code, restart_in=child.backoff)
                self._schedule_restart(child)
                changed = True
            elif child.state == "restarting" and now >= child.next_start:
                child.restarts += 1
                self.start(child)
            elif child.state == "preparing" and child.preparing and child.preparing.done():
                self.start(child)
        if changed:
            self.write_state()

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def bring_up(self) -> None:
        # Start every process at once: the services' imports take longer than PostgreSQL's
        # start-up, and they wait for their dependencies themselves. Readiness (and the
        # preparation hooks) still go stage by stage. Not on Kafka: its topics, users and
        # ACLs are made once the broker is ready, and a service started before would be
        # refused them (the broker is slower to start than any import, so nothing is lost).
        together = "kafka" not in self.children
        if together:
            for stage in self.stages:
                for name in stage:
                    self.start(self.children[name])
        for stage in self.stages:
            if not together and not self.stopping:
                for name in stage:
                    self.start(self.children[name])
            pending = set(stage)
            while pending and not self.stopping:
                self.tick()
                for name in sorted(pending):
                    child = self.children[name]
                    if child.state != "running" or not child.spec.probe():
                        continue
                    hook = self.hooks.get(name)
                    try:
                        if hook is not None:
                            hook()
                    except Exception as exc:
                        _log("preparing failed, retrying", node=name, error=repr(exc))
                        continue
                    _log("ready", node=name)
                    pending.discard(name)
                    self.prepared.add(name)
                    self.write_state()
                self._sleep(0.1)
        self.phase = "running"
        self.write_state()

    def run(self) -> None:
        self.write_state()
        self.bring_up()
        while not self.stopping:
            self.tick()
            self._sleep(0.2)
        self.shutdown()

    def shutdown(self) -> None:
        self.phase = "stopping"
        self.write_state()
        # A format still running is let finish (its JVM is ours): a half-formatted data
        # directory would be removed and formatted again at the next start anyway.
        self.workers.shutdown(wait=True)
        for stage in reversed(self.stages):
            group = [self.children[n] for n in stage]
            for child in group:
                if child.alive() and child.proc is not None:
                    _log("stopping", node=child.spec.name, pid=child.proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        child.proc.send_signal(child.spec.stop_signal)
            # (default: a stack that runs some nodes only can have an empty stage)
            grace = max((STOP_GRACE.get(c.spec.name, STOP_GRACE_S) for c in group), default=0.0)
            deadline = time.monotonic() + grace
            while any(c.alive() for c in group) and time.monotonic() < deadline:
                time.sleep(0.05)
            for child in group:
                if child.proc is not None:
                    # The leader and anything left in its group.
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.proc.pid, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.proc.wait(timeout=2)
                child.state = "stopped"
        self.phase = "stopped"
        self.write_state()
        _log("stopped")

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        _log("stop requested", signal=signal.Signals(signum).name)
        self.stopping = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdemo.runtime.local.supervisor")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument(
        "--detach",
        action="store_true",
        help="fork and return at once: the caller need not reap the supervisor",
    )
    args = parser.parse_args(argv)
    if args.detach and os.fork() > 0:
        os._exit(0)
    supervisor = Supervisor(args.state_dir.absolute())
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # detached: a closing terminal is no reason
    _log("supervisor started", pid=os.getpid(), state_dir=str(args.state_dir))
    supervisor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
