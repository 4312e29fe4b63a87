"""`kdemo chaos` on a local stack of its own, once per bus: faults during load, then an
audit that can fail."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from kdemo.chaos.audit import audit_run, drops_repeats, event_key
from kdemo.chaos.faults import parse_faults, plan_faults, redelivery_s, stop_s_for
from kdemo.chaos.run import ChaosOptions, run_chaos
from kdemo.cli import app
from kdemo.errors import UsageError
from kdemo.runtime.base import TapEvent
from kdemo.runtime.busadmin import connect, run_sync
from kdemo.runtime.local import LocalRuntime
from kdemo.runtime.natsconfig import ACK_WAIT_S, ADMIN_USER
from services.common.kafka_bus import SESSION_TIMEOUT_S
from tests.e2e.buses import BUSES

# Seed 186 plans: restart identity, kill postgres, stop gateway (past the ack wait), kill
# identity: every fault kind, on a service, the bus's consumer side and the database.
SEED = 186
FLOWS, RATE = 50, 1.0


@dataclass(frozen=True)
class ChaosRun:
    seed: int
    flows: int
    rate: float
    first: tuple[tuple[str, str], ...]
    """The plan's first faults, which must all land while the load runs."""


RUNS = {
    "nats": ChaosRun(
        SEED, FLOWS, RATE, (("restart", "identity"), ("kill", "postgres"), ("stop", "gateway"))
    ),
    # Seed 6064 on Kafka: restart frontend (which reads its topics back before it is ready),
    # freeze gateway past its group's session timeout, SIGKILL the broker mid-flow. The
    # broker's slow comeback (a JVM: 30 s here) comes last, so all three land within the
    # first 35 s or so of the 80 s of load even on a loaded machine.
    "kafka": ChaosRun(
        6064, 24, 0.3, (("restart", "frontend"), ("stop", "gateway"), ("kill", "kafka"))
    ),
}


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
    assert plan == plan_faults(SEED, ("kill", "stop", "restart"), every_s=1.0, bus="nats")


@pytest.mark.parametrize("bus", ["nats", "kafka"])
def test_a_plan_hits_the_stack_s_own_bus(bus: str) -> None:
    run = RUNS[bus]
    plan = plan_faults(run.seed, ("kill", "stop", "restart"), every_s=1.0, bus=bus)
    assert tuple((p.fault, p.node) for p in plan[: len(run.first)]) == run.first
    assert {p.node for p in plan[:21]} == {
        "github-app", "frontend", "gateway", "calc", "identity", bus, "postgres",
    }  # fmt: skip
    # The same seed on the other bus: the same draws, the other bus node where this one was.
    other = "kafka" if bus == "nats" else "nats"
    renamed = [
        (p.fault, other if p.node == bus else p.node, p.after_s)
        for p in plan_faults(run.seed, ("kill", "stop", "restart"), every_s=1.0, bus=bus)
    ]
    assert renamed == [
        (p.fault, p.node, p.after_s)
        for p in plan_faults(run.seed, ("kill", "stop", "restart"), every_s=1.0, bus=other)
    ]


def test_a_stop_outlasts_the_bus_s_redelivery_timeout() -> None:
    assert redelivery_s("nats") == ACK_WAIT_S
    assert redelivery_s("kafka") == SESSION_TIMEOUT_S
    assert stop_s_for("nats") > ACK_WAIT_S
    assert stop_s_for("kafka") > SESSION_TIMEOUT_S


def test_the_audit_keys_events_by_their_id_on_either_bus() -> None:
    intent, wallet = "0x" + "ab" * 32, "0x" + "cd" * 20
    signed = {"id": f"bounty.signed:{intent}:{wallet}", "type": "dev.kdemo.bounty.signed.v1"}
    assert event_key(signed) == ("bounty.signed", f"{intent}.{wallet}")
    assert event_key({"id": "identity.linked:abcdefgh"}) == ("identity.linked", "abcdefgh")
    for junk in (None, {}, {"id": 7}, {"id": "bounty.signed"}, {"id": "no.such.event:x"}):
        assert event_key(junk) is None, junk
    assert drops_repeats("nats")
    assert not drops_repeats("kafka")


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


@pytest.fixture(scope="module", params=BUSES)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalRuntime]:
    bus: str = request.param
    rt = LocalRuntime(tmp_path_factory.mktemp(f"chaos-state-{bus}"), bus=bus)
    try:
        rt.up(lambda _: None)
        yield rt
    finally:
        rt.down()
        left = rt.owned_processes()
        rt.down(purge=True)
        assert left == [], f"processes left after down: {left}"


def kdemo(rt: LocalRuntime, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KDEMO_STATE_DIR": str(rt.state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "kdemo", *args], env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.stack
def test_chaos_with_every_fault_kind_loses_and_doubles_nothing(stack: LocalRuntime) -> None:
    bus = stack.bus()
    run = RUNS[bus]
    began = time.monotonic()
    done = kdemo(
        stack, "chaos", "--flows", str(run.flows), "--rate", str(run.rate),
        "--seed", str(run.seed), "--every", "1", "-o", "json",
    )  # fmt: skip
    wall_s = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    report = json.loads(done.stdout)
    print(_summary(bus, wall_s, report))  # shown with -s: the figures docs/reliability.md cites
    assert report["ok"] is True
    assert report["bus"] == bus
    assert (report["lost"], report["doubled"], report["recorded_refused"]) == (0, 0, 0)
    assert report["dead_lettered"] == 0
    assert report["outcomes"]["comment"] == {"accepted": run.flows}
    assert report["outcomes"]["link"] == {"linked": run.flows}
    injected = report["faults"]["list"]
    landed = [(f["fault"], f["node"]) for f in injected if not f["error"]]
    assert tuple(landed[: len(run.first)]) == run.first, injected
    stop = next(f for f in injected if f["fault"] == "stop")
    # Past the bus's redelivery timeout (NATS: the 30 s ack wait; Kafka: the group's session
    # timeout), so the bus hands out again what the frozen consumer held.
    assert stop["held_s"] >= redelivery_s(bus) + 1
    assert all(f["recovery_s"] is not None for f in injected if not f["error"])
    # The audit looked at every flow: an empty check would pass anything.
    for check in ("intent", "bounty.requested", "ledger signature", "bounty.recorded", "link"):
        assert report["checked"][check] == run.flows, check
    assert report["stages"]["comment"]["count"] == run.flows
    assert report["stages"]["comment"]["p99_ms"] >= report["stages"]["comment"]["p50_ms"]


def _summary(bus: str, wall_s: float, report: dict[str, object]) -> str:
    faults = report["faults"]
    assert isinstance(faults, dict)
    landed = ", ".join(
        f"{f['fault']} {f['node']} ({f['recovery_s']} s)" for f in faults["list"] if not f["error"]
    )
    return (
        f"kdemo chaos on {bus}: {wall_s:.1f} s wall, settled {report['settle_s']} s; "
        f"faults: {landed}; copies: {report['copies']}"
    )


def _recorded(stack: LocalRuntime, event: str, key: str) -> TapEvent:
    """The bus's record of one event, read through the tap (either bus)."""

    async def find() -> TapEvent:
        async for tapped in stack.bus_tap(deliver_all=True):
            if event_key(tapped.event) == (event, key) and not tapped.dead_lettered:
                return tapped
        raise AssertionError(f"no {event} {key} on the bus")

    return run_sync(asyncio.wait_for(find(), 60))


def _publish(stack: LocalRuntime, event: str, key: str, payload: bytes) -> None:
    """Publish `payload` as the event `event` of `key` behind the services' backs, as the
    bus's admin: on NATS under a new message id (past the duplicate window's check)."""
    if stack.bus() == "kafka":
        from confluent_kafka import Producer

        from kdemo.runtime import kafkaadmin, kafkaconfig

        producer = Producer(kafkaadmin.client_config(stack.kafka_access(kafkaconfig.ADMIN_USER)))
        producer.produce(kafkaconfig.topic(event), payload, key.encode())
        assert producer.flush(30) == 0
        return

    async def on_nats() -> None:
        nc = await connect(stack.bus_access(ADMIN_USER))
        try:
            subject = f"kdemo.{event}.{key}"
            msg_id = f"tampered:{secrets.token_hex(4)}"
            await nc.jetstream().publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
        finally:
            await nc.close()

    run_sync(on_nats())


def _double_intent(stack: LocalRuntime, intent_id: str) -> None:
    """A second intent row for the same comment, as a github-app that recorded it twice."""
    with psycopg.connect(stack.database_url("github_app")) as conn:
        conn.execute("CREATE TEMP TABLE doubled AS SELECT * FROM intents WHERE intent_id = %s",
                     (intent_id,))  # fmt: skip
        conn.execute("UPDATE doubled SET intent_id = %s", ("0x" + secrets.token_hex(32),))
        conn.execute("INSERT INTO intents SELECT * FROM doubled")


def _wait_dead_letters(stack: LocalRuntime, n: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(stack.dlq_list()) < n:
        assert time.monotonic() < deadline, f"no {n} dead letters after {timeout_s:.0f} s"
        time.sleep(0.5)


@pytest.mark.stack
def test_the_audit_finds_what_was_lost_doubled_or_dead_lettered(stack: LocalRuntime) -> None:
    """The same audit, after tampering behind the services' backs: it must say so, on
    either bus, and a copy of an event counts as doubled only on a bus that drops repeats."""
    report = run_chaos(stack, ChaosOptions(flows=3, rate=3.0, faults=(), seed=1))
    assert report.ok, report.to_json()
    victim = next(r for r in report.records if r.signed == "accepted")
    wallet = victim.wallet.lower()
    letters_before = len(stack.dlq_list())

    with psycopg.connect(stack.database_url("ledger")) as conn:
        conn.execute(
            "DELETE FROM signatures WHERE intent_id = %s AND address = %s",
            (victim.intent_id, wallet),
        )
    _double_intent(stack, victim.intent_id)
    requested = _recorded(stack, "bounty.requested", victim.intent_id)
    _publish(stack, "bounty.requested", victim.intent_id, requested.raw)
    # A link confirmation identity cannot read (its data gone): identity dead-letters it.
    confirmed = _recorded(stack, "identity.link_confirmed", victim.link_code)
    broken = {**json.loads(confirmed.raw), "data": {}}
    _publish(stack, "identity.link_confirmed", victim.link_code, json.dumps(broken).encode())
    _wait_dead_letters(stack, letters_before + 1)

    audit = audit_run(stack, report.repo, report.records)
    found = {(f.kind, f.what, f.key) for f in audit.findings}
    expected = {
        ("lost", "ledger signature", f"{victim.intent_id}.{wallet}"),
        ("doubled", "intents per comment", f"#{victim.number}"),
    }
    if stack.bus() == "nats":  # JetStream drops a repeated event id: a second copy is a defect
        expected.add(("doubled", "bounty.requested", victim.intent_id))
        assert audit.copies == {}
    else:  # Kafka keeps the copy; the consumers skip it by its id
        assert audit.copies == {"bounty.requested": 1}
    assert found == expected, audit.findings
    assert audit.unanswered_intents == 1
    assert [d["event_id"] for d in audit.dead_letters] == [
        f"identity.link_confirmed:{victim.link_code}"
    ]
    assert audit.dead_letters[0]["consumer"] == "identity"
    assert not audit.ok


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
