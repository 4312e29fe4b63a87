"""The Kafka broker on a cluster (`kdemo up --runtime kind|kubernetes --bus kafka`).

- The image: the jars the local runtime runs (fetched once with the machine's Maven) and
  Debian's Java 17 runtime on the services' base image, built by kdemo (`kafka_image/`);
  nothing is pulled. Its tag hashes what it is made of, as the services' image's does.
- The configuration: the Secret `kdemo-kafka-config`, rendered from the cluster's
  `kdemo-secrets` with kdemo.runtime.kafkabroker, the functions the local broker uses.
- From this machine (provisioning, the tap, dead letters) the broker is reached through a
  `kubectl port-forward` to a listener bound to the pod's loopback. A Kafka client dials
  the addresses the broker advertises, so that listener advertises the forward's own
  address: the forward's local port is chosen at the first `up` and kept in stack.json.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
import tempfile
from pathlib import Path
from typing import Any, Final

from kdemo.errors import ConfigError
from kdemo.runtime import kafkabroker, kafkaprobe
from kdemo.runtime.base import Progress
from kdemo.runtime.kafkabroker import (
    ADMIN_USER,
    LOG4J2_CONFIG,
    Listeners,
    argument_file,
    broker_arguments,
    fetch_kafka,
    format_arguments,
    server_properties,
)
from kdemo.runtime.kube.conventions import NAMESPACE, SECRET_NAME, container_ports
from kdemo.runtime.kube.image import base_identity, content_tag, docker_build, image_id
from kdemo.runtime.ports import HOST
from kdemo.runtime.secrets import Secrets

__all__ = [
    "CONFIG_SECRET",
    "HOST_LISTENER_PORT",
    "KAFKA_IMAGE_NAME",
    "POD",
    "build_kafka_image",
    "cluster_id",
    "kafka_config_secret",
    "kafka_image_reference",
    "kafka_listeners",
    "restart_fingerprint",
]

KAFKA_IMAGE_NAME: Final = "kdemo-kafka"
CONFIG_SECRET: Final = "kdemo-kafka-config"  # noqa: S105 - the Secret's name, not a secret
POD: Final = "kafka-0"
"""The StatefulSet's one pod; the headless Service `kafka` gives it the name kafka-0.kafka."""
HOST_LISTENER_PORT: Final = 9094
"""The pod's loopback listener that port-forwards from this machine reach."""
_CLIENT_PORT: Final = container_ports("kafka")[0].port
_CONFIG_DIR: Final = "/etc/kafka"
_LIBS: Final = "/opt/kafka/libs"
_DATA_DIR: Final = "/data/kafka"
_IMAGE_DIR: Final = Path(__file__).with_name("kafka_image")
_BUILD_HINT = (
    "see `kdemo doctor` (the image installs openjdk-17-jre-headless with apt, and the jars "
    "come from the machine's Maven)"
)


# -- the image ---------------------------------------------------------------------------------


def _image_inputs() -> list[tuple[str, bytes]]:
    return [
        ("Dockerfile", (_IMAGE_DIR / "Dockerfile").read_bytes()),
        ("kafkaprobe.py", Path(kafkaprobe.__file__).read_bytes()),
        ("pom.xml", kafkabroker.ARTIFACTS_POM.read_bytes()),
    ]


def kafka_image_reference(repository: str | None = None) -> str:
    """`[repository/]kdemo-kafka:<tag>`, the tag a hash of the Dockerfile, the probe, the
    pinned artifacts and the base image (by id when docker has it)."""
    name = f"{repository.rstrip('/')}/{KAFKA_IMAGE_NAME}" if repository else KAFKA_IMAGE_NAME
    return f"{name}:{content_tag(base_identity(), _image_inputs())}"


def build_kafka_image(reference: str, progress: Progress) -> None:
    """Build the image unless docker has it: the jars (fetched once) and the probe go into a
    temporary build context next to the Dockerfile."""
    if image_id(reference) is not None:
        progress(f"the image {reference} is already built")
        return
    progress("the Kafka jars (fetched once with Maven, then cached)")
    jars = fetch_kafka()
    with tempfile.TemporaryDirectory(prefix="kdemo-kafka-image-") as tmp:
        context = Path(tmp)
        shutil.copy2(_IMAGE_DIR / "Dockerfile", context / "Dockerfile")
        shutil.copy2(kafkaprobe.__file__, context / "kafkaprobe.py")
        (context / "libs").mkdir()
        for jar in sorted(jars.glob("*.jar")):
            shutil.copy2(jar, context / "libs" / jar.name)
        docker_build(reference, context, progress, hint=_BUILD_HINT)


# -- the configuration -------------------------------------------------------------------------


def kafka_listeners(forward_port: int) -> Listeners:
    """The pod's listeners: services dial the pod's own name; the node reaches itself on
    loopback; this machine through the port-forward on 127.0.0.1:`forward_port`."""
    return Listeners(
        client_bind=f"0.0.0.0:{_CLIENT_PORT}",
        client_advertised=f"{POD}.kafka:{_CLIENT_PORT}",
        controller="127.0.0.1:9093",
        internal="127.0.0.1:9095",
        host_bind=f"127.0.0.1:{HOST_LISTENER_PORT}",
        host_advertised=f"{HOST}:{forward_port}",
    )


def cluster_id(secrets: Secrets) -> str:
    """The cluster's id, derived from the admin's password: the same on every `up` (the
    storage is formatted once) without another value to keep in the Secret."""
    key = _passwords(secrets)[ADMIN_USER].encode()
    for counter in range(256):
        raw = hmac.new(key, b"kdemo kafka cluster id %d" % counter, hashlib.sha256).digest()
        candidate = kafkabroker.cluster_id_text(raw[:16])
        if not candidate.startswith("-"):  # a command line would read it as an option
            return candidate
    raise AssertionError("no cluster id without a leading '-' in 256 tries")  # pragma: no cover


def _passwords(secrets: Secrets) -> dict[str, str]:
    if ADMIN_USER not in secrets.kafka_passwords:
        raise ConfigError(
            f"the Secret {NAMESPACE}/{SECRET_NAME} holds no Kafka passwords",
            "it was made before kdemo ran Kafka: `kdemo down`, then `kdemo up --bus kafka`",
        )
    return dict(secrets.kafka_passwords)


def kafka_config_secret(secrets: Secrets, forward_port: int) -> dict[str, Any]:
    """The broker's files: server.properties and log4j2.properties, and the java argument
    files of the init container (format, once) and of the broker."""
    passwords = _passwords(secrets)
    config = f"{_CONFIG_DIR}/server.properties"
    classpath = f"{_LIBS}/*"
    files = {
        "server.properties": server_properties(
            kafka_listeners(forward_port), _DATA_DIR, passwords[ADMIN_USER]
        ),
        "log4j2.properties": LOG4J2_CONFIG,
        "broker.args": argument_file(
            broker_arguments(classpath, f"{_CONFIG_DIR}/log4j2.properties", config)
        ),
        "format.args": argument_file(
            format_arguments(classpath, config, cluster_id(secrets), passwords)
        ),
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": CONFIG_SECRET,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "kdemo"},
        },
        "type": "Opaque",
        "stringData": files,
    }


def restart_fingerprint(secret: dict[str, Any]) -> dict[str, Any]:
    """What of the Secret the broker reads when it starts (format.args, whose salts change on
    every render, only matters to a storage not formatted yet)."""
    data = secret["stringData"]
    return {k: data[k] for k in ("server.properties", "log4j2.properties", "broker.args")}
