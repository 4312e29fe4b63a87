"""The Kafka broker's configuration on a cluster (kdemo.runtime.kube.kafka), without one:
tests/kind/test_lifecycle.py runs it for real."""

from __future__ import annotations

import base64
import dataclasses
import shlex
from pathlib import Path

import pytest

from kdemo.errors import ConfigError
from kdemo.runtime.kafkaconfig import kafka_users
from kdemo.runtime.kube import kafka
from kdemo.runtime.kube.image import BASE_IMAGE_ENV
from kdemo.runtime.kube.secrets import config_hash, new_secrets

FORWARD_PORT = 45123


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")


def _args(text: str) -> list[str]:
    return [arg for line in text.splitlines() for arg in shlex.split(line)]


@pytest.fixture(scope="module")
def secret() -> dict[str, object]:
    return kafka.kafka_config_secret(new_secrets({}), FORWARD_PORT)


def test_the_pod_listens_for_services_and_keeps_the_rest_on_its_loopback(secret: dict) -> None:
    """Services dial the pod's own name; the controller and the broker's requests to itself
    stay on loopback; this machine's port-forward reaches a loopback listener that advertises
    the forward's address."""
    props = _properties(secret["stringData"]["server.properties"])
    listeners = dict(item.split("://") for item in props["listeners"].split(","))
    assert listeners == {
        "CLIENT": "0.0.0.0:9092",
        "CONTROLLER": "127.0.0.1:9093",
        "INTERNAL": "127.0.0.1:9095",
        "HOST": "127.0.0.1:9094",
    }
    advertised = dict(item.split("://") for item in props["advertised.listeners"].split(","))
    assert advertised == {
        "CLIENT": "kafka-0.kafka:9092",
        "INTERNAL": "127.0.0.1:9095",
        "HOST": f"127.0.0.1:{FORWARD_PORT}",
    }
    assert props["inter.broker.listener.name"] == "INTERNAL"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["log.dirs"] == "/data/kafka"
    for name in ("client", "internal", "host"):  # every SASL listener can log its clients in
        assert props[f"listener.name.{name}.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
        assert "ScramLoginModule" in props[f"listener.name.{name}.scram-sha-512.sasl.jaas.config"]


def test_storage_is_formatted_once_with_every_user_and_no_password(secret: dict) -> None:
    secrets = new_secrets({})
    args = _args(kafka.kafka_config_secret(secrets, FORWARD_PORT)["stringData"]["format.args"])
    assert args[:4] == ["-cp", "/opt/kafka/libs/*", "kafka.tools.StorageTool", "format"]
    assert "--ignore-formatted" in args
    users = [a.split("name=")[1].split(",")[0] for a in args if a.startswith("SCRAM-SHA-512=")]
    assert sorted(users) == sorted(kafka_users())
    text = " ".join(args)
    assert all(password not in text for password in secrets.kafka_passwords.values())


def test_the_broker_runs_with_a_bounded_heap_from_the_mounted_files(secret: dict) -> None:
    args = _args(secret["stringData"]["broker.args"])
    assert "-Xmx384m" in args
    assert args[-2:] == ["kafka.Kafka", "/etc/kafka/server.properties"]
    assert "-Dlog4j2.configurationFile=/etc/kafka/log4j2.properties" in args


def test_the_cluster_id_is_the_secret_s_own_and_stable() -> None:
    first, second = new_secrets({}), new_secrets({})
    cid = kafka.cluster_id(first)
    assert cid == kafka.cluster_id(first)
    assert cid != kafka.cluster_id(second)
    assert len(base64.urlsafe_b64decode(cid + "==")) == 16
    assert not cid.startswith("-")


def test_a_render_that_changes_nothing_restarts_nothing() -> None:
    """format.args differs on every render (fresh salts); the broker's restart hash doesn't."""
    secrets = new_secrets({})
    a = kafka.kafka_config_secret(secrets, FORWARD_PORT)
    b = kafka.kafka_config_secret(secrets, FORWARD_PORT)
    assert a["stringData"]["format.args"] != b["stringData"]["format.args"]
    assert config_hash(kafka.restart_fingerprint(a)) == config_hash(kafka.restart_fingerprint(b))
    moved = kafka.kafka_config_secret(secrets, FORWARD_PORT + 1)
    assert config_hash(kafka.restart_fingerprint(moved)) != config_hash(
        kafka.restart_fingerprint(a)
    )


def test_a_secret_made_before_kafka_is_a_clear_error() -> None:
    old = dataclasses.replace(new_secrets({}), kafka_passwords={})
    with pytest.raises(ConfigError, match="holds no Kafka passwords") as caught:
        kafka.kafka_config_secret(old, FORWARD_PORT)
    assert "kdemo down" in (caught.value.hint or "")


def test_the_image_tag_follows_its_inputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No docker daemon answers here (the tag then hashes the base image's name, not its id):
    # the user's own daemon is never asked.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    monkeypatch.setenv(BASE_IMAGE_ENV, "no-such-base-image:1")
    first = kafka.kafka_image_reference()
    assert first == kafka.kafka_image_reference()
    assert first.startswith("kdemo-kafka:")
    assert kafka.kafka_image_reference("registry.example:5000/team").startswith(
        "registry.example:5000/team/kdemo-kafka:"
    )
    monkeypatch.setenv(BASE_IMAGE_ENV, "no-such-base-image:2")
    assert kafka.kafka_image_reference() != first
