"""`kdemo chaos` on a local stack of its own: faults during load, then an audit that can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from kdemo.chaos.audit import audit_run
from kdemo.chaos.faults import parse_faults, plan_faults
from kdemo.chaos.run import ChaosOptions, run_chaos
from kdemo.cli import app
from kdemo.errors import UsageError
from kdemo.runtime.busadmin import connect, run_sync
from kdemo.runtime.local import LocalRuntime
from kdemo.runtime.natsconfig import ADMIN_USER

# Seed 186 plans: restart identity, kill postgres, stop gateway (past the ack wait), kill
# identity: every fault kind, on a service, the bus's consumer side and the database.
SEED = 186
FLOWS, RATE = 50, 1.0


def test_the_plan_is_the_seed_s_and_covers_every_node_with_every_fault() -> None:
    plan = plan_faults(SEED, ("kill", "stop", "restart"), every_s=1.0)
    assert plan == plan_faults(SEED, ("kill", "stop", "restart"), every_s=1.0)
    assert [(p.fault, p.node) for p in plan[:3]] == [
        ("restart", "identity"),
        ("kill", "postgres"),
        ("stop", "gateway"),
    ]
    first_round = {(p.fault, p.node) for p in plan[:21]}
    assert len(first_round) == 21  # 3 faults x 7 nodes, none twice before all once
    assert plan != plan_faults(SEED + 1, ("kill", "stop", "restart"), every_s=1.0)


def test_unknown_faults_are_a_usage_error() -> None:
    assert parse_faults("kill, stop,kill") == ("kill", "stop")
    assert parse_faults("") == ()
    with pytest.raises(UsageError, match="--faults: unknown fault 'reboot'"):
        parse_faults("kill,reboot")


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["--flows", "0"], 2, "--flows 0: must be at least 1"),
        (["--rate", "-1"], 2, "--rate -1: must be positive"),
        (["--faults", "kill,boom"], 2, "--faults: unknown fault 'boom'"),
        (["--flows", "3"], 1, "the stack is not up"),
    ],
)
def test_chaos_says_what_is_wrong_before_it_starts(
    tmp_path: Path, args: list[str], code: int, said: str
) -> None:
    # In process (the CLI as a subprocess is covered once, in tests/cli): these exit early.
    done = CliRunner().invoke(app, ["chaos", *args], env={"KDEMO_STATE_DIR": str(tmp_path)})
    assert done.exit_code == code, done.stderr
    assert said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # one line, with its hint
    assert done.stdout == ""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    rt = LocalRuntime(tmp_path_factory.mktemp("chaos-state"))
    rt.up(lambda _: None)
    try:
        yield rt
    finally:
        rt.down(purge=True)


def kdemo(rt: LocalRuntime, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KDEMO_STATE_DIR": str(rt.state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "kdemo", *args], env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.stack
def test_chaos_with_every_fault_kind_loses_and_doubles_nothing(stack: LocalRuntime) -> None:
    run = kdemo(
        stack, "chaos", "--flows", str(FLOWS), "--rate", str(RATE), "--seed", str(SEED),
        "--every", "1", "-o", "json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    report = json.loads(run.stdout)
    assert report["ok"] is True
    assert (report["lost"], report["doubled"], report["recorded_refused"]) == (0, 0, 0)
    assert report["dead_lettered"] == 0
    assert report["outcomes"]["comment"] == {"accepted": FLOWS}
    assert report["outcomes"]["link"] == {"linked": FLOWS}
    injected = report["faults"]["list"]
    assert {f["fault"] for f in injected if not f["error"]} == {"kill", "stop", "restart"}
    stop = next(f for f in injected if f["fault"] == "stop")
    assert stop["node"] == "gateway"
    assert stop["held_s"] >= 31  # past the 30 s ack wait: JetStream redelivers what it held
    assert all(f["recovery_s"] is not None for f in injected if not f["error"])
    # The audit looked at every flow: an empty check would pass anything.
    for check in ("intent", "bounty.requested", "ledger signature", "bounty.recorded", "link"):
        assert report["checked"][check] == FLOWS, check
    assert report["stages"]["comment"]["count"] == FLOWS
    assert report["stages"]["comment"]["p99_ms"] >= report["stages"]["comment"]["p50_ms"]


@pytest.mark.stack
def test_the_audit_finds_a_lost_row_and_a_doubled_event(stack: LocalRuntime) -> None:
    """The same audit, after tampering behind the services' backs: it must say so."""
    report = run_chaos(stack, ChaosOptions(flows=3, rate=3.0, faults=(), seed=1))
    assert report.ok, report.to_json()
    victim = next(r for r in report.records if r.signed == "accepted")

    with psycopg.connect(stack.database_url("ledger")) as conn:
        conn.execute(
            "DELETE FROM signatures WHERE intent_id = %s AND address = %s",
            (victim.intent_id, victim.wallet.lower()),
        )

    async def publish_again() -> None:
        nc = await connect(stack.bus_access(ADMIN_USER))
        try:
            js = nc.jetstream()
            subject = f"kdemo.bounty.requested.{victim.intent_id}"
            original = await js.get_last_msg("KDEMO", subject)
            await js.publish(subject, original.data or b"", headers={"Nats-Msg-Id": "tampered"})
        finally:
            await nc.close()

    run_sync(publish_again())
    audit = audit_run(stack, report.repo, report.records)
    found = {(f.kind, f.what, f.key) for f in audit.findings}
    assert ("lost", "ledger signature", f"{victim.intent_id}.{victim.wallet.lower()}") in found
    assert ("doubled", "bounty.requested", victim.intent_id) in found
    assert len(audit.findings) == 2, audit.findings


@pytest.mark.stack
def test_the_audit_reads_read_only_and_refusals_are_kdemo_errors(stack: LocalRuntime) -> None:
    """Runtime.query reads, never writes, and a refused statement is a UsageError naming
    the database (not psycopg's own exception escaping the Runtime contract)."""
    assert stack.query("ledger", "SELECT 1 + %s", [1]) == [(2,)]
    with pytest.raises(UsageError, match="the ledger database refused the query") as bad_sql:
        stack.query("ledger", "SELECT * FROM no_such_table")
    assert "no_such_table" in bad_sql.value.message
    with pytest.raises(UsageError, match="read-only"):
        stack.query("ledger", "DELETE FROM bounties")
    with pytest.raises(UsageError, match="no database 'nosuch'"):
        stack.query("nosuch", "SELECT 1")
