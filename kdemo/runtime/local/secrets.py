"""The stack's secrets: created once at the first `up`, kept in `secrets.json` (mode 0600)."""

from __future__ import annotations

import os
import secrets as _random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kdemo import topology
from kdemo.errors import ConfigError, SecretMismatch, StackNotUp
from kdemo.runtime.local.state import read_json, write_json

__all__ = [
    "MIN_WEBHOOK_SECRET_BYTES",
    "SECRETS_FILE",
    "WEBHOOK_SECRET_ENV",
    "Secrets",
    "bus_users",
    "database_roles",
    "load_or_create_secrets",
    "load_secrets",
    "validate_webhook_secret",
]

SECRETS_FILE = "secrets.json"
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


def database_roles() -> tuple[str, ...]:
    """One role per owned database; the role is named like its database."""
    return tuple(n.database for n in topology.NODES if n.database)


def bus_users() -> tuple[str, ...]:
    """`admin`, `tap` and every service that talks to the bus."""
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


def _password() -> str:
    # URL-safe alphabet: passwords go into database URLs and the NATS config unescaped.
    return _random.token_urlsafe(24)


def _new_keypair() -> tuple[str, str]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )
    return private, public


def _path(state_dir: Path) -> Path:
    return state_dir / SECRETS_FILE


def load_secrets(state_dir: Path) -> Secrets:
    """The kept secrets; `StackNotUp` when the stack was never brought up here."""
    data = read_json(_path(state_dir))
    if data is None:
        raise StackNotUp(f"no secrets in {state_dir}: the stack was never brought up there")
    return Secrets(**data)


def load_or_create_secrets(state_dir: Path, env: Mapping[str, str] | None = None) -> Secrets:
    """Load the secrets, creating whatever is missing; check the webhook secret from `env`."""
    env = os.environ if env is None else env
    given = env.get(WEBHOOK_SECRET_ENV) or None
    if given is not None:
        validate_webhook_secret(given)
    path = _path(state_dir)
    data = read_json(path) or {}
    changed = not data
    if "webhook_secret" in data:
        if given is not None and given != data["webhook_secret"]:
            raise SecretMismatch(
                f"{WEBHOOK_SECRET_ENV} differs from the webhook secret this stack was created with",
                f"unset {WEBHOOK_SECRET_ENV} to keep the stack's secret, or run "
                "`kdemo down --purge` to start over with the new one",
            )
    else:
        data["webhook_secret"] = given or _random.token_hex(32)
        changed = True
    if "intent_signing_key" not in data or "intent_verify_key" not in data:
        data["intent_signing_key"], data["intent_verify_key"] = _new_keypair()
        changed = True
    defaults = {
        "link_nonce_secret": lambda: _random.token_hex(32),
        "eip712_salt": lambda: "0x" + _random.token_hex(32),
        "postgres_password": _password,
    }
    for key, make in defaults.items():
        if key not in data:
            data[key] = make()
            changed = True
    for field, names in (("db_passwords", database_roles()), ("nats_passwords", bus_users())):
        table = data.setdefault(field, {})
        for name in names:
            if name not in table:
                table[name] = _password()
                changed = True
    if changed:
        write_json(path, data, mode=0o600)
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return Secrets(**data)
