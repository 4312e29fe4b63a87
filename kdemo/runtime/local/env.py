"""The environment each service process is started with (see docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Mapping

from kdemo import topology
from kdemo.runtime import kafkaconfig, natsconfig
from kdemo.runtime.buses import DEFAULT_BUS
from kdemo.runtime.ports import HOST, grpc_services
from kdemo.runtime.secrets import Secrets
from kdemo.runtime.settings import PASSED_THROUGH, public_url_env

__all__ = ["public_urls", "service_env", "service_module"]


def service_module(node: str) -> str:
    """`github-app` -> `services.github_app` (run with `python -m`)."""
    return "services." + node.replace("-", "_")


def public_urls(ports: Mapping[str, int]) -> dict[str, str]:
    """Public base URLs of the exposed services, keyed by node name."""
    return {n.name: f"http://{HOST}:{ports[n.name]}" for n in topology.service_nodes() if n.exposed}


def service_env(
    node: str,
    *,
    ports: Mapping[str, int],
    secrets: Secrets,
    settings: Mapping[str, str] | None = None,
    bus: str = DEFAULT_BUS,
) -> dict[str, str]:
    """Every `KDEMO_*` variable `node` needs: its ports, database, bus user, peers, secrets.

    On Kafka `KDEMO_BUS=kafka` names the bus (the services default to NATS); a bus
    service is given its user on the stack's bus only (`KDEMO_NATS_*`, or
    `KDEMO_KAFKA_BOOTSTRAP`/`_USER`/`_PASSWORD`).
    """
    spec = topology.node(node)
    env: dict[str, str] = {"KDEMO_HOST": HOST}
    if bus == "nats":
        env["KDEMO_NATS_STREAM"] = topology.STREAM_NAME
    else:  # NATS is the services' default: a NATS stack's environment is the cluster's too
        env["KDEMO_BUS"] = bus
    if node in grpc_services():
        env["KDEMO_GRPC_PORT"] = str(ports[node])
        env["KDEMO_METRICS_PORT"] = str(ports[f"{node}-metrics"])
    else:
        env["KDEMO_HTTP_PORT"] = str(ports[node])
    if spec.database:
        from kdemo.runtime.local.postgres import role_url  # late: it loads psycopg

        env["KDEMO_DATABASE_URL"] = role_url(
            ports["postgres"], spec.database, secrets.db_passwords[spec.database], spec.database
        )
    if bus == "nats" and node in natsconfig.bus_services():
        env["KDEMO_NATS_URL"] = f"nats://{HOST}:{ports['nats']}"
        env["KDEMO_NATS_USER"] = node
        env["KDEMO_NATS_PASSWORD"] = secrets.nats_passwords[node]
    if bus == "kafka" and node in kafkaconfig.bus_services():  # the users kafkaadmin makes
        env["KDEMO_KAFKA_BOOTSTRAP"] = f"{HOST}:{ports['kafka']}"
        env["KDEMO_KAFKA_USER"] = node
        env["KDEMO_KAFKA_PASSWORD"] = secrets.kafka_passwords[node]
    targets = {e.target for e in topology.edges_from(node)}
    for peer in grpc_services():
        if peer in targets:
            env[f"KDEMO_{peer.upper()}_ADDR"] = f"{HOST}:{ports[peer]}"
    if "gateway" in targets:
        env["KDEMO_GATEWAY_URL"] = f"http://{HOST}:{ports['gateway']}"
    for name, url in public_urls(ports).items():
        env[public_url_env(name)] = url
    if node == "github-app":
        env["KDEMO_GITHUB_WEBHOOK_SECRET"] = secrets.webhook_secret
        env["KDEMO_INTENT_SIGNING_KEY"] = secrets.intent_signing_key
    if node == "frontend":
        env["KDEMO_INTENT_VERIFY_KEY"] = secrets.intent_verify_key
        env["KDEMO_LINK_NONCE_SECRET"] = secrets.link_nonce_secret
    if node in ("frontend", "gateway"):
        env["KDEMO_EIP712_SALT"] = secrets.eip712_salt
    for key in PASSED_THROUGH:
        if settings and settings.get(key):
            env[key] = settings[key]
    return env
