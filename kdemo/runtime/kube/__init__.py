"""The cluster runtimes: kind on this machine, or any cluster by kube context."""

from __future__ import annotations

from kdemo.runtime.kube.kubernetes import KindRuntime, KubernetesRuntime, KubeRuntime

__all__ = ["KindRuntime", "KubeRuntime", "KubernetesRuntime"]
