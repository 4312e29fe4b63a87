"""The local runtime: PostgreSQL, nats-server and the services as supervised processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kdemo.runtime.local.runtime import LocalRuntime

__all__ = ["LocalRuntime"]


def __getattr__(name: str) -> Any:
    # Imported at first use: the supervisor's process, which starts every service, needs
    # none of LocalRuntime's imports (the bus clients), and each of them delays the start.
    if name == "LocalRuntime":
        from kdemo.runtime.local.runtime import LocalRuntime

        return LocalRuntime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
