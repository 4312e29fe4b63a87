"""Recovery a user meets with the local runtime: lost secrets, unusable data, a failed `up`.

Real PostgreSQL and nats-server; the services are stand-ins unless a test needs a real one.
The PostgreSQL data of a stack is keyed by its state directory (as root it lives under
/var/lib/kdemo), so every test's own tmp_path keeps it apart from any other stack.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import psycopg
import pytest

from kdemo import topology
from kdemo.errors import KdemoError, NotReady, UsageError
from kdemo.runtime.local import LocalRuntime
from kdemo.runtime.local.procs import pid_alive
from kdemo.runtime.local.state import data_dir, stack_id
from kdemo.runtime.stackfile import load_stack

pytestmark = pytest.mark.stack  # starts PostgreSQL (and the stack): not in the fast subset

STANDIN = [sys.executable, str(Path(__file__).with_name("standin.py"))]
SERVICES = [n.name for n in topology.service_nodes()]


def _runtime(state_dir: Path, **commands: list[str]) -> LocalRuntime:
    return LocalRuntime(
        state_dir,
        commands={s: commands.get(s.replace("-", "_"), STANDIN) for s in SERVICES},
        ready_timeout=30,
    )


def _quiet(_message: str) -> None:
    return


def _data_dir(rt: LocalRuntime) -> Path:
    stack = load_stack(rt.state_dir)
    assert stack is not None
    assert stack.postgres_dir is not None
    return Path(stack.postgres_dir) / "data"


def _lose_state_dir(state_dir: Path) -> None:
    """What `rm -rf $KDEMO_STATE_DIR` does; without root the data lives inside it: keep that."""
    for entry in state_dir.iterdir():
        if entry.name == "postgres":
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def test_up_adopts_data_whose_state_directory_was_deleted(tmp_path: Path) -> None:
    """New secrets meet old data: `up` resets the passwords, the rows are still there."""
    state = tmp_path / "state"
    rt = _runtime(state)
    try:
        rt.up(_quiet)
        data = _data_dir(rt)
        old_secrets = rt._secrets()
        with psycopg.connect(rt.database_url("ledger")) as conn:
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        rt.down()
        _lose_state_dir(state)
        assert not (state / "secrets.json").exists()
        assert (data / "PG_VERSION").exists()  # the data outlived its passwords

        rt = _runtime(state)
        rt.up(_quiet)
        assert _data_dir(rt) == data
        new_secrets = rt._secrets()
        assert new_secrets.postgres_password != old_secrets.postgres_password
        assert new_secrets.db_passwords["ledger"] != old_secrets.db_passwords["ledger"]
        with psycopg.connect(rt.database_url("ledger")) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [(42,)]
        assert all(row.ready for row in rt.status())
    finally:
        rt.down(purge=True)
    assert rt.owned_processes() == []


@pytest.mark.parametrize("damage", ["incompatible version", "unreadable"])
def test_unusable_data_fails_at_once_naming_it_and_the_fix(tmp_path: Path, damage: str) -> None:
    """Data kdemo cannot open is one line naming the directory, with `down --purge` as fix."""
    rt = _runtime(tmp_path / "state")
    try:
        rt.up(_quiet)
        data = _data_dir(rt)
        rt.down()
        if damage == "unreadable":
            data.chmod(0)
        else:
            (data / "PG_VERSION").write_text("9\n")  # a major version these binaries cannot run
        started = time.monotonic()
        with pytest.raises(KdemoError) as info:
            rt.up(_quiet)
        assert time.monotonic() - started < 15  # not the readiness timeout
        assert str(data) in str(info.value)
        assert "\n" not in str(info.value)
        assert "kdemo down --purge" in info.value.hint
        assert rt.owned_processes() == []
    finally:
        rt.down(purge=True)
    assert not data.exists()  # the advertised fix works on that data


def test_failed_up_stops_what_it_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad setting stops `up` at once, naming it; no process of the stack is left running."""
    monkeypatch.setenv("KDEMO_LINK_TTL", "soon")  # frontend refuses it and exits with status 2
    rt = _runtime(tmp_path / "state", frontend=[sys.executable, "-m", "services.frontend"])
    messages: list[str] = []
    try:
        started = time.monotonic()
        with pytest.raises(NotReady) as info:
            rt.up(messages.append)
        assert time.monotonic() - started < rt.ready_timeout
        assert info.value.node == "frontend"
        assert "KDEMO_LINK_TTL" in str(info.value)
        assert "\n" not in str(info.value)
        assert "up failed: stopping what it started (data kept)" in messages
        assert rt.owned_processes() == []
        assert not rt.is_up()
    finally:
        rt.down(purge=True)


def test_failed_up_leaves_a_stack_that_was_already_running(tmp_path: Path) -> None:
    """`up` on a running stack that fails to get ready does not stop what it did not start."""
    rt = _runtime(tmp_path / "state")
    try:
        rt.up(_quiet)
        gateway = next(row.pid for row in rt.status() if row.name == "gateway")
        assert gateway is not None
        rt.kill("gateway")
        deadline = time.monotonic() + 5
        while pid_alive(gateway):  # gone; the supervisor restarts it only after its backoff
            assert time.monotonic() < deadline, "gateway survived SIGKILL"
            time.sleep(0.01)
        rt.ready_timeout = 0
        with pytest.raises(NotReady, match="gateway did not become ready"):
            rt.up(_quiet)
        assert rt.is_up()
        assert len(rt.owned_processes()) > len(topology.runtime_nodes())
    finally:
        rt.down(purge=True)


def test_kdemo_data_dir_is_chosen_once_and_kept(tmp_path: Path) -> None:
    """KDEMO_DATA_DIR places a first `up`'s data; later it must agree with what was recorded."""
    state = tmp_path / "state"
    default = state / "nats"
    disk = {"KDEMO_DATA_DIR": str(tmp_path / "disk")}
    chosen = data_dir(state, "nats", None, default, env=disk)
    assert chosen == tmp_path / "disk" / f"nats-{stack_id(state)}"
    assert data_dir(state, "nats", None, default, env={}) == default
    assert data_dir(state, "nats", str(chosen), default, env={}) == chosen
    assert data_dir(state, "nats", str(chosen), default, env=disk) == chosen
    with pytest.raises(UsageError, match="KDEMO_DATA_DIR points elsewhere") as info:
        data_dir(state, "nats", str(chosen), default, env={"KDEMO_DATA_DIR": str(tmp_path)})
    assert str(chosen) in str(info.value)
    assert "kdemo down --purge" in info.value.hint
