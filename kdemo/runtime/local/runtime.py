"""`LocalRuntime`: the stack as processes on this machine, owned by one detached supervisor."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kdemo import topology
from kdemo.errors import KdemoError, NotReady, StackNotUp, UsageError
from kdemo.runtime.base import (
    DeadLetter,
    NodeState,
    NodeStatus,
    Progress,
    Runtime,
    TapEvent,
    node_kind,
    query_refused,
)
from kdemo.runtime.buses import BUSES, DEFAULT_BUS, all_node_names, check_bus, node_of
from kdemo.runtime.local.env import public_urls
from kdemo.runtime.local.nats import nats_root
from kdemo.runtime.local.nodes import (
    NodeSpec,
    kafka_root,
    node_specs,
    node_url,
    postgres_of,
    probe_port,
    stages,
    wanted_nodes,
)
from kdemo.runtime.local.procs import (
    MARKER_ENV,
    kill_owned,
    owned_pids,
    pid_alive,
    process_start_time,
)
from kdemo.runtime.local.secrets import SECRETS_FILE, load_or_create_secrets, load_secrets
from kdemo.runtime.local.state import SUPERVISOR_FILE, log_path, stack_id
from kdemo.runtime.natsconfig import ADMIN_USER, TAP_USER
from kdemo.runtime.ports import HOST, allocate_ports, check_ports_free
from kdemo.runtime.secrets import Secrets
from kdemo.runtime.settings import intent_ttl
from kdemo.runtime.stackfile import (
    StackRecord,
    delete_stack,
    has_stack,
    load_stack,
    require_stack,
    save_stack,
)
from kdemo.runtime.statedir import read_json

if TYPE_CHECKING:
    from kdemo.runtime import busadmin
    from kdemo.runtime.kafkaadmin import KafkaAccess

__all__ = ["READY_TIMEOUT_S", "LocalRuntime"]

READY_TIMEOUT_S = 60.0
_T = TypeVar("_T")
DOWN_TIMEOUT_S = 10.0
# A clean stop per node: SIGTERM is postgres' "smart" shutdown, which waits for every
# client (the services' pools) to leave; SIGINT is its "fast" one.
CLEAN_STOP: dict[str, signal.Signals] = {"postgres": signal.SIGINT}


def _probe_all(specs: dict[str, NodeSpec]) -> dict[str, bool]:
    """Each node's readiness probe, all at once: each waits on its node's answer (a
    subprocess or a socket), so `status` takes as long as the slowest, not the sum."""
    from concurrent.futures import ThreadPoolExecutor  # late: only a running stack is probed

    if not specs:
        return {}
    with ThreadPoolExecutor(len(specs), thread_name_prefix="probe") as pool:
        futures = {name: pool.submit(spec.probe) for name, spec in specs.items()}
        return {name: future.result() for name, future in futures.items()}


class LocalRuntime(Runtime):
    """The default runtime: PostgreSQL, the bus (nats-server, or a Kafka broker) and the
    services as local processes.

    `nodes` and `commands` are recorded in stack.json at the first `up`: which nodes
    to run (default all) and replacement commands for services (argv lists). `bus` is the
    bus `up` brings the stack up on (None: the recorded one, else nats); a running stack
    keeps its bus.
    """

    name = "local"

    def __init__(
        self,
        state_dir: Path,
        *,
        nodes: Sequence[str] | None = None,
        commands: dict[str, list[str]] | None = None,
        ready_timeout: float = READY_TIMEOUT_S,
        bus: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.wanted_bus = check_bus(bus) if bus is not None else None
        self.nodes = list(nodes) if nodes is not None else None
        self.commands = commands
        self.ready_timeout = ready_timeout

    # -- files ---------------------------------------------------------------------------

    def _stack(self) -> StackRecord:
        return require_stack(self.state_dir)

    def _supervisor_state(self) -> dict[str, Any]:
        return read_json(self.state_dir / SUPERVISOR_FILE) or {}

    def _secrets(self) -> Secrets:
        return load_secrets(self.state_dir)

    def _stack_id(self) -> str:
        return stack_id(self.state_dir)

    def _pg_dirs(self) -> list[Path]:
        stack = load_stack(self.state_dir)
        root = stack.postgres_dir if stack is not None else None
        return [Path(root) / "data"] if root else []

    def _supervisor_pid(self) -> int | None:
        """The supervisor's pid, only if that process is still the one we started."""
        info = self._supervisor_state().get("supervisor") or {}
        pid = info.get("pid")
        if not isinstance(pid, int) or not pid_alive(pid):
            return None
        if process_start_time(pid) != info.get("start_ticks"):
            return None  # the pid was reused by an unrelated process
        return pid

    # -- lifecycle -------------------------------------------------------------------------

    def is_up(self) -> bool:
        return has_stack(self.state_dir) and self._supervisor_pid() is not None

    def bus(self) -> str:
        stack = load_stack(self.state_dir)
        return stack.bus if stack is not None else (self.wanted_bus or DEFAULT_BUS)

    def up(self, progress: Progress) -> dict[str, str]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.is_up():
            self._refuse_other_bus(self._stack().bus)
        secrets = load_or_create_secrets(self.state_dir)
        if self.is_up():
            self._wait_ready(progress)
            return self.public_urls()
        try:
            self._start(progress, secrets)
            self._wait_ready(progress)
        except BaseException:  # Ctrl-C too
            # Half a stack only holds ports and hides the failure: stop what this call started.
            if self.owned_processes():
                progress("up failed: stopping what it started (data kept)")
            self.down()
            raise
        return self.public_urls()

    def _refuse_other_bus(self, running: str) -> None:
        wanted = self.wanted_bus
        if wanted is not None and wanted != running:
            raise UsageError(
                f"the stack in {self.state_dir} runs on {running}, not {wanted}: "
                "a running stack keeps its bus",
                f"run `kdemo down` first, then `kdemo up --bus {wanted}` (data is kept), "
                "or use another KDEMO_STATE_DIR",
            )

    def _prepare_kafka(self, progress: Progress) -> None:
        """The broker's jars (fetched once, ~40 s the first time) and Java 17+, checked
        before the supervisor starts: it would only retry a broker that cannot start."""
        from kdemo.runtime.kafkabroker import cached, default_cache_dir, fetch_kafka, find_java

        find_java()
        if not cached(default_cache_dir()):
            progress("fetching the Kafka jars with mvn (once; about 40 s)")
        fetch_kafka()

    def _start(self, progress: Progress, secrets: Secrets) -> None:
        # Leftovers of a crashed earlier run would hold ports or the data directory.
        kill_owned(self._stack_id(), self._pg_dirs())
        old = load_stack(self.state_dir) or StackRecord(runtime="local")
        if old.runtime != "local":
            raise UsageError(
                f"the stack in {self.state_dir} uses the {old.runtime} runtime",
                "run `kdemo down` first, or use another KDEMO_STATE_DIR",
            )
        bus = self.wanted_bus or old.bus
        ports = allocate_ports(old.ports, bus=bus)
        check_ports_free(ports)
        intent_ttl()  # the supervisor needs it for the stream: refuse a bad one now
        if bus == "kafka":
            self._prepare_kafka(progress)
        progress("preparing the database")
        # Late: psycopg, which `status` and the other commands that only read the stack's
        # files do not need.
        from kdemo.runtime.local.postgres import pg_cluster, postgres_root, template_cache_dir

        root = postgres_root(self.state_dir, old.postgres_dir)
        cluster = pg_cluster(
            self.state_dir,
            ports["postgres"],
            secrets.postgres_password,
            root,
            template_cache_dir(),  # a new stack's data is a copy of initdb's, made once
        )
        stack = StackRecord(
            runtime="local",
            urls=public_urls(ports),
            ports=ports,
            postgres_dir=str(cluster.root),
            nats_dir=str(nats_root(self.state_dir, old.nats_dir)),
            kafka_dir=(
                str(kafka_root(self.state_dir, old.kafka_dir)) if bus == "kafka" else old.kafka_dir
            ),
            bus=bus,
            nodes=tuple(self.nodes) if self.nodes is not None else old.nodes,
            commands=self.commands if self.commands is not None else old.commands,
        )
        save_stack(self.state_dir, stack)
        if "postgres" in (stack.nodes or ["postgres"]):
            # A server left on this data by a lost state directory would lock it.
            kill_owned(self._stack_id(), [cluster.data_dir])
            cluster.prepare()
        progress("starting the supervisor")
        log = log_path(self.state_dir, "supervisor")
        log.parent.mkdir(parents=True, exist_ok=True)
        (self.state_dir / SUPERVISOR_FILE).unlink(missing_ok=True)
        env = {**os.environ, MARKER_ENV: self._stack_id()}
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kdemo.runtime.local.supervisor",
                    "--state-dir",
                    str(self.state_dir),
                    "--detach",
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.state_dir,
            )
            # The launcher forks the supervisor and exits at once; the supervisor lives on,
            # adopted by init, so no process of ours has to reap it.
            if proc.wait(timeout=30) != 0:
                raise KdemoError(
                    "the supervisor could not start: " + self._tail("supervisor"), f"see {log}"
                )
        deadline = time.monotonic() + 15
        while self._supervisor_pid() is None:
            if time.monotonic() > deadline:
                raise KdemoError(
                    "the supervisor did not start: " + self._tail("supervisor"), f"see {log}"
                )
            time.sleep(0.05)

    def _wanted(self) -> list[str]:
        return wanted_nodes(self._stack())

    def _wait_ready(self, progress: Progress) -> None:
        stack = self._stack()
        specs = node_specs(self.state_dir, stack, self._secrets(), dict(os.environ))
        wanted = self._wanted()
        for name in [n for stage in stages(stack.bus) for n in stage if n in wanted]:
            progress(f"waiting for {name}…")
            # The broker is a JVM: 15-25 s to start on a small machine, then provisioning.
            timeout = self.ready_timeout * (3 if name == "kafka" else 1)
            deadline = time.monotonic() + timeout
            while not self._node_ready(name, specs[name].probe):
                nodes = self._supervisor_state().get("nodes") or {}
                for other in wanted:  # any node, not only this one: services start together
                    if (nodes.get(other) or {}).get("last_exit") == 2:  # a bad setting
                        raise NotReady(
                            other,
                            f"{other} refused its settings: {self._tail(other, 1)}",
                            "fix or unset the variable it names, then run `kdemo up` again",
                        )
                if self._supervisor_pid() is None:
                    raise KdemoError(
                        "the supervisor stopped while starting the stack: "
                        + self._tail("supervisor"),
                        f"see {log_path(self.state_dir, 'supervisor')}",
                    )
                if time.monotonic() > deadline:
                    raise NotReady(
                        name,
                        f"{name} did not become ready within {timeout:.0f} s; "
                        f"last log lines:\n{self._tail(name)}",
                        f"see `kdemo logs {name}`, then run `kdemo up` again",
                    )
                time.sleep(0.1)

    def _node_ready(self, name: str, probe: Any) -> bool:
        node = (self._supervisor_state().get("nodes") or {}).get(name) or {}
        # Databases and stream are prepared only after the probe: follow the supervisor.
        return bool(node.get("state") == "running" and probe() and self._stage_passed(name))

    def _stage_passed(self, name: str) -> bool:
        """PostgreSQL and the bus count as ready once the supervisor prepared them too."""
        if name not in ("postgres", *BUSES):
            return True
        info = self._supervisor_state().get("supervisor") or {}
        return info.get("phase") == "running" or name in (info.get("prepared") or [])

    def down(self, *, purge: bool = False, progress: Progress | None = None) -> str:
        say = progress or (lambda _msg: None)
        pid = self._supervisor_pid()
        if pid is not None:
            say("stopping the stack")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + DOWN_TIMEOUT_S
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        # Whatever survived (or was orphaned by a killed supervisor) is killed here.
        kill_owned(self._stack_id(), self._pg_dirs())
        (self.state_dir / SUPERVISOR_FILE).unlink(missing_ok=True)
        if not purge:
            return "data kept"
        say("deleting data and secrets")
        self._purge()
        return "data and secrets deleted"

    def _purge(self) -> None:
        stack = load_stack(self.state_dir)
        # KDEMO_DATA_DIR may have put the data elsewhere.
        kept_dirs = (stack.postgres_dir, stack.nats_dir, stack.kafka_dir) if stack else ()
        for kept in kept_dirs:
            if kept:
                shutil.rmtree(kept, ignore_errors=True)
        for name in ("postgres", "nats", "kafka", "logs"):
            shutil.rmtree(self.state_dir / name, ignore_errors=True)
        delete_stack(self.state_dir)
        for name in (SECRETS_FILE, SUPERVISOR_FILE):
            (self.state_dir / name).unlink(missing_ok=True)

    # -- reports ---------------------------------------------------------------------------

    def status(self) -> list[NodeStatus]:
        stack = self._stack()
        ports = stack.ports
        running = self._supervisor_pid() is not None
        nodes = self._supervisor_state().get("nodes") or {}
        specs = (
            node_specs(self.state_dir, stack, self._secrets(), dict(os.environ)) if running else {}
        )
        probed = _probe_all(
            {
                name: spec
                for name, spec in specs.items()
                if (nodes.get(name) or {}).get("state") == "running"
            }
        )
        rows = []
        for name in self._wanted():
            info = nodes.get(name) or {}
            recorded = info.get("state", "pending")
            ready = False
            state: NodeState
            if not running or recorded == "stopped":
                state = "down"
            elif recorded == "restarting":
                state = "restarting"
            elif recorded == "running" and probed.get(name, False):
                state, ready = "ready", True
            else:
                state = "starting"
            started = info.get("started_at")
            uptime = max(0.0, time.time() - started) if started and state != "down" else 0.0
            rows.append(
                NodeStatus(
                    name=name,
                    kind=node_kind(node_of(name).kind),
                    url=node_url(name, ports),
                    ready=ready,
                    state=state,
                    uptime_s=uptime,
                    restarts=int(info.get("restarts", 0)),
                    pid=info.get("pid") if state != "down" else None,
                )
            )
        return rows

    def _check_node(self, node: str) -> None:
        stack = load_stack(self.state_dir)
        valid = wanted_nodes(stack) if stack is not None else all_node_names()
        if node not in valid and node != "supervisor":
            raise UsageError(f"unknown node {node!r}", f"use one of: {', '.join(valid)}")

    def _tail(self, node: str, lines: int = 20) -> str:
        path = log_path(self.state_dir, node)
        try:
            with path.open(errors="replace") as fh:
                return "".join(deque(fh, maxlen=lines)).rstrip() or "(empty log)"
        except FileNotFoundError:
            return "(no log yet)"

    def logs(self, node: str, *, follow: bool = False, lines: int = 200) -> Iterator[str]:
        self._check_node(node)
        path = log_path(self.state_dir, node)
        if not path.exists() and not follow:
            return
        while not path.exists():
            time.sleep(0.2)
        with path.open(errors="replace") as fh:
            yield from (line.rstrip("\n") for line in deque(fh, maxlen=lines))
            while follow:
                line = fh.readline()
                if line:
                    yield line.rstrip("\n")
                else:
                    time.sleep(0.2)

    def _running_pid(self, node: str) -> int:
        self._check_node(node)
        if self._supervisor_pid() is None:
            raise StackNotUp()
        info = (self._supervisor_state().get("nodes") or {}).get(node) or {}
        pid = info.get("pid")
        if not isinstance(pid, int) or process_start_time(pid) != info.get("start_ticks"):
            raise KdemoError(
                f"{node} is not running right now",
                "the supervisor is restarting it; see `kdemo status`",
            )
        return pid

    def _signal_group(self, node: str, sig: signal.Signals) -> str:
        # The whole process group: postgres' backends go with their postmaster.
        pid = self._running_pid(node)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        return f"pid {pid}"

    def kill(self, node: str) -> str:
        return self._signal_group(node, signal.SIGKILL)

    def restart(self, node: str) -> str:
        # Only the main process: it shuts down its own children (postgres' backends).
        pid = self._running_pid(node)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, CLEAN_STOP.get(node, signal.SIGTERM))
        return f"pid {pid}"

    def pause(self, node: str) -> str:
        return self._signal_group(node, signal.SIGSTOP)

    def resume(self, node: str) -> str:
        return self._signal_group(node, signal.SIGCONT)

    def query(self, database: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg  # late: only the audit and tests read the databases

        if database not in self._secrets().db_passwords:
            raise UsageError(
                f"no database {database!r}",
                "use one of: " + ", ".join(self._secrets().db_passwords),
            )
        try:
            with psycopg.connect(self.database_url(database), connect_timeout=5) as conn:
                conn.read_only = True
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError as exc:
            raise KdemoError(
                f"cannot read the {database} database: {exc}".strip(), "see `kdemo status`"
            ) from exc
        except psycopg.Error as exc:  # the statement itself: bad SQL, a missing table
            raise query_refused(database, exc) from exc

    def public_urls(self) -> dict[str, str]:
        return dict(self._stack().urls)

    def webhook_secret(self) -> str:
        return self._secrets().webhook_secret

    def scrape(self, service: str) -> str:
        if service not in [n.name for n in topology.service_nodes()]:
            raise UsageError(
                f"{service!r} is not a service",
                "use one of: " + ", ".join(n.name for n in topology.service_nodes()),
            )
        port = probe_port(service, self._stack().ports)
        import urllib.request  # late: http.client and ssl, which reading the stack does not need

        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as resp:
                body: bytes = resp.read()
        except OSError as exc:
            raise KdemoError(
                f"cannot scrape {service} on {HOST}:{port}: {exc}", "see `kdemo status`"
            ) from exc
        return body.decode()

    # -- bus: NATS through busadmin, Kafka through kafkaadmin ------------------------------

    def _access(self, user: str) -> busadmin.BusAccess:
        from kdemo.runtime import busadmin  # late: the NATS client's imports slow every `up`

        stack = self._stack()
        if stack.bus != "nats":
            raise UsageError(
                f"the stack in {self.state_dir} runs on {stack.bus}, not nats",
                "use kafka_access() for a Kafka stack",
            )
        return busadmin.BusAccess(
            f"nats://{HOST}:{stack.ports['nats']}", user, self._secrets().nats_passwords[user]
        )

    def kafka_access(self, user: str) -> KafkaAccess:
        """How one Kafka user (`admin`, `tap`, a service) connects (tests, diagnostics)."""
        from kdemo.runtime.kafkaadmin import KafkaAccess  # late: confluent-kafka is heavy

        stack = self._stack()
        if stack.bus != "kafka":
            raise UsageError(
                f"the stack in {self.state_dir} runs on {stack.bus}, not kafka",
                "use bus_access() for a NATS stack",
            )
        return KafkaAccess(
            f"{HOST}:{stack.ports['kafka']}", user, self._secrets().kafka_passwords[user]
        )

    def _on_kafka(self) -> bool:
        return self._stack().bus == "kafka"

    def bus_tap(self, *, deliver_all: bool = True) -> AsyncIterator[TapEvent]:
        if self._on_kafka():
            from kdemo.runtime import kafkaadmin

            return kafkaadmin.tap(self.kafka_access(TAP_USER), deliver_all=deliver_all)
        from kdemo.runtime import busadmin

        return busadmin.tap(self._access(TAP_USER), deliver_all=deliver_all)

    def dlq_list(self) -> list[DeadLetter]:
        if self._on_kafka():
            from kdemo.runtime import kafkaadmin

            return self._on_bus(kafkaadmin.dlq_list(self.kafka_access(ADMIN_USER)))
        from kdemo.runtime import busadmin

        return self._on_bus(busadmin.dlq_list(self._access(ADMIN_USER)))

    def dlq_count(self) -> int:
        if self._on_kafka():
            return len(self.dlq_list())
        # Without nats-py (see natsrequest): its import alone costs status more than the rest.
        from kdemo.runtime.natsrequest import NatsRequestError, count_dead_letters

        try:
            return count_dead_letters(
                HOST,
                self._stack().ports["nats"],
                user=ADMIN_USER,
                password=self._secrets().nats_passwords[ADMIN_USER],
                stream=topology.STREAM_NAME,
                dlq_prefix=topology.DLQ_PREFIX,
            )
        except NatsRequestError as exc:
            raise KdemoError(
                f"the bus did not answer ({exc})",
                "see `kdemo status`: the supervisor restarts nats when it dies",
            ) from exc

    def dlq_replay(self, seqs: list[int] | None = None) -> int:
        if self._on_kafka():
            from kdemo.runtime import kafkaadmin

            return self._on_bus(kafkaadmin.dlq_replay(self.kafka_access(ADMIN_USER), seqs))
        from kdemo.runtime import busadmin

        return self._on_bus(busadmin.dlq_replay(self._access(ADMIN_USER), seqs))

    def _on_bus(self, work: Coroutine[Any, Any, _T]) -> _T:
        # kafkaadmin's errors are KdemoErrors already; nats-py's are translated here.
        from kdemo.runtime import busadmin

        try:
            return busadmin.run_sync(work)
        except busadmin.BUS_ERRORS as exc:
            raise KdemoError(
                f"the bus stopped answering ({type(exc).__name__}: {exc})",
                "see `kdemo status`: the supervisor restarts nats when it dies",
            ) from exc

    # -- for tests and `doctor` ------------------------------------------------------------

    def owned_processes(self) -> list[int]:
        """Every live process of this stack (supervisor, children, postgres backends)."""
        return owned_pids(self._stack_id(), self._pg_dirs())

    def bus_access(self, user: str) -> busadmin.BusAccess:
        """How one bus user connects (for tests and diagnostics)."""
        return self._access(user)

    def database_url(self, role: str) -> str:
        """Credentialed URL of one service role (for tests and diagnostics)."""
        stack = self._stack()
        cluster = postgres_of(self.state_dir, stack, self._secrets())
        return (
            f"postgresql://{role}:{self._secrets().db_passwords[role]}@{HOST}:{cluster.port}/{role}"
        )
