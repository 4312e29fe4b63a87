"""The cluster runtimes: kind on this machine, or any cluster by kube context."""

from __future__ import annotations

from kdemo.runtime.kube.kind_runtime import KindRuntime
from kdemo.runtime.kube.kubernetes import KubernetesRuntime, KubeRuntime

__all__ = ["KindRuntime", "KubeRuntime", "KubernetesRuntime"]
