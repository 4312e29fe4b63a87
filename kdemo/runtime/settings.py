"""User settings every runtime hands on unchanged to the services (see docs/architecture.md).

The local runtime puts them in each service's environment; the cluster runtimes put them in
the Secret `kdemo-settings` the pods read.
"""

from __future__ import annotations

__all__ = ["PASSED_THROUGH", "public_url_env"]

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
