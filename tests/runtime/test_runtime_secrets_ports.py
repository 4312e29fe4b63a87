"""Secrets, ports and state paths of the local runtime."""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kdemo.errors import ConfigError, PortInUse, SecretMismatch, UsageError
from kdemo.runtime.local.secrets import load_or_create_secrets
from kdemo.runtime.ports import allocate_ports, check_ports_free, port_env_var, port_names
from kdemo.runtime.statedir import default_state_dir, user_cache_dir

GOOD_SECRET = "a-webhook-secret-of-32-bytes-xyz"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_secrets_file_is_private_and_kept(state_dir: Path) -> None:
    """secrets.json is mode 0600 and a second load returns the very same secrets."""
    first = load_or_create_secrets(state_dir, env={})
    mode = stat.S_IMODE((state_dir / "secrets.json").stat().st_mode)
    assert mode == 0o600
    assert load_or_create_secrets(state_dir, env={}) == first


def test_secrets_have_the_documented_shapes(state_dir: Path) -> None:
    """Ed25519 PEM keypair that matches, hex nonce key, 0x+64 hex salt, one password per user."""
    s = load_or_create_secrets(state_dir, env={})
    key = serialization.load_pem_private_key(s.intent_signing_key.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public.decode() == s.intent_verify_key
    assert len(bytes.fromhex(s.link_nonce_secret)) == 32
    assert s.eip712_salt.startswith("0x")
    assert len(bytes.fromhex(s.eip712_salt[2:])) == 32
    assert set(s.db_passwords) == {"github_app", "ledger", "identity"}
    assert set(s.nats_passwords) == {
        "admin",
        "tap",
        "github-app",
        "frontend",
        "gateway",
        "identity",
    }
    assert len(set(s.nats_passwords.values()) | set(s.db_passwords.values())) == 9


def test_webhook_secret_from_environment_is_used_and_kept(state_dir: Path) -> None:
    """KDEMO_GITHUB_WEBHOOK_SECRET at the first up becomes the stack's secret."""
    env = {"KDEMO_GITHUB_WEBHOOK_SECRET": GOOD_SECRET}
    assert load_or_create_secrets(state_dir, env=env).webhook_secret == GOOD_SECRET
    assert load_or_create_secrets(state_dir, env={}).webhook_secret == GOOD_SECRET


@pytest.mark.parametrize("value", ["short", "x" * 15])
def test_short_webhook_secret_is_refused(state_dir: Path, value: str) -> None:
    """A webhook secret under 16 bytes is refused, naming the variable, and nothing is written."""
    with pytest.raises(ConfigError, match="KDEMO_GITHUB_WEBHOOK_SECRET is too short") as info:
        load_or_create_secrets(state_dir, env={"KDEMO_GITHUB_WEBHOOK_SECRET": value})
    assert info.value.hint
    assert not (state_dir / "secrets.json").exists()


def test_different_webhook_secret_for_existing_stack_is_an_error(state_dir: Path) -> None:
    """Changing the secret of an existing stack fails with a hint to unset it or purge."""
    load_or_create_secrets(state_dir, env={})
    with pytest.raises(SecretMismatch, match="differs") as info:
        load_or_create_secrets(state_dir, env={"KDEMO_GITHUB_WEBHOOK_SECRET": GOOD_SECRET})
    assert "down --purge" in info.value.hint


@pytest.mark.parametrize(
    ("name", "var"),
    [
        ("github-app", "KDEMO_GITHUB_APP_PORT"),
        ("postgres", "KDEMO_POSTGRES_PORT"),
        ("nats", "KDEMO_NATS_PORT"),
        ("calc", "KDEMO_CALC_PORT"),
        ("calc-metrics", "KDEMO_CALC_METRICS_PORT"),
        ("identity-metrics", "KDEMO_IDENTITY_METRICS_PORT"),
    ],
)
def test_port_variables_follow_the_node_names(name: str, var: str) -> None:
    """Each port is overridable by KDEMO_<NODE>_PORT."""
    assert name in port_names()
    assert port_env_var(name) == var


def test_ports_are_distinct_kept_and_overridable() -> None:
    """Fresh ports are all different; kept ones stay; an override wins."""
    first = allocate_ports(env={})
    assert len(set(first.values())) == len(first)
    assert allocate_ports(first, env={}) == first
    assert allocate_ports(first, env={"KDEMO_GATEWAY_PORT": "18080"})["gateway"] == 18080


@pytest.mark.parametrize("raw", ["http", "0", "70000", "-1"])
def test_bad_port_override_is_a_usage_error(raw: str) -> None:
    """A port variable that is not a port number names itself and how to fix it."""
    with pytest.raises(UsageError, match=f"KDEMO_NATS_PORT={raw!r}"):
        allocate_ports(env={"KDEMO_NATS_PORT": raw})


def test_same_port_twice_is_a_usage_error() -> None:
    """Two nodes cannot be given one port."""
    with pytest.raises(UsageError, match="both"):
        allocate_ports(env={"KDEMO_NATS_PORT": "15000", "KDEMO_CALC_PORT": "15000"})


def test_port_in_use_names_port_node_and_variable(listener: int) -> None:
    """A port held by another process raises PortInUse naming the port, node and variable."""
    ports = allocate_ports(env={"KDEMO_CALC_METRICS_PORT": str(listener)})
    with pytest.raises(PortInUse) as info:
        check_ports_free(ports)
    assert (info.value.port, info.value.node, info.value.variable) == (
        listener,
        "calc",
        "KDEMO_CALC_METRICS_PORT",
    )
    assert str(listener) in str(info.value)
    assert "KDEMO_CALC_METRICS_PORT" in info.value.hint


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"KDEMO_STATE_DIR": "/srv/k"}, Path("/srv/k")),
        ({"XDG_STATE_HOME": "/x/state"}, Path("/x/state/kdemo")),
        ({}, Path.home() / ".local/state/kdemo"),
    ],
)
def test_default_state_dir(env: dict[str, str], expected: Path) -> None:
    """KDEMO_STATE_DIR wins, then XDG_STATE_HOME, then ~/.local/state."""
    assert default_state_dir(env) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"XDG_CACHE_HOME": "/x/cache"}, Path("/x/cache/kdemo")),
        ({"XDG_CACHE_HOME": ""}, Path.home() / ".cache/kdemo"),
        ({}, Path.home() / ".cache/kdemo"),
    ],
)
def test_user_cache_dir(env: dict[str, str], expected: Path) -> None:
    """The cache the PostgreSQL templates (not as root) and the Kafka jars share."""
    assert user_cache_dir(env) == expected
