"""The local runtime: PostgreSQL, nats-server and the services as supervised processes."""

from kdemo.runtime.local.runtime import LocalRuntime

__all__ = ["LocalRuntime"]
