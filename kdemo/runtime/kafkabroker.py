"""The Apache Kafka broker: one KRaft node (controller and broker, no ZooKeeper).

The jars come from Maven Central through the machine's own `mvn`, resolved once from the
pinned list in `kafka_artifacts/pom.xml` into a cache directory, and run with the machine's
Java 17+ as `java -cp '<cache>/*' ...` (nothing is downloaded by kdemo itself). The local
runtime runs `KafkaBroker` under its supervisor; a cluster runs the same jars and the same
`server_properties` in a pod (kdemo/runtime/kube/kafka.py).

Security follows the NATS bus: clients authenticate with SASL/SCRAM-SHA-512 (users added to
the metadata log when the storage is formatted), the StandardAuthorizer denies what no ACL
allows, the admin user is the only super user, and on this machine both listeners bind
127.0.0.1 only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kdemo.errors import KdemoError
from kdemo.runtime.kafkaprobe import api_versions_ok
from kdemo.runtime.ports import HOST
from kdemo.runtime.statedir import atomic_write, user_cache_dir

__all__ = [
    "CACHE_ENV",
    "KAFKA_VERSION",
    "KafkaBroker",
    "Listeners",
    "argument_file",
    "broker_arguments",
    "cluster_id_text",
    "default_cache_dir",
    "fetch_kafka",
    "find_java",
    "find_mvn",
    "format_arguments",
    "kafka_broker",
    "new_cluster_id",
    "server_properties",
]

KAFKA_VERSION = "4.4.0"
"""Must match kafka.version in kafka_artifacts/pom.xml."""
CACHE_ENV = "KDEMO_KAFKA_CACHE"
"""The directory holding the jars, instead of ~/.cache/kdemo/kafka-<version>."""
ARTIFACTS_POM = Path(__file__).with_name("kafka_artifacts") / "pom.xml"
MARKER = "kdemo-kafka.json"
"""Written last into the cache: without it (or with another version) the cache is refetched."""
MIN_JAVA = 17
"""Kafka 4.x brokers and tools are compiled for Java 17 (class file version 61)."""
INSTALL_HINT = "install them: `apt-get install openjdk-17-jre-headless maven`"
ADMIN_USER = "admin"
NODE_ID = 1
SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
HEAP = ("-Xms128m", "-Xmx384m")
"""Bounded so that the broker fits next to the services on a small machine."""
_SAFE_USER = re.compile(r"[A-Za-z0-9._-]+")


# -- the jars ----------------------------------------------------------------------------------


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$KDEMO_KAFKA_CACHE`, else `$XDG_CACHE_HOME/kdemo/kafka-<version>` (~/.cache by default)."""
    env = os.environ if env is None else env
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser().absolute()
    return user_cache_dir(env) / f"kafka-{KAFKA_VERSION}"


def locate_java() -> Path | None:
    """`$JAVA_HOME/bin/java`, else `java` on PATH (None when neither); its version unchecked."""
    java_home = os.environ.get("JAVA_HOME")
    home_java = Path(java_home) / "bin" / "java" if java_home else None
    return home_java if home_java and home_java.is_file() else _which("java")


def find_java() -> Path:
    """`locate_java()`, which must be there and be Java 17 or newer."""
    found = locate_java()
    if found is None:
        raise KdemoError(f"Java {MIN_JAVA}+ is missing (no `java` on PATH)", INSTALL_HINT)
    major = java_major(found)
    if major < MIN_JAVA:
        raise KdemoError(
            f"{found} is Java {major}; Kafka {KAFKA_VERSION} needs Java {MIN_JAVA} or newer",
            INSTALL_HINT,
        )
    return found


def java_major(java: Path) -> int:
    """The feature release of `java` (8 for "1.8.0_392", 17 for "17.0.15")."""
    done = subprocess.run(
        [str(java), "-version"], capture_output=True, text=True, check=False, timeout=60
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if match is None:
        raise KdemoError(f"cannot tell the version of {java}: {done.stderr.strip()}", INSTALL_HINT)
    first = int(match.group(1))
    return int(match.group(2) or 0) if first == 1 else first


def find_mvn() -> Path:
    found = _which("mvn")
    if found is None:
        raise KdemoError(
            "Maven is missing (no `mvn` on PATH): it fetches the Kafka jars", INSTALL_HINT
        )
    return found


def _which(name: str) -> Path | None:
    on_path = shutil.which(name)
    return Path(on_path) if on_path else None


def _pom_digest() -> str:
    return hashlib.sha256(ARTIFACTS_POM.read_bytes()).hexdigest()


def cached(cache_dir: Path) -> bool:
    """The cache holds every jar its marker lists, for this version and this pom."""
    try:
        marker = json.loads((cache_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("kafka") != KAFKA_VERSION or marker.get("pom_sha256") != _pom_digest():
        return False
    jars = marker.get("jars") or []
    return bool(jars) and all((cache_dir / jar).is_file() for jar in jars)


def fetch_kafka(cache_dir: Path | None = None) -> Path:
    """The directory of the broker's jars (`java -cp '<dir>/*'`), fetched on first use.

    Offline first: a complete cache is used as is, and Maven is tried with `-o` (its own
    ~/.m2 may already hold everything) before it may go to Maven Central. The jars are
    copied into a temporary sibling and renamed into place, so an interrupted fetch never
    looks complete.
    """
    cache_dir = cache_dir or default_cache_dir()
    find_java()  # a cache is useless without a Java that runs it: say so before fetching
    if cached(cache_dir):
        return cache_dir
    mvn = find_mvn()
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_dir.parent, prefix=f".{cache_dir.name}-"))
    try:
        _copy_dependencies(mvn, staging)
        _write_marker(staging)
        _install(staging, cache_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cache_dir


def _copy_dependencies(mvn: Path, into: Path) -> None:
    base = [
        str(mvn),
        "-q",
        "-B",
        "-f",
        str(ARTIFACTS_POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={into}",
        "-DincludeScope=runtime",
    ]
    offline = subprocess.run([*base, "-o"], capture_output=True, text=True, check=False)
    if offline.returncode == 0:
        return
    online = subprocess.run(base, capture_output=True, text=True, check=False)
    if online.returncode != 0:
        output = (online.stdout + online.stderr).strip()
        raise KdemoError(
            f"Maven could not fetch Kafka {KAFKA_VERSION} ({ARTIFACTS_POM}): {output[-800:]}",
            "check that this machine's `mvn` reaches Maven Central (proxy, mirror in "
            "~/.m2/settings.xml), then run the command again",
        )


def _write_marker(staging: Path) -> None:
    jars = sorted(p.name for p in staging.glob("*.jar"))
    marker = {"kafka": KAFKA_VERSION, "pom_sha256": _pom_digest(), "jars": jars}
    (staging / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _install(staging: Path, cache_dir: Path) -> None:
    """Move the staged jars into `cache_dir`, replacing an incomplete or outdated cache."""
    if cache_dir.exists():
        shutil.rmtree(cache_dir)
    try:
        staging.rename(cache_dir)
    except OSError:
        if not cached(cache_dir):  # not a concurrent fetch that finished first
            raise


# -- one broker --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KafkaBroker:
    """One combined KRaft node whose files all live under `root`."""

    java: Path
    jars: Path
    """The cache directory returned by `fetch_kafka`."""
    root: Path
    """Holds server.properties, log4j2.properties, cluster.id and the data (`data/`)."""
    port: int
    """The SASL_PLAINTEXT (SCRAM-SHA-512) listener for clients."""
    controller_port: int
    """The KRaft controller's listener (SASL_PLAINTEXT, PLAIN, the admin only)."""
    passwords: Mapping[str, str] = field(repr=False)  # never in a traceback or a log
    """Every SCRAM user and its password; must contain the admin."""

    @property
    def config_path(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def classpath(self) -> str:
        # The JVM expands `dir/*` itself; the shell must not (there is none in between).
        return str(self.jars / "*")

    def cluster_id(self) -> str:
        """The cluster's id: made once and kept in `root/cluster.id` with the data."""
        path = self.root / "cluster.id"
        if path.exists():
            return path.read_text().strip()
        cid = new_cluster_id()
        self.root.mkdir(parents=True, exist_ok=True)
        _write_private(path, cid + "\n")
        return cid

    def write_config(self) -> None:
        """server.properties holds the admin's password (the broker logs in as it): 0600."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        _write_private(self.config_path, self.render_config())
        _write_private(self.log4j_path, LOG4J2_CONFIG)

    def render_config(self) -> str:
        return server_properties(
            Listeners.on_loopback(self.port, self.controller_port),
            self.data_dir,
            self.passwords[ADMIN_USER],
        )

    def formatted(self) -> bool:
        return (self.data_dir / "meta.properties").exists()

    def format_storage(self, timeout: float = 120.0) -> None:
        """Format the data directory once, with the cluster id and every SCRAM user.

        The users' credentials go to the storage tool in a 0600 argument file (`java @file`),
        never on its command line, which every local user can read in /proc.
        """
        if self.formatted():
            return
        self.write_config()
        if self.data_dir.exists():  # a format that died before writing meta.properties
            shutil.rmtree(self.data_dir)
        args = format_arguments(
            self.classpath(), self.config_path, self.cluster_id(), self.passwords
        )
        argfile = self.root / ".format.args"
        _write_private(argfile, argument_file(args))
        try:
            done = subprocess.run(
                [str(self.java), f"@{argfile}"],
                capture_output=True,
                text=True,
                check=False,
                timeout=timeout,
            )
        finally:
            argfile.unlink(missing_ok=True)
        if done.returncode != 0 or not self.formatted():
            raise KdemoError(
                f"formatting the Kafka storage in {self.data_dir} failed: "
                f"{(done.stderr or done.stdout).strip()[-800:]}",
                "delete that directory to start over with an empty bus",
            )

    def broker_command(self) -> list[str]:
        """The broker in the foreground, logging to stdout (the supervisor keeps its log)."""
        return [
            str(self.java),
            *broker_arguments(self.classpath(), self.log4j_path, self.config_path),
        ]

    def ready(self) -> bool:
        """The client listener answers a Kafka request (sockets open before it serves any)."""
        return api_versions_ok(HOST, self.port)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise KdemoError(
                    f"Kafka on {self.bootstrap} did not become ready within {timeout:.0f} s",
                    "see the kafka log",
                )
            time.sleep(0.1)


def kafka_broker(
    root: Path,
    port: int,
    controller_port: int,
    passwords: Mapping[str, str],
    cache_dir: Path | None = None,
) -> KafkaBroker:
    """A broker on the cached jars (fetched if need be) and this machine's Java."""
    if ADMIN_USER not in passwords:
        raise ValueError(f"the Kafka users must include {ADMIN_USER!r}")
    for user, password in passwords.items():
        _check_user(user)
        _jaas_value(password)
    jars = fetch_kafka(cache_dir)
    return KafkaBroker(find_java(), jars, root, port, controller_port, dict(passwords))


# -- one node's configuration, wherever it runs ---------------------------------------------------


@dataclass(frozen=True)
class Listeners:
    """Where the node listens and what it tells clients to dial (`host:port` each).

    `client` serves the services (SASL/SCRAM); `controller` only this node itself (the
    KRaft quorum of one). On a cluster two more: `internal`, a loopback listener for the
    node's requests to itself (no DNS, no policy needed for a broker to reach its own
    partitions), and `host`, bound in the pod and reached from this machine through a
    port-forward, so it advertises the forward's address (`host_advertised`).
    """

    client_bind: str
    client_advertised: str
    controller: str
    internal: str | None = None
    host_bind: str | None = None
    host_advertised: str | None = None

    @classmethod
    def on_loopback(cls, port: int, controller_port: int) -> Listeners:
        return cls(f"{HOST}:{port}", f"{HOST}:{port}", f"{HOST}:{controller_port}")

    def bound(self) -> dict[str, str]:
        found = {"CLIENT": self.client_bind, "CONTROLLER": self.controller}
        if self.internal:
            found["INTERNAL"] = self.internal
        if self.host_bind:
            found["HOST"] = self.host_bind
        return found

    def advertised(self) -> dict[str, str]:
        found = {"CLIENT": self.client_advertised}
        if self.internal:
            found["INTERNAL"] = self.internal
        if self.host_bind:
            found["HOST"] = self.host_advertised or self.host_bind
        return found


def server_properties(listeners: Listeners, data_dir: Path | str, admin_password: str) -> str:
    """server.properties of one combined KRaft node: SCRAM clients, an ACL for everything."""
    admin = _jaas_value(admin_password)
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    scram_login = f'{scram} required username="{ADMIN_USER}" password="{admin}";'
    bound, advertised = listeners.bound(), listeners.advertised()
    scram_listeners = [name for name in bound if name != "CONTROLLER"]
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        # A static one-voter quorum: no dynamic-quorum bootstrapping to keep in step.
        "controller.quorum.voters": f"{NODE_ID}@{listeners.controller}",
        "listeners": ",".join(f"{name}://{addr}" for name, addr in bound.items()),
        "advertised.listeners": ",".join(f"{name}://{addr}" for name, addr in advertised.items()),
        "listener.security.protocol.map": ",".join(f"{name}:SASL_PLAINTEXT" for name in bound),
        "inter.broker.listener.name": "INTERNAL" if listeners.internal else "CLIENT",
        "controller.listener.names": "CONTROLLER",
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        **{
            f"listener.name.{name.lower()}.sasl.enabled.mechanisms": SCRAM_MECHANISM
            for name in scram_listeners
        },
        # Every SASL listener needs a login module; the broker itself logs in as the admin.
        **{
            f"listener.name.{name.lower()}.scram-sha-512.sasl.jaas.config": scram_login
            for name in scram_listeners
        },
        # SCRAM users live in the metadata log, which the controller itself serves, so
        # its listener uses PLAIN with the admin declared here. Not PLAINTEXT: the broker
        # would then be User:ANONYMOUS, which would have to be a super user, and so would
        # any local process that dials this port.
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": (
            f'{plain} required username="{ADMIN_USER}" password="{admin}" '
            f'user_{ADMIN_USER}="{admin}";'
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN_USER}",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(data_dir),
        # Topics come from the topology, made by the admin: a typo must not create one.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        # One node: every internal topic has one replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{key}={_escape_property(value)}\n" for key, value in settings.items())


def broker_arguments(classpath: str, log4j: Path | str, config: Path | str) -> list[str]:
    """`java` arguments that run the node in the foreground, logging to stdout."""
    return [
        *HEAP,
        # A broker out of memory is half-dead; exiting lets its supervisor restart it.
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(config),
    ]


def format_arguments(
    classpath: str, config: Path | str, cluster_id: str, passwords: Mapping[str, str]
) -> list[str]:
    """`java` arguments that format a node's storage once (a formatted one is left alone),
    with every SCRAM user: an argument file's content, never a command line (the salted
    passwords would be readable in /proc)."""
    args = ["-cp", classpath, "kafka.tools.StorageTool", "format", "--config", str(config)]
    args += ["--cluster-id", cluster_id, "--ignore-formatted"]
    for user, password in sorted(passwords.items()):
        args += ["--add-scram", scram_credential(user, password)]
    return args


def argument_file(args: Sequence[str]) -> str:
    """The text of a `java @file` holding `args`."""
    return "".join(_argfile_line(a) for a in args)


# -- helpers -----------------------------------------------------------------------------------


def new_cluster_id() -> str:
    """What `kafka-storage random-uuid` prints: 16 random bytes, URL-safe base64, unpadded.

    Like Kafka's Uuid.randomUuid it avoids a leading '-', which command lines take for an option.
    """
    while True:
        cid = cluster_id_text(uuid.uuid4().bytes)
        if not cid.startswith("-"):
            return cid


def cluster_id_text(raw: bytes) -> str:
    """16 bytes as Kafka writes a cluster id (URL-safe base64, unpadded)."""
    if len(raw) != 16:
        raise ValueError(f"a Kafka cluster id is 16 bytes, not {len(raw)}")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def scram_credential(user: str, password: str, iterations: int = SCRAM_ITERATIONS) -> str:
    """An `--add-scram` value with the salted password (RFC 5802 Hi), not the password itself:
    nothing to quote in the password, and the same salted form Kafka stores."""
    _check_user(user)
    salt = secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return (
        f"{SCRAM_MECHANISM}=[name={user},iterations={iterations},"
        f'salt="{b64(salt).decode()}",saltedpassword="{b64(salted).decode()}"]'
    )


def _check_user(user: str) -> None:
    # Names go into `--add-scram` and ACL principals unquoted.
    if not _SAFE_USER.fullmatch(user):
        raise ValueError(f"Kafka user names are [A-Za-z0-9._-]+, not {user!r}")


def _jaas_value(password: str) -> str:
    # JAAS quotes values with '"'; kdemo's generated secrets never need escaping.
    if not password or any(c in password for c in '"\\\n\r'):
        raise ValueError(
            "a Kafka password must be non-empty, without quotes, backslashes or newlines"
        )
    return password


def _escape_property(value: str) -> str:
    """A value as java.util.Properties reads it back (backslash is its escape)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _argfile_line(arg: str) -> str:
    """One argument of a `java @file`: single-quoted, so its double quotes stay literal."""
    if "'" in arg or "\n" in arg:
        raise ValueError(f"cannot put {arg!r} in a java argument file")
    return f"'{arg}'\n"


def _write_private(path: Path, text: str) -> None:
    atomic_write(path, text.encode(), mode=0o600)


LOG4J2_CONFIG = """\
# kdemo: the broker logs to stdout; the supervisor appends it to logs/kafka.log.
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
# as in Kafka's own log4j2.yaml: one line per request or state change is noise here
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = INFO
"""
