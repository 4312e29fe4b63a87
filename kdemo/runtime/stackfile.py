"""`stack.json`: what `up` recorded about the stack in a state directory, for every runtime.

`up` writes it (before anything else can fail, so that `down` finds what to remove); every
other command reads it: the factory picks the runtime from it, and the runtime finds its
ports, URLs, context or cluster in it. Nothing else reads or writes the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kdemo.errors import ConfigError, KdemoError, StackNotUp
from kdemo.runtime.buses import BUSES, DEFAULT_BUS
from kdemo.runtime.statedir import write_json

__all__ = [
    "STACK_FILE",
    "StackRecord",
    "delete_stack",
    "has_stack",
    "load_stack",
    "require_stack",
    "save_stack",
]

STACK_FILE = "stack.json"
_FIX = "fix it by hand, or delete it and run `kdemo down --purge` to start over"


@dataclass(frozen=True)
class StackRecord:
    """The stack record of one state directory (`stack.json`), shared by every runtime.

    A frozen dataclass rather than a pydantic model: every command reads this record, and
    kdemo's own code does not import pydantic (only the services do; it would add about
    0.2 s to each command's start); the few fields are checked by hand in `from_json`.
    Frozen, so a change is a whole new record (`dataclasses.replace`) saved at once.

    The JSON keys are the field names, as earlier versions wrote them, so a stack brought
    up by one is still read (a file without `runtime` is a local stack's). Fields a runtime
    leaves unset (None) are left out of the file; keys this version does not know are
    ignored.
    """

    runtime: str
    """`local`, `kind` or `kubernetes` (the factory refuses any other)."""
    urls: dict[str, str] = field(default_factory=dict)
    """Public base URL of each exposed service, by node name."""
    ports: dict[str, int] = field(default_factory=dict)
    """Ports on 127.0.0.1 by name (`kdemo.runtime.ports`): local, every node's; kind, the
    exposed services' host ports; kubernetes, none."""
    context: str | None = None
    """The kube context (cluster runtimes)."""
    postgres_dir: str | None = None
    """local: where PostgreSQL keeps its data (`KDEMO_DATA_DIR` may have put it elsewhere)."""
    nats_dir: str | None = None
    """local: where nats-server keeps its data."""
    kafka_dir: str | None = None
    """local, Kafka bus: where the broker keeps its configuration and data."""
    bus: str = DEFAULT_BUS
    """The event bus the stack runs (`kdemo.runtime.buses.BUSES`); a file without it is a
    stack of a version that knew only NATS."""
    nodes: tuple[str, ...] | None = None
    """local: the nodes to run (None: all)."""
    commands: dict[str, list[str]] | None = None
    """local: replacement commands (argv) of services."""
    cluster: str | None = None
    """kind: the cluster's name (`down` deletes only the cluster named here)."""
    image: str | None = None
    """Cluster runtimes: the image deployed."""
    registry: str | None = None
    """kubernetes: where the image was pushed (None: not pushed)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.nodes is not None:
            data["nodes"] = list(self.nodes)
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_json(cls, data: Any, path: Path | str = STACK_FILE) -> StackRecord:
        """The record in `data` (a parsed stack.json); a `ConfigError` naming `path` and
        the field when it is not one."""

        def bad(why: str) -> ConfigError:
            return ConfigError(f"{path} is not a stack record kdemo can read: {why}", _FIX)

        if not isinstance(data, dict):
            raise bad("expected a JSON object")
        values: dict[str, Any] = {}
        for key in (
            "runtime",
            "context",
            "postgres_dir",
            "nats_dir",
            "kafka_dir",
            "bus",
            "cluster",
            "image",
            "registry",
        ):
            values[key] = _optional(data, key, str, bad)
        values["runtime"] = values["runtime"] or "local"
        values["bus"] = values["bus"] or DEFAULT_BUS
        if values["bus"] not in BUSES:
            raise bad(f"`bus` must be one of {', '.join(BUSES)}, not {values['bus']!r}")
        urls = _optional(data, "urls", dict, bad) or {}
        if not all(isinstance(v, str) for v in urls.values()):
            raise bad("`urls` must map names to URLs (strings)")
        ports = _optional(data, "ports", dict, bad) or {}
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ports.values()):
            raise bad("`ports` must map names to port numbers (integers)")
        nodes = _optional(data, "nodes", list, bad)
        if nodes is not None and not all(isinstance(n, str) for n in nodes):
            raise bad("`nodes` must be a list of node names")
        commands = _optional(data, "commands", dict, bad)
        if commands is not None and not all(
            isinstance(argv, list) and all(isinstance(a, str) for a in argv)
            for argv in commands.values()
        ):
            raise bad("`commands` must map services to argv lists (strings)")
        return cls(
            **values,
            urls=dict(urls),
            ports=dict(ports),
            nodes=tuple(nodes) if nodes is not None else None,
            commands={k: list(v) for k, v in commands.items()} if commands is not None else None,
        )


def _optional(data: dict[str, Any], key: str, kind: type, bad: Callable[[str], ConfigError]) -> Any:
    """`data[key]`, None when absent or null; a `bad(...)` error when of another type."""
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise bad(f"`{key}` must be a {_KIND_NAMES[kind]}, not {type(value).__name__}")
    return value


_KIND_NAMES: dict[type, str] = {str: "string", dict: "JSON object", list: "JSON list"}


def _path(state_dir: Path) -> Path:
    return Path(state_dir) / STACK_FILE


def has_stack(state_dir: Path) -> bool:
    """Whether `up` recorded a stack in `state_dir` (without reading the record)."""
    return _path(state_dir).exists()


def load_stack(state_dir: Path) -> StackRecord | None:
    """The stack recorded in `state_dir`, or None when there is none.

    A file that cannot be read or is not a stack record is a `KdemoError` naming it and
    what to do."""
    path = _path(state_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KdemoError(
            f"cannot read {path}: {exc.strerror or exc}",
            "run kdemo as the user who brought the stack up, or fix the file's permissions",
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not a stack record kdemo can read: {exc}", _FIX) from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}", _FIX) from exc
    return StackRecord.from_json(data, path)


def require_stack(state_dir: Path) -> StackRecord:
    """The stack recorded in `state_dir`; `StackNotUp` when there is none."""
    stack = load_stack(state_dir)
    if stack is None:
        raise StackNotUp(f"no stack in {state_dir}")
    return stack


def save_stack(state_dir: Path, stack: StackRecord) -> None:
    """Record `stack` in `state_dir`, atomically (a killed `up` leaves the old one whole)."""
    write_json(_path(state_dir), stack.to_json())


def delete_stack(state_dir: Path) -> None:
    _path(state_dir).unlink(missing_ok=True)
