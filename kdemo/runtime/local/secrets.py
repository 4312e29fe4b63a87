"""The local stack's secrets: created once at the first `up`, kept in `secrets.json` (0600).

What the secrets are and how they are made is `kdemo.runtime.secrets`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kdemo.errors import ConfigError, SecretMismatch, StackNotUp
from kdemo.runtime.secrets import (
    WEBHOOK_SECRET_ENV,
    Secrets,
    complete_secrets,
    given_webhook_secret,
)
from kdemo.runtime.statedir import read_json, write_json

__all__ = ["SECRETS_FILE", "load_or_create_secrets", "load_secrets"]

SECRETS_FILE = "secrets.json"


def _path(state_dir: Path) -> Path:
    return state_dir / SECRETS_FILE


def load_secrets(state_dir: Path) -> Secrets:
    """The kept secrets; `StackNotUp` when the stack was never brought up here."""
    data = read_json(_path(state_dir))
    if data is None:
        raise StackNotUp(f"no secrets in {state_dir}: the stack was never brought up there")
    try:
        return Secrets(**data)
    except TypeError as exc:  # a key missing or unknown: not a file this version wrote
        raise ConfigError(
            f"{_path(state_dir)} is not a secrets file kdemo can read: {exc}",
            "restore it; `kdemo down --purge` starts the stack over with new secrets",
        ) from exc


def load_or_create_secrets(state_dir: Path, env: Mapping[str, str] | None = None) -> Secrets:
    """Load the secrets, creating whatever is missing; check the webhook secret from `env`."""
    given = given_webhook_secret(env)
    path = _path(state_dir)
    data = read_json(path) or {}
    if "webhook_secret" in data and given is not None and given != data["webhook_secret"]:
        raise SecretMismatch(
            f"{WEBHOOK_SECRET_ENV} differs from the webhook secret this stack was created with",
            f"unset {WEBHOOK_SECRET_ENV} to keep the stack's secret, or run "
            "`kdemo down --purge` to start over with the new one",
        )
    if complete_secrets(data, given):
        write_json(path, data, mode=0o600)
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return Secrets(**data)
