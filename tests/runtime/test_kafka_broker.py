"""The local Kafka broker (kdemo.runtime.kafkabroker) against a real JVM.

The `stack` tests fetch the jars (once per cache: ~/.cache/kdemo or $KDEMO_KAFKA_CACHE),
format a KRaft node in tmp_path, run it on free loopback ports and drive it with Kafka's
own command-line tools, as a separate `java -cp` process each. The other tests need no Java.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdemo.errors import KdemoError
from kdemo.runtime import kafkabroker as kafka
from kdemo.runtime.kafkabroker import KafkaBroker
from kdemo.testing.servers import missing_kafka_tools

PASSWORDS = {"admin": "admin-secret-0123", "gateway": "gateway-secret-4567"}
ALLOWED = "bounty.recorded"
FORBIDDEN = "bounty.signed"
TOOL_TIMEOUT_S = 90.0
STOP_GRACE_S = 30.0


needs_jvm = pytest.mark.skipif(
    missing_kafka_tools() is not None, reason=missing_kafka_tools() or ""
)


def _free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (held together while chosen, so never the same)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# -- without a JVM ------------------------------------------------------------------------------


def _offline_broker(root: Path) -> KafkaBroker:
    return KafkaBroker(Path("/usr/bin/java"), root / "jars", root / "kafka", 9092, 9093, PASSWORDS)


def test_config_binds_loopback_and_is_private(tmp_path: Path) -> None:
    broker = _offline_broker(tmp_path)
    broker.write_config()
    text = broker.config_path.read_text()
    assert "process.roles=broker,controller" in text
    assert "CLIENT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093" in text
    assert set(re.findall(r"://([^:,]+):", text)) == {"127.0.0.1"}
    assert "StandardAuthorizer" in text
    assert "super.users=User:admin\n" in text
    assert "PLAINTEXT," not in text.replace("SASL_PLAINTEXT", "")  # no unauthenticated listener
    assert stat.S_IMODE(broker.config_path.stat().st_mode) == 0o600


def test_cluster_id_is_made_once(tmp_path: Path) -> None:
    broker = _offline_broker(tmp_path)
    first = broker.cluster_id()
    assert len(first) == 22
    assert not first.startswith("-")
    assert broker.cluster_id() == first


def test_scram_credential_carries_no_password() -> None:
    value = kafka.scram_credential("gateway", PASSWORDS["gateway"])
    assert value.startswith("SCRAM-SHA-512=[name=gateway,iterations=8192,salt=")
    assert PASSWORDS["gateway"] not in value


def test_unsafe_names_and_passwords_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="user names"):
        kafka.scram_credential("a,b", "pw")
    with pytest.raises(ValueError, match="must include 'admin'"):
        kafka.kafka_broker(tmp_path, 1, 2, {"gateway": "pw"})
    with pytest.raises(ValueError, match="without quotes"):
        kafka.kafka_broker(tmp_path, 1, 2, {"admin": 'p"w'})


def test_missing_java_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(KdemoError) as err:
        kafka.fetch_kafka(tmp_path / "cache")
    assert "Java 17+ is missing" in err.value.message
    assert "apt-get install openjdk-17-jre-headless maven" in err.value.hint


def test_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(KdemoError, match=r"is Java 11; Kafka .* needs Java 17"):
        kafka.find_java()


def test_cache_dir_default_and_override() -> None:
    home = kafka.default_cache_dir({"XDG_CACHE_HOME": "/c"})
    assert home == Path(f"/c/kdemo/kafka-{kafka.KAFKA_VERSION}")
    assert kafka.default_cache_dir({kafka.CACHE_ENV: "/j"}) == Path("/j")


# -- a real broker ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jars() -> Path:
    return kafka.fetch_kafka()


class Running:
    """A broker process that the test owns: `stop` (or the fixture) always ends it."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker
        self.log = broker.root / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start and wait until the broker serves requests; the seconds that took."""
        began = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.broker.broker_command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        try:
            self.broker.wait_ready(timeout=90)
        except KdemoError:
            self.stop()
            raise AssertionError(self.log.read_text()[-3000:]) from None
        return time.monotonic() - began

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert _gone(proc.pid), f"broker pid {proc.pid} still exists"


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def broker(jars: Path, tmp_path: Path) -> Iterator[Running]:
    port, controller_port = _free_ports(2)
    node = KafkaBroker(
        kafka.find_java(), jars, tmp_path / "kafka", port, controller_port, PASSWORDS
    )
    node.format_storage()
    running = Running(node)
    yield running
    running.stop()


def _client_config(broker: KafkaBroker, user: str, password: str) -> Path:
    path = broker.root / f"client-{user}.properties"
    path.write_text(
        "security.protocol=SASL_PLAINTEXT\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{password}";\n'
    )
    return path


def _tool(
    broker: KafkaBroker,
    user: str,
    main: str,
    *args: str,
    stdin: str = "",
    password: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """One of Kafka's tools as `user` (with its password unless given), on the broker's jars."""
    config = _client_config(broker, user, PASSWORDS[user] if password is None else password)
    argv = [
        str(broker.java),
        "-Xmx256m",
        "-cp",
        broker.classpath(),
        main,
        "--bootstrap-server",
        broker.bootstrap,
        "--command-config",
        str(config),
        *args,
    ]
    return subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=TOOL_TIMEOUT_S,
    )


def _create_topic(broker: KafkaBroker, topic: str) -> None:
    done = _tool(
        broker,
        "admin",
        "org.apache.kafka.tools.TopicCommand",
        "--create",
        "--topic",
        topic,
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _topics(broker: KafkaBroker) -> set[str]:
    done = _tool(broker, "admin", "org.apache.kafka.tools.TopicCommand", "--list")
    assert done.returncode == 0, done.stdout + done.stderr
    return set(done.stdout.split())


def _produce(broker: KafkaBroker, user: str, topic: str, line: str) -> str:
    """What ConsoleProducer says when `user` sends `line` to `topic` and waits for the ack."""
    done = _tool(
        broker,
        user,
        "org.apache.kafka.tools.ConsoleProducer",
        "--topic",
        topic,
        "--sync",
        "--max-block-ms",
        "15000",
        stdin=line + "\n",
    )
    return done.stdout + done.stderr


@pytest.mark.stack
@needs_jvm
def test_fetch_is_cached_after_the_first(jars: Path) -> None:
    began = time.monotonic()
    assert kafka.fetch_kafka() == jars
    assert time.monotonic() - began < 5  # one `java -version`, no Maven
    assert (jars / f"kafka_2.13-{kafka.KAFKA_VERSION}.jar").is_file()
    assert (jars / "log4j-slf4j-impl-2.25.5.jar").is_file()


@pytest.mark.stack
@needs_jvm
def test_incomplete_cache_is_fetched_again(jars: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(jars, cache)
    (cache / f"kafka-tools-{kafka.KAFKA_VERSION}.jar").unlink()
    assert not kafka.cached(cache)
    assert kafka.fetch_kafka(cache) == cache
    assert kafka.cached(cache)


@pytest.mark.stack
@needs_jvm
def test_format_keeps_passwords_off_the_command_line(broker: Running) -> None:
    node = broker.broker
    assert node.formatted()
    assert not (node.root / ".format.args").exists()
    for password in PASSWORDS.values():
        assert password not in " ".join(node.broker_command())
    node.format_storage()  # formatted already: a no-op, same cluster
    meta = (node.data_dir / "meta.properties").read_text()
    assert f"cluster.id={node.cluster_id()}" in meta


@pytest.mark.stack
@needs_jvm
def test_acl_lets_gateway_write_one_topic_only(broker: Running) -> None:
    broker.start()
    node = broker.broker
    _create_topic(node, ALLOWED)
    _create_topic(node, FORBIDDEN)
    acl = _tool(
        node,
        "admin",
        "org.apache.kafka.tools.AclCommand",
        "--add",
        "--allow-principal",
        "User:gateway",
        "--operation",
        "Write",
        "--operation",
        "Describe",
        "--topic",
        ALLOWED,
    )
    assert acl.returncode == 0, acl.stdout + acl.stderr

    said = _produce(node, "gateway", ALLOWED, "recorded-1")
    assert "Exception" not in said, said
    said = _produce(node, "gateway", FORBIDDEN, "signed-1")
    assert "TopicAuthorizationException" in said, said
    assert FORBIDDEN in said

    read = _tool(
        node,
        "admin",
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--topic",
        ALLOWED,
        "--from-beginning",
        "--max-messages",
        "1",
        "--timeout-ms",
        "30000",
    )
    assert read.stdout.split() == ["recorded-1"], read.stdout + read.stderr


@pytest.mark.stack
@needs_jvm
def test_wrong_password_is_refused(broker: Running) -> None:
    broker.start()
    done = _tool(
        broker.broker, "gateway", "org.apache.kafka.tools.TopicCommand", "--list", password="no"
    )
    assert done.returncode != 0
    assert "SaslAuthenticationException" in done.stdout + done.stderr


@pytest.mark.stack
@needs_jvm
def test_restart_on_the_same_data_keeps_the_topic(broker: Running) -> None:
    broker.start()
    _create_topic(broker.broker, ALLOWED)
    broker.stop()
    broker.start()
    assert ALLOWED in _topics(broker.broker)


@pytest.mark.stack
@needs_jvm
def test_sigkill_then_restart_still_starts(broker: Running) -> None:
    broker.start()
    _create_topic(broker.broker, ALLOWED)
    broker.stop(signal.SIGKILL)
    broker.start()
    assert ALLOWED in _topics(broker.broker)
