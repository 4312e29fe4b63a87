"""The stack's secrets on a cluster: the Secret `kdemo-secrets` is authoritative.

It is created only when absent (a PostgreSQL volume keeps the first password, so a later
`up` must never replace it) and read back through the API by every command. Objects
derived from it (the NATS configuration) are rendered from what was read back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kdemo.errors import ConfigError, SecretMismatch, StackNotUp
from kdemo.runtime.kube.conventions import CONFIG_URLS, NAMESPACE, SECRET_NAME, SETTINGS_SECRET
from kdemo.runtime.natsconfig import render_nats_config
from kdemo.runtime.secrets import WEBHOOK_SECRET_ENV, Secrets, given_webhook_secret, new_secrets
from kdemo.runtime.settings import PASSED_THROUGH, public_url_env

__all__ = [
    "NATS_CONFIG_SECRET",
    "config_hash",
    "ensure_cluster_secrets",
    "nats_config_secret",
    "read_cluster_secrets",
    "secret_data",
    "secrets_from_data",
    "settings_secret",
    "urls_configmap",
]

NATS_CONFIG_SECRET = "kdemo-nats-config"  # noqa: S105 - the Secret's name, not a secret
Manifest = dict[str, Any]
_SCALARS = {
    "webhook_secret": "webhook-secret",
    "intent_signing_key": "intent-signing-key",
    "intent_verify_key": "intent-verify-key",
    "link_nonce_secret": "link-nonce-secret",
    "eip712_salt": "eip712-salt",
    "postgres_password": "postgres-password",
}


def secret_data(secrets: Secrets) -> dict[str, str]:
    """The Secret's keys: one per value (`db-password-<role>`, `nats-password-<user>`,
    `kafka-password-<user>`)."""
    data = {key: getattr(secrets, field) for field, key in _SCALARS.items()}
    data.update({f"db-password-{role}": pw for role, pw in secrets.db_passwords.items()})
    data.update({f"nats-password-{user}": pw for user, pw in secrets.nats_passwords.items()})
    data.update({f"kafka-password-{user}": pw for user, pw in secrets.kafka_passwords.items()})
    return data


def secrets_from_data(data: Mapping[str, str]) -> Secrets:
    """The inverse of `secret_data`; a missing key is a clear error."""
    missing = [key for key in _SCALARS.values() if key not in data]
    if missing:
        raise ConfigError(
            f"the Secret {NAMESPACE}/{SECRET_NAME} lacks {', '.join(missing)}",
            "it was made by another tool or version: run `kdemo down` to start over",
        )
    return Secrets(
        **{field: data[key] for field, key in _SCALARS.items()},
        db_passwords={
            k.removeprefix("db-password-"): v
            for k, v in data.items()
            if k.startswith("db-password-")
        },
        nats_passwords={
            k.removeprefix("nats-password-"): v
            for k, v in data.items()
            if k.startswith("nats-password-")
        },
        kafka_passwords={
            k.removeprefix("kafka-password-"): v
            for k, v in data.items()
            if k.startswith("kafka-password-")
        },
    )


def _decode(secret: Any) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def read_cluster_secrets(core: client.CoreV1Api, namespace: str = NAMESPACE) -> Secrets:
    """The stack's secrets as the cluster keeps them."""
    try:
        secret = core.read_namespaced_secret(SECRET_NAME, namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise StackNotUp(f"no Secret {namespace}/{SECRET_NAME} in the cluster") from exc
        raise
    return secrets_from_data(_decode(secret))


def ensure_cluster_secrets(
    core: client.CoreV1Api, namespace: str = NAMESPACE, env: Mapping[str, str] | None = None
) -> Secrets:
    """Create the Secret if absent (never replace it); check the webhook secret from `env`."""
    env = os.environ if env is None else env
    given = given_webhook_secret(env)
    try:
        kept = read_cluster_secrets(core, namespace)
    except StackNotUp:
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=SECRET_NAME, labels={"app.kubernetes.io/part-of": "kdemo"}
            ),
            type="Opaque",
            string_data=secret_data(new_secrets(env)),
        )
        try:
            core.create_namespaced_secret(namespace, body)
        except ApiException as exc:
            if exc.status != 409:  # 409: created meanwhile by another `up`; read theirs
                raise
        return read_cluster_secrets(core, namespace)
    if given is not None and given != kept.webhook_secret:
        raise SecretMismatch(
            f"{WEBHOOK_SECRET_ENV} differs from the webhook secret in the cluster",
            f"unset {WEBHOOK_SECRET_ENV} to keep the stack's secret, or run `kdemo down` "
            "to start over with the new one",
        )
    return kept


def _secret(name: str, data: Mapping[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "kdemo"},
        },
        "type": "Opaque",
        "stringData": dict(data),
    }


def nats_config_secret(secrets: Secrets) -> Manifest:
    """nats-server's configuration: the local runtime's users and permissions, in the pod."""
    config = render_nats_config(
        host="0.0.0.0",  # noqa: S104 - inside the pod; NetworkPolicies decide who reaches it
        port=4222,
        store_dir="/data/jetstream",
        passwords=secrets.nats_passwords,
        monitor_port=8222,
    )
    return _secret(NATS_CONFIG_SECRET, {"nats.conf": config})


def settings_secret(env: Mapping[str, str] | None = None) -> Manifest:
    """The user's pass-through settings (`KDEMO_INTENT_TTL`, `KDEMO_GITHUB_TOKEN`, ...)."""
    env = os.environ if env is None else env
    return _secret(SETTINGS_SECRET, {k: env[k] for k in PASSED_THROUGH if env.get(k)})


def urls_configmap(urls: Mapping[str, str]) -> Manifest:
    """`KDEMO_PUBLIC_URL_*` for every service: where the public services are reached."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIG_URLS,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "kdemo"},
        },
        "data": {public_url_env(name): url for name, url in sorted(urls.items())},
    }


def config_hash(*objects: Manifest) -> str:
    """A short hash of objects, put on pod templates so a changed config restarts them."""
    text = json.dumps(objects, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()[:16]
