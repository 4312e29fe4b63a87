"""The local runtime end to end: real PostgreSQL and nats-server, stand-ins for the services."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from kdemo import topology
from kdemo.errors import NotReady, PortInUse, UsageError
from kdemo.runtime import get_runtime
from kdemo.runtime.local import LocalRuntime
from kdemo.runtime.local.procs import pid_alive
from kdemo.runtime.statedir import read_json

pytestmark = pytest.mark.stack  # starts PostgreSQL (and the stack): not in the fast subset

STANDIN = [sys.executable, str(Path(__file__).with_name("standin.py"))]
SERVICES = [n.name for n in topology.service_nodes()]
NODES = [n.name for n in topology.runtime_nodes()]


def _quiet(_message: str) -> None:
    return


def _runtime(state_dir: Path, **commands: list[str]) -> LocalRuntime:
    return LocalRuntime(
        state_dir,
        commands={s: commands.get(s.replace("-", "_"), STANDIN) for s in SERVICES},
        ready_timeout=20,
    )


def _wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _live(pids: list[int]) -> list[int]:
    return [p for p in pids if pid_alive(p)]


def _recorded_pids(rt: LocalRuntime) -> list[int]:
    state = read_json(rt.state_dir / "supervisor.json") or {}
    pids = [state["supervisor"]["pid"]]
    pids += [n["pid"] for n in state["nodes"].values() if n["pid"]]
    return pids


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    rt = _runtime(tmp_path_factory.mktemp("stack") / "state")
    rt.up(_quiet)
    yield rt
    rt.down(purge=True)


def _files(rt: LocalRuntime) -> dict[str, tuple[int, bytes]]:
    """stack.json and secrets.json: modification time and content."""
    return {
        name: ((rt.state_dir / name).stat().st_mtime_ns, (rt.state_dir / name).read_bytes())
        for name in ("stack.json", "secrets.json")
    }


def test_up_reports_progress_and_returns_public_urls(stack: LocalRuntime) -> None:
    """`up` on a running stack is a no-op that returns the same public URLs: no process is
    replaced or restarted, and neither stack.json nor the secrets are written."""
    urls_before = stack.public_urls()
    rows_before = {r.name: (r.pid, r.restarts) for r in stack.status()}
    pids_before = _recorded_pids(stack)  # the supervisor's and every node's
    files_before = _files(stack)
    messages: list[str] = []
    urls = stack.up(messages.append)
    assert urls == urls_before
    assert {r.name: (r.pid, r.restarts) for r in stack.status()} == rows_before
    assert _recorded_pids(stack) == pids_before
    assert _files(stack) == files_before
    assert set(urls) == {"frontend", "gateway", "github-app"}
    assert all(u.startswith("http://127.0.0.1:") for u in urls.values())
    # It names every node it waits for: the database and bus first, then the services.
    waited = [m.removeprefix("waiting for ").removesuffix("…") for m in messages]
    assert set(waited[:2]) == {"postgres", "nats"}
    assert set(waited[2:]) == {"github-app", "frontend", "gateway", "calc", "identity"}


def test_status_lists_every_node_ready_without_credentials(stack: LocalRuntime) -> None:
    """Every runtime node is ready, in topology order, with a pid and a URL with no password."""
    rows = [row.to_json() for row in stack.status()]
    assert [r["name"] for r in rows] == NODES
    assert all(r["ready"] and r["state"] == "ready" and r["pid"] for r in rows)
    secrets = stack._secrets()
    for row in rows:
        assert "@" not in row["url"]
        assert not any(p in row["url"] for p in secrets.db_passwords.values())
    kinds = {r["name"]: (r["kind"], r["url"].split(":")[0]) for r in rows}
    assert kinds["postgres"] == ("database", "postgresql")
    assert kinds["nats"] == ("bus", "nats")
    assert kinds["calc"] == ("service", "grpc")
    assert kinds["gateway"] == ("service", "http")


def test_scrape_reads_metrics_from_the_right_port(stack: LocalRuntime) -> None:
    """scrape() returns the service's /metrics text (calc: its metrics port)."""
    assert "standin_up" in stack.scrape("calc")
    with pytest.raises(UsageError, match="not a service"):
        stack.scrape("postgres")


@pytest.mark.parametrize("node", ["gateway", "nats", "postgres"])
def test_killed_node_is_restarted_and_counted(stack: LocalRuntime, node: str) -> None:
    """kill() SIGKILLs a node; the supervisor brings it back and counts one more restart."""
    before = {r.name: r for r in stack.status()}[node]
    stack.kill(node)
    assert before.pid is not None
    _wait_for(lambda: not pid_alive(before.pid or 0), 5)

    def back() -> bool:
        row = {r.name: r for r in stack.status()}[node]
        return row.state == "ready" and row.restarts == before.restarts + 1

    _wait_for(back)
    if node == "postgres":
        with psycopg.connect(stack.database_url("ledger")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_logs_yield_the_nodes_output(stack: LocalRuntime) -> None:
    """logs() yields the node's lines; an unknown node is a usage error listing the valid ones."""
    assert any("standin listening" in line for line in stack.logs("gateway"))
    with pytest.raises(UsageError, match="unknown node 'nope'") as info:
        list(stack.logs("nope"))
    assert "postgres" in info.value.hint


def test_get_runtime_finds_the_local_stack(stack: LocalRuntime) -> None:
    """The factory reads stack.json and returns the local runtime for it."""
    rt = get_runtime(stack.state_dir)
    assert isinstance(rt, LocalRuntime)
    assert rt.is_up()
    assert rt.public_urls() == stack.public_urls()


def test_down_leaves_no_process_and_data_survives(tmp_path: Path) -> None:
    """After down no process of the stack is left; data and secrets are there at the next up."""
    rt = _runtime(tmp_path / "state")
    try:
        urls = rt.up(_quiet)
        with psycopg.connect(rt.database_url("ledger")) as conn:
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        pids = _recorded_pids(rt) + rt.owned_processes()
        assert len(pids) > len(NODES)
        rt.down()
        assert _live(pids) == []
        assert rt.owned_processes() == []
        assert not rt.is_up()
        assert rt.up(_quiet) == urls
        with psycopg.connect(rt.database_url("ledger")) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [(42,)]
    finally:  # a failed assertion must not leave a stack running
        rt.down(purge=True)
    assert not any((rt.state_dir / f).exists() for f in ("stack.json", "secrets.json"))


def test_supervisor_killed_leaves_nothing_behind(tmp_path: Path) -> None:
    """SIGKILL of the supervisor takes its children down; down afterwards finds nothing alive."""
    rt = _runtime(tmp_path / "state")
    rt.up(_quiet)
    pids = _recorded_pids(rt) + rt.owned_processes()
    os.kill(pids[0], signal.SIGKILL)
    _wait_for(lambda: _live(pids) == [], 10)
    assert not rt.is_up()
    rt.down(purge=True)
    assert rt.owned_processes() == []


def test_node_that_never_gets_ready_is_named_with_its_log(tmp_path: Path) -> None:
    """up() fails naming the node and showing the end of its log."""
    crash = [sys.executable, "-c", "import sys; sys.exit('identity cannot start: boom')"]
    rt = _runtime(tmp_path / "state", identity=crash)
    rt.ready_timeout = 3
    try:
        with pytest.raises(NotReady, match="identity did not become ready") as info:
            rt.up(_quiet)
        assert info.value.node == "identity"
        assert "boom" in str(info.value)
        assert "kdemo logs identity" in info.value.hint
    finally:
        rt.down(purge=True)
    assert rt.owned_processes() == []


def test_port_in_use_stops_up_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A taken port raises PortInUse naming port, node and variable; nothing is left running."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = int(sock.getsockname()[1])
        monkeypatch.setenv("KDEMO_NATS_PORT", str(port))
        rt = _runtime(tmp_path / "state")
        with pytest.raises(PortInUse) as info:
            rt.up(_quiet)
    assert (info.value.port, info.value.node, info.value.variable) == (
        port,
        "nats",
        "KDEMO_NATS_PORT",
    )
    assert not rt.is_up()
    assert rt.owned_processes() == []
