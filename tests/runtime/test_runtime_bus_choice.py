"""`kdemo up --bus nats|kafka` without a broker: what the stack records and refuses, the
ports, secrets and environment a Kafka stack gets, and what `doctor` says about Java and
Maven. The real Kafka stack is tests/runtime/test_runtime_kafka_stack.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kdemo.cli import app
from kdemo.cli.doctor import check_kafka_tools
from kdemo.cli.session import Session
from kdemo.errors import KdemoError, UsageError
from kdemo.runtime import get_runtime, new_runtime
from kdemo.runtime.local import LocalRuntime
from kdemo.runtime.local.env import service_env
from kdemo.runtime.local.nodes import node_specs, stages
from kdemo.runtime.local.procs import process_start_time
from kdemo.runtime.local.secrets import SECRETS_FILE, load_or_create_secrets, load_secrets
from kdemo.runtime.local.state import SUPERVISOR_FILE
from kdemo.runtime.ports import allocate_ports, port_names
from kdemo.runtime.secrets import bus_users
from kdemo.runtime.stackfile import StackRecord, load_stack, save_stack

runner = CliRunner()
_PUBLIC_ENV = ("FRONTEND", "GATEWAY", "GITHUB_APP")
BUS_SERVICES = ("github-app", "frontend", "gateway", "identity")


def _running_stack(state_dir: Path, bus: str) -> None:
    """A stack record and a supervisor record naming this (live) test process: `is_up`."""
    save_stack(
        state_dir,
        StackRecord(runtime="local", ports=allocate_ports(env={}, bus=bus), bus=bus),
    )
    me = os.getpid()
    (state_dir / SUPERVISOR_FILE).write_text(
        json.dumps({"supervisor": {"pid": me, "start_ticks": process_start_time(me)}})
    )


@pytest.mark.parametrize(("running", "asked"), [("nats", "kafka"), ("kafka", "nats")])
def test_up_on_a_running_stack_of_the_other_bus_is_refused(
    tmp_path: Path, running: str, asked: str
) -> None:
    _running_stack(tmp_path, running)
    result = runner.invoke(app, ["up", "--bus", asked], env={"KDEMO_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 2, result.output
    line = " ".join(result.stderr.split())  # Rich wraps long lines
    assert f"runs on {running}, not {asked}" in line
    assert "kdemo down" in line
    assert f"up --bus {asked}" in line
    assert "Traceback" not in result.output
    stack = load_stack(tmp_path)
    assert stack is not None
    assert stack.bus == running  # the record is untouched
    assert not (tmp_path / SECRETS_FILE).exists()  # refused before anything was made


def test_the_same_bus_or_none_is_not_refused(tmp_path: Path) -> None:
    _running_stack(tmp_path, "kafka")
    for bus in (None, "kafka"):
        rt = get_runtime(tmp_path, bus=bus)
        assert isinstance(rt, LocalRuntime)
        rt._refuse_other_bus("kafka")  # no error
        assert rt.bus() == "kafka"


@pytest.mark.parametrize("runtime", ["kind", "kubernetes"])
def test_a_cluster_runtime_keeps_the_bus_it_was_asked_for(tmp_path: Path, runtime: str) -> None:
    rt = new_runtime(runtime, tmp_path, bus="kafka")
    assert rt.bus() == "kafka"
    assert new_runtime(runtime, tmp_path).bus() == "nats"


@pytest.mark.parametrize("runtime", ["kind", "kubernetes"])
def test_a_cluster_stack_refuses_the_other_bus(tmp_path: Path, runtime: str) -> None:
    """`up --bus kafka` on a cluster stack that runs NATS exits 2 before touching anything."""
    save_stack(tmp_path, StackRecord(runtime=runtime, context="kind-kdemo", cluster="kdemo"))
    env = {"KDEMO_STATE_DIR": str(tmp_path)}
    if runtime == "kubernetes":
        env |= {f"KDEMO_PUBLIC_URL_{n}": "http://127.0.0.1:1" for n in _PUBLIC_ENV}
    args = ["up", "--runtime", runtime, "--bus", "kafka"]
    if runtime == "kubernetes":
        args += ["--context", "kind-kdemo"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2, result.output
    assert "runs on nats, not kafka" in " ".join(result.stderr.split())
    assert load_stack(tmp_path) == StackRecord(
        runtime=runtime, context="kind-kdemo", cluster="kdemo"
    )


def test_an_unknown_bus_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["up", "--bus", "rabbitmq"], env={"KDEMO_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 2
    with pytest.raises(UsageError, match="unknown bus 'rabbitmq'"):
        LocalRuntime(tmp_path, bus="rabbitmq")


def test_kafka_ports_replace_the_nats_ones() -> None:
    names = port_names("kafka")
    assert {"kafka", "kafka-controller"} <= set(names)
    assert not {"nats", "nats-monitor"} & set(names)
    assert set(port_names()) - set(names) == {"nats", "nats-monitor"}
    nats = allocate_ports(env={})
    # switching a stopped stack: the services keep their ports (and URLs)
    kafka = allocate_ports(nats, env={}, bus="kafka")
    assert {k: v for k, v in kafka.items() if k in nats} == {
        k: v for k, v in nats.items() if k in kafka
    }
    assert kafka["kafka"] not in nats.values()
    assert kafka["kafka-controller"] not in nats.values()


def test_secrets_of_an_older_stack_read_and_gain_kafka_passwords(tmp_path: Path) -> None:
    secrets = load_or_create_secrets(tmp_path, env={})
    assert set(secrets.kafka_passwords) == set(bus_users()) == {"admin", "tap", *BUS_SERVICES}
    data = json.loads((tmp_path / SECRETS_FILE).read_text())
    del data["kafka_passwords"]  # what a version before Kafka wrote
    (tmp_path / SECRETS_FILE).write_text(json.dumps(data))
    assert load_secrets(tmp_path).kafka_passwords == {}
    completed = load_or_create_secrets(tmp_path, env={})
    assert completed.nats_passwords == secrets.nats_passwords  # kept
    assert set(completed.kafka_passwords) == set(bus_users())
    assert oct((tmp_path / SECRETS_FILE).stat().st_mode & 0o777) == "0o600"


def test_services_get_the_kafka_contract_and_no_nats(tmp_path: Path) -> None:
    secrets = load_or_create_secrets(tmp_path, env={})
    ports = allocate_ports(env={}, bus="kafka")
    for node in BUS_SERVICES:
        env = service_env(node, ports=ports, secrets=secrets, bus="kafka")
        assert env["KDEMO_BUS"] == "kafka"
        assert env["KDEMO_KAFKA_BOOTSTRAP"] == f"127.0.0.1:{ports['kafka']}"
        assert env["KDEMO_KAFKA_USER"] == node
        assert env["KDEMO_KAFKA_PASSWORD"] == secrets.kafka_passwords[node]
        assert not [k for k in env if k.startswith("KDEMO_NATS")]
    calc = service_env("calc", ports=ports, secrets=secrets, bus="kafka")
    assert not [k for k in calc if k.startswith(("KDEMO_KAFKA", "KDEMO_NATS"))]
    nats = service_env("gateway", ports=allocate_ports(env={}), secrets=secrets)
    assert "KDEMO_BUS" not in nats  # the services' default, as in the cluster's manifests
    assert nats["KDEMO_NATS_USER"] == "gateway"
    assert not [k for k in nats if k.startswith("KDEMO_KAFKA")]


def test_a_kafka_stack_runs_a_kafka_node_instead_of_nats(tmp_path: Path) -> None:
    secrets = load_or_create_secrets(tmp_path, env={})
    stack = StackRecord(
        runtime="local",
        ports=allocate_ports(env={}, bus="kafka"),
        kafka_dir=str(tmp_path / "kafka"),
        bus="kafka",
    )
    assert stages("kafka")[0] == ["kafka", "postgres"]
    specs = node_specs(tmp_path, stack, secrets, {})
    assert "nats" not in specs
    broker = specs["kafka"]
    assert broker.argv[-2:] == ["kafka.Kafka", str(tmp_path / "kafka" / "server.properties")]
    assert broker.cwd == tmp_path / "kafka"
    assert not any(secrets.kafka_passwords["admin"] in arg for arg in broker.argv)
    assert specs["gateway"].env["KDEMO_BUS"] == "kafka"
    # a node list naming the bus `nats` (as tests record it) means the stack's bus
    only = StackRecord(runtime="local", ports=stack.ports, bus="kafka", nodes=("nats", "calc"))
    assert sorted(node_specs(tmp_path, only, secrets, {})) == ["calc", "kafka"]


def _session(tmp_path: Path) -> Session:
    return Session(state_dir=tmp_path)


@pytest.mark.parametrize(("bus", "level"), [(None, "warn"), ("nats", "warn"), ("kafka", "fail")])
def test_doctor_says_java_and_maven_are_missing_and_how_to_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus: str | None, level: str
) -> None:
    if bus is not None:
        save_stack(tmp_path, StackRecord(runtime="local", bus=bus))

    def missing() -> Path:
        raise KdemoError("Java 17+ is missing (no `java` on PATH)", "apt-get install x")

    monkeypatch.setattr("kdemo.runtime.kafkabroker.find_java", missing)
    monkeypatch.setattr("kdemo.runtime.kafkabroker.shutil.which", lambda _name: None)
    checks = {c.name: c for c in check_kafka_tools(_session(tmp_path))}
    assert {c.level for c in checks.values()} == {level}
    for check in checks.values():
        assert "apt-get install openjdk-17-jre-headless maven" in check.fix
    assert "Java 17+ is missing" in checks["java"].detail
    assert ("needed only for --bus kafka" in checks["mvn"].detail) == (level == "warn")


def test_doctor_reports_java_and_maven_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kdemo.runtime.kafkabroker.find_java", lambda: Path("/opt/jdk/bin/java"))
    monkeypatch.setattr("kdemo.runtime.kafkabroker.shutil.which", lambda name: f"/usr/bin/{name}")
    checks = check_kafka_tools(_session(tmp_path))
    assert [(c.name, c.level) for c in checks] == [("java", "ok"), ("mvn", "ok")]
    assert "/opt/jdk/bin/java" in checks[0].detail
