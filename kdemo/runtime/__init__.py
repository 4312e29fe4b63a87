"""Runtimes: the interface (`base`), the local one, and the factory the CLI uses."""

from __future__ import annotations

from pathlib import Path

from kdemo.errors import ConfigError
from kdemo.runtime.base import Runtime
from kdemo.runtime.stackfile import STACK_FILE, load_stack
from kdemo.runtime.statedir import default_state_dir

__all__ = [
    "Runtime",
    "default_state_dir",
    "get_runtime",
    "new_runtime",
    "stack_runtime_name",
]


def stack_runtime_name(state_dir: Path) -> str:
    """The runtime recorded in `stack.json` (`local` when there is no stack yet)."""
    stack = load_stack(Path(state_dir))
    return stack.runtime if stack is not None else "local"


def get_runtime(state_dir: Path | None = None, *, bus: str | None = None) -> Runtime:
    """The runtime of the stack in `state_dir` (default: the configured state directory).

    `bus` is the bus `up` was asked for (None: the recorded one, else nats)."""
    state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
    name = stack_runtime_name(state_dir)
    if name == "local":
        from kdemo.runtime.local import LocalRuntime

        return LocalRuntime(state_dir, bus=bus)
    if name in ("kind", "kubernetes"):
        return new_runtime(name, state_dir, bus=bus)
    raise ConfigError(
        f"runtime {name!r} (from {state_dir / STACK_FILE}) is not known",
        "use --runtime local, kind or kubernetes; `kdemo down --purge` starts over",
    )


def new_runtime(
    name: str,
    state_dir: Path | None = None,
    *,
    context: str | None = None,
    registry: str | None = None,
    node_image: str | None = None,
    bus: str | None = None,
) -> Runtime:
    """The runtime `name` for `kdemo up` (kubernetes takes a context and a registry, kind a
    node image; `bus` is the bus asked for, None for the recorded one)."""
    state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
    if name == "local":
        return get_runtime(state_dir, bus=bus)
    from kdemo.runtime.kube import KindRuntime, KubernetesRuntime

    if name == "kind":
        return KindRuntime(state_dir, node_image=node_image, bus=bus)
    if name == "kubernetes":
        return KubernetesRuntime(state_dir, context=context, registry=registry, bus=bus)
    raise ConfigError(f"unknown runtime {name!r}", "use --runtime local, kind or kubernetes")
