"""User settings every runtime hands on unchanged to the services (see docs/architecture.md).

The local runtime puts them in each service's environment; the cluster runtimes put them in
the Secret `kdemo-settings` the pods read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from kdemo.errors import ConfigError

__all__ = ["DEFAULT_INTENT_TTL", "PASSED_THROUGH", "intent_ttl", "public_url_env"]

DEFAULT_INTENT_TTL = 86400

PASSED_THROUGH = (
    "KDEMO_INTENT_TTL",
    "KDEMO_LINK_TTL",
    "KDEMO_LINK_PAIR_GRACE",
    "KDEMO_CHAIN_ID",
    "KDEMO_GITHUB_TOKEN",
    "KDEMO_GITHUB_API_URL",
    "KDEMO_LOG_LEVEL",
)
"""User settings handed on unchanged to every service when set."""


def public_url_env(service: str) -> str:
    """The variable that tells the services where `service` is reached from outside
    (`KDEMO_PUBLIC_URL_GITHUB_APP` for github-app): every runtime sets one per public service."""
    return f"KDEMO_PUBLIC_URL_{service.upper().replace('-', '_')}"


def intent_ttl(env: Mapping[str, str] | None = None) -> int:
    """`KDEMO_INTENT_TTL` in seconds (default 86400): the duplicate window of the stream."""
    env = os.environ if env is None else env
    raw = env.get("KDEMO_INTENT_TTL", "")
    if not raw:
        return DEFAULT_INTENT_TTL
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(
            f"KDEMO_INTENT_TTL={raw!r} is not a positive number of seconds",
            "set it to e.g. 86400 (24 h), or unset it",
        )
    return value
