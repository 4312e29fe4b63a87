"""A node's status from its pods: the pure mapping behind `kdemo status` on clusters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kdemo.runtime.base import NodeState, NodeStatus, node_kind
from kdemo.runtime.buses import node_of

__all__ = ["CRASH_REASONS", "node_status", "pod_ready", "pod_restarts", "pod_state"]

CRASH_REASONS = frozenset(
    {"CrashLoopBackOff", "Error", "OOMKilled", "RunContainerError", "CreateContainerError"}
)
_RANK: dict[NodeState, int] = {"ready": 3, "restarting": 2, "starting": 1, "down": 0}


def pod_ready(pod: Any) -> bool:
    """The pod's `Ready` condition is true (and it is not being deleted)."""
    if pod.metadata and pod.metadata.deletion_timestamp:
        return False
    conditions = (pod.status and pod.status.conditions) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def pod_restarts(pod: Any) -> int:
    statuses = (pod.status and pod.status.container_statuses) or []
    return sum(int(s.restart_count or 0) for s in statuses)


def _crashing(pod: Any) -> bool:
    for s in (pod.status and pod.status.container_statuses) or []:
        for state in (s.state, s.last_state):
            if state is None:
                continue
            if state.waiting and state.waiting.reason in CRASH_REASONS:
                return True
            if state is s.state and state.terminated:
                return True
    return False


def pod_state(pod: Any) -> NodeState:
    """ready, restarting (deleted, crashed, or coming back after a crash), starting or down."""
    if pod.metadata and pod.metadata.deletion_timestamp:
        return "restarting"
    phase = (pod.status and pod.status.phase) or "Unknown"
    if phase in ("Failed", "Succeeded", "Unknown"):
        return "down"
    if pod_ready(pod):
        return "ready"
    if _crashing(pod) or pod_restarts(pod) > 0:
        return "restarting"
    return "starting"


def _started(pod: Any) -> datetime | None:
    times = [
        s.state.running.started_at
        for s in (pod.status and pod.status.container_statuses) or []
        if s.state and s.state.running and s.state.running.started_at
    ]
    return min(times) if times else None


def node_status(node: str, pods: Sequence[Any], *, url: str, now: datetime) -> NodeStatus:
    """One `kdemo status` row for `node` from its pods (`V1Pod` values)."""
    states = [pod_state(p) for p in pods]
    state: NodeState = max(states, key=_RANK.__getitem__) if states else "down"
    started = [t for p in pods if pod_ready(p) and (t := _started(p)) is not None]
    uptime = max(0.0, (now - min(started)).total_seconds()) if started else 0.0
    return NodeStatus(
        name=node,
        kind=node_kind(node_of(node).kind),
        url=url,
        ready=state == "ready",
        state=state,
        uptime_s=uptime if state == "ready" else 0.0,
        restarts=sum(pod_restarts(p) for p in pods),
        pods=[
            {
                "name": p.metadata.name,
                "phase": (p.status and p.status.phase) or "Unknown",
                "ready": pod_ready(p),
                "state": s,
                "restarts": pod_restarts(p),
            }
            for p, s in zip(pods, states, strict=True)
        ],
    )
