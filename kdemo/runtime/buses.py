"""Which bus a stack runs (`kdemo up --bus nats|kafka`) and the nodes that makes.

The topology declares the bus node as `nats`; a Kafka stack runs the same services with a
`kafka` node in its place (`topology.for_bus`). The runtime's questions that depend on the
bus (which nodes to run and show, which ports to hold) go through here.
"""

from __future__ import annotations

from typing import Final

from kdemo import topology
from kdemo.errors import UsageError

__all__ = [
    "BUSES",
    "DEFAULT_BUS",
    "all_node_names",
    "bus_node",
    "check_bus",
    "node_of",
    "runtime_node_names",
    "runtime_nodes",
    "view",
]

BUSES: Final = topology.BUSES
DEFAULT_BUS: Final = BUSES[0]
"""What a stack runs when `up` is not told, and what a stack.json without `bus` ran."""


def check_bus(name: str) -> str:
    """`name` when it is a bus kdemo runs; a `UsageError` naming the choices otherwise."""
    if name not in BUSES:
        raise UsageError(f"unknown bus {name!r}", f"use one of: {', '.join(BUSES)}")
    return name


def view(bus: str = DEFAULT_BUS) -> topology.Topology:
    """The topology with `bus` as its event bus."""
    return topology.for_bus(check_bus(bus))


def bus_node(bus: str) -> topology.Node:
    """The bus's node (`nats` or `kafka`)."""
    return view(bus).bus_node


def runtime_nodes(bus: str = DEFAULT_BUS) -> tuple[topology.Node, ...]:
    """The nodes a stack on `bus` runs, in topology order."""
    return view(bus).runtime_nodes()


def runtime_node_names(bus: str = DEFAULT_BUS) -> list[str]:
    return [n.name for n in runtime_nodes(bus)]


def node_of(name: str) -> topology.Node:
    """A runtime node by name, whichever bus it belongs to (`kafka` included)."""
    for bus in BUSES:
        if name == bus:
            return bus_node(bus)
    return topology.node(name)


def all_node_names() -> list[str]:
    """Every node name some stack may run (for commands that take a node before they know
    the stack's bus: `logs`, `kill`)."""
    names = runtime_node_names(DEFAULT_BUS)
    return names + [b for b in BUSES if b not in names]
