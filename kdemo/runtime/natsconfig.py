"""NATS users and their permissions, derived from the topology (shared by all runtimes).

Each service may publish only the events it owns (and dead letters of the
events it consumes), use only its own durable's JetStream API and ack subjects,
and receive only on its private inbox prefix `_INBOX_<service>`. The tap user
may only create ephemeral (ordered) consumers and read what they deliver.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kdemo import topology

__all__ = [
    "ACK_WAIT_S",
    "ADMIN_USER",
    "TAP_USER",
    "bus_services",
    "inbox_prefix",
    "nats_permissions",
    "nats_users",
    "render_nats_config",
]

ACK_WAIT_S = 30.0
"""How long JetStream waits for a consumer's ack before it redelivers (every durable)."""
ADMIN_USER = "admin"
TAP_USER = "tap"
_STREAM = topology.STREAM_NAME


def bus_services() -> tuple[str, ...]:
    """Services with an edge to the bus, in topology order."""
    return tuple(dict.fromkeys(e.source for e in topology.EDGES if e.target == "nats"))


def inbox_prefix(user: str) -> str:
    """The private inbox prefix a bus user must connect with (`inbox_prefix=`)."""
    return f"_INBOX_{user}"


def _service_permissions(service: str) -> dict[str, Any]:
    publish = [f"kdemo.{event}.>" for event in topology.published_events(service)]
    publish += [f"kdemo.dlq.{event}.>" for event in topology.consumed_events(service)]
    for consumer in topology.CONSUMERS:
        if consumer.service != service:
            continue
        durable = consumer.durable
        publish += [
            f"$JS.API.CONSUMER.MSG.NEXT.{_STREAM}.{durable}",
            f"$JS.API.CONSUMER.INFO.{_STREAM}.{durable}",
            f"$JS.ACK.{_STREAM}.{durable}.>",
        ]
    if "bounty.signed" in topology.published_events(service):
        # frontend reads its own signature events back to tell a repeat (200) from a
        # conflicting second signature (409).
        publish.append(f"$JS.API.DIRECT.GET.{_STREAM}.kdemo.bounty.signed.>")
    return {"publish": {"allow": publish}, "subscribe": {"allow": [f"{inbox_prefix(service)}.>"]}}


def _tap_permissions() -> dict[str, Any]:
    # Only the unnamed create subject: the server refuses a durable name there, so the
    # tap can create ephemeral consumers only, and it can delete none.
    return {
        "publish": {
            "allow": [
                f"$JS.API.CONSUMER.CREATE.{_STREAM}",
                f"$JS.API.STREAM.INFO.{_STREAM}",
                "$JS.API.INFO",
                "$JS.FC.>",
            ]
        },
        "subscribe": {"allow": [f"{inbox_prefix(TAP_USER)}.>"]},
    }


def nats_permissions(user: str) -> dict[str, Any] | None:
    """The NATS `permissions` block of `user` (None: everything, for the admin user)."""
    if user == ADMIN_USER:
        return None
    if user == TAP_USER:
        return _tap_permissions()
    if user not in bus_services():
        raise KeyError(
            f"{user!r} is not a bus user; known: "
            f"{', '.join((ADMIN_USER, TAP_USER, *bus_services()))}"
        )
    return _service_permissions(user)


def nats_users(passwords: Mapping[str, str]) -> list[dict[str, Any]]:
    """The `authorization.users` list for every user in `passwords`."""
    users = []
    for user, password in passwords.items():
        entry: dict[str, Any] = {"user": user, "password": password}
        permissions = nats_permissions(user)
        if permissions is not None:
            entry["permissions"] = permissions
        users.append(entry)
    return users


def render_nats_config(
    *,
    host: str,
    port: int,
    store_dir: str,
    passwords: Mapping[str, str],
    monitor_port: int | None = None,
    server_name: str = "kdemo",
) -> str:
    """A nats-server configuration (JSON is valid NATS config syntax)."""
    config: dict[str, Any] = {
        "server_name": server_name,
        "host": host,
        "port": port,
        "jetstream": {
            "store_dir": store_dir,
            "max_memory_store": 64 * 1024 * 1024,
            "max_file_store": 1024 * 1024 * 1024,
        },
        "authorization": {"users": nats_users(passwords)},
        # Big enough for CloudEvents; small enough to refuse junk.
        "max_payload": 1024 * 1024,
    }
    if monitor_port is not None:
        config["http"] = f"{host}:{monitor_port}"
    return json.dumps(config, indent=2) + "\n"
