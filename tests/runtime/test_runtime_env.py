"""The environment each service is started with (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdemo.runtime.local.env import service_env, service_module
from kdemo.runtime.local.secrets import load_or_create_secrets
from kdemo.runtime.ports import allocate_ports
from kdemo.runtime.secrets import Secrets

SECRET_VARS = {
    "github-app": {"KDEMO_GITHUB_WEBHOOK_SECRET", "KDEMO_INTENT_SIGNING_KEY"},
    "frontend": {"KDEMO_INTENT_VERIFY_KEY", "KDEMO_LINK_NONCE_SECRET", "KDEMO_EIP712_SALT"},
    "gateway": {"KDEMO_EIP712_SALT"},
    "calc": set(),
    "identity": set(),
}
ALL_SECRET_VARS = set().union(*SECRET_VARS.values())


@pytest.fixture
def secrets(tmp_path: Path) -> Secrets:
    return load_or_create_secrets(tmp_path, env={})


@pytest.mark.parametrize("node", sorted(SECRET_VARS))
def test_each_service_gets_only_its_secrets(node: str, secrets: Secrets) -> None:
    """A service receives exactly the secrets it needs and no other."""
    env = service_env(node, ports=allocate_ports(env={}), secrets=secrets)
    assert set(env) & ALL_SECRET_VARS == SECRET_VARS[node]


@pytest.mark.parametrize(
    ("node", "db"), [("github-app", "github_app"), ("gateway", "ledger"), ("identity", "identity")]
)
def test_owner_gets_its_own_database_role(node: str, db: str, secrets: Secrets) -> None:
    """The database URL uses the owner's role and password on loopback."""
    ports = allocate_ports(env={})
    env = service_env(node, ports=ports, secrets=secrets)
    assert env["KDEMO_DATABASE_URL"] == (
        f"postgresql://{db}:{secrets.db_passwords[db]}@127.0.0.1:{ports['postgres']}/{db}"
    )


def test_grpc_services_get_grpc_and_metrics_ports(secrets: Secrets) -> None:
    """calc listens on its gRPC port and serves probes and metrics on a second one."""
    ports = allocate_ports(env={})
    env = service_env("calc", ports=ports, secrets=secrets)
    assert env["KDEMO_GRPC_PORT"] == str(ports["calc"])
    assert env["KDEMO_METRICS_PORT"] == str(ports["calc-metrics"])
    assert "KDEMO_NATS_URL" not in env
    assert "KDEMO_DATABASE_URL" not in env


def test_gateway_and_frontend_know_their_peers(secrets: Secrets) -> None:
    """gateway reaches calc and identity; frontend reaches gateway and identity."""
    ports = allocate_ports(env={})
    gateway = service_env("gateway", ports=ports, secrets=secrets)
    frontend = service_env(
        "frontend", ports=ports, secrets=secrets, settings={"KDEMO_CHAIN_ID": "5", "UNRELATED": "x"}
    )
    assert gateway["KDEMO_CALC_ADDR"] == f"127.0.0.1:{ports['calc']}"
    assert gateway["KDEMO_IDENTITY_ADDR"] == f"127.0.0.1:{ports['identity']}"
    assert frontend["KDEMO_GATEWAY_URL"] == f"http://127.0.0.1:{ports['gateway']}"
    assert "KDEMO_CALC_ADDR" not in frontend
    assert frontend["KDEMO_NATS_USER"] == "frontend"
    assert frontend["KDEMO_CHAIN_ID"] == "5"
    assert "UNRELATED" not in frontend
    assert frontend["KDEMO_PUBLIC_URL_GITHUB_APP"] == f"http://127.0.0.1:{ports['github-app']}"


def test_module_name_follows_node_name() -> None:
    """`github-app` runs as `python -m services.github_app`."""
    assert service_module("github-app") == "services.github_app"
