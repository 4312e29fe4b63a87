"""The stack's secrets: what they are and how they are made, whichever runtime keeps them.

The local runtime keeps them in `secrets.json` (`kdemo.runtime.local.secrets`), the cluster
runtimes in the Secret `kdemo-secrets` (`kdemo.runtime.kube.secrets`); both make them here.
"""

from __future__ import annotations

import os
import secrets as _random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kdemo import topology
from kdemo.errors import ConfigError

__all__ = [
    "MIN_WEBHOOK_SECRET_BYTES",
    "WEBHOOK_SECRET_ENV",
    "Secrets",
    "bus_users",
    "complete_secrets",
    "database_roles",
    "given_webhook_secret",
    "new_secrets",
    "validate_webhook_secret",
]

WEBHOOK_SECRET_ENV = "KDEMO_GITHUB_WEBHOOK_SECRET"  # noqa: S105 - a variable name, not a secret
MIN_WEBHOOK_SECRET_BYTES = 16


@dataclass(frozen=True)
class Secrets:
    webhook_secret: str
    intent_signing_key: str
    """Ed25519 private key, PEM (PKCS#8)."""
    intent_verify_key: str
    """Ed25519 public key, PEM (SubjectPublicKeyInfo)."""
    link_nonce_secret: str
    """HMAC key for SIWE nonces, hex."""
    eip712_salt: str
    """`0x` + 64 hex."""
    postgres_password: str
    """Password of the `postgres` superuser."""
    db_passwords: dict[str, str]
    """Database role (= database name) -> password."""
    nats_passwords: dict[str, str]
    """NATS user (`admin`, `tap`, service names) -> password."""
    kafka_passwords: dict[str, str] = field(default_factory=dict)
    """Kafka SCRAM user (`admin`, `tap`, service names) -> password (`--bus kafka`). Empty in
    the secrets of a stack made before Kafka: `up` completes them."""


def database_roles() -> tuple[str, ...]:
    """One role per owned database; the role is named like its database."""
    return tuple(n.database for n in topology.NODES if n.database)


def bus_users() -> tuple[str, ...]:
    """`admin`, `tap` and every service that talks to the bus (the same users on either
    bus: `kafkaconfig.kafka_users()` names them too)."""
    services = tuple(e.source for e in topology.EDGES if e.target == "nats")
    return ("admin", "tap", *services)


def validate_webhook_secret(value: str, source: str = WEBHOOK_SECRET_ENV) -> str:
    if len(value.encode()) < MIN_WEBHOOK_SECRET_BYTES:
        raise ConfigError(
            f"{source} is too short: {len(value.encode())} bytes, at least "
            f"{MIN_WEBHOOK_SECRET_BYTES} are required",
            "use a random value, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`",
        )
    return value


def given_webhook_secret(env: Mapping[str, str] | None = None) -> str | None:
    """The webhook secret the user gives in `env` (checked), or None."""
    env = os.environ if env is None else env
    given = env.get(WEBHOOK_SECRET_ENV) or None
    if given is not None:
        validate_webhook_secret(given)
    return given


def _password() -> str:
    # URL-safe alphabet: passwords go into database URLs and the NATS config unescaped.
    return _random.token_urlsafe(24)


def complete_secrets(data: dict[str, Any], webhook_secret: str | None = None) -> bool:
    """Add to `data` (the fields of `Secrets`) whatever it lacks, newly made; whether
    anything was added. A missing webhook secret becomes `webhook_secret`, else a random one.
    """
    changed = False
    if "webhook_secret" not in data:
        data["webhook_secret"] = webhook_secret or _random.token_hex(32)
        changed = True
    if "intent_signing_key" not in data or "intent_verify_key" not in data:
        # Late: only new secrets need it, and every command that reads the stack loads this.
        from services.common.intent_tokens import generate_ed25519_keypair

        data["intent_signing_key"], data["intent_verify_key"] = generate_ed25519_keypair()
        changed = True
    defaults: dict[str, Callable[[], str]] = {
        "link_nonce_secret": lambda: _random.token_hex(32),
        "eip712_salt": lambda: "0x" + _random.token_hex(32),
        "postgres_password": _password,
    }
    for key, make in defaults.items():
        if key not in data:
            data[key] = make()
            changed = True
    for key, names in (
        ("db_passwords", database_roles()),
        ("nats_passwords", bus_users()),
        ("kafka_passwords", bus_users()),
    ):
        table = data.setdefault(key, {})
        for name in names:
            if name not in table:
                table[name] = _password()
                changed = True
    return changed


def new_secrets(env: Mapping[str, str] | None = None) -> Secrets:
    """Fresh secrets, the webhook secret from `env` when it gives one (checked)."""
    data: dict[str, Any] = {}
    complete_secrets(data, given_webhook_secret(env))
    return Secrets(**data)
