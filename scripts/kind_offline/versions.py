"""The pinned versions: every input of the chain is named here and nowhere else."""

from __future__ import annotations

from typing import Final

CACHE_LAYOUT: Final = "v1"
"""Bumped when the cache's layout changes: an older layout is never read."""

DEBIAN: Final = "bookworm"
KIND: Final = "v0.33.0"
KUBERNETES: Final = "v1.34.4"
"""The newest release whose kubelet still runs on cgroup v1 by default (1.35 refuses it)."""
STAGING: Final = "v0.34.4"
"""Kubernetes' staging modules (k8s.io/api, ...) at the release's version."""
ETCD: Final = "v3.6.5"
COREDNS: Final = "v1.12.1"
LOCAL_PATH_PROVISIONER: Final = "v0.0.30"
CRI_TOOLS: Final = "v1.34.0"
"""crictl, which `kind load` asks whether a node already has an image (without it: always
reloaded)."""
KUBE_ROUTER: Final = "v2.1.0"
"""NetworkPolicies with iptables and ipset: kindnetd's nftables queue is missing here."""

BUILD_DATE: Final = "2026-01-01T00:00:00Z"
"""Stamped into the Kubernetes binaries (kubeadm and kind parse their version string)."""

NODE_PACKAGES: Final = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "conntrack",
    "iptables",
    "nftables",
    "iproute2",
    "ethtool",
    "util-linux",
    "mount",
    "kmod",
    "libseccomp2",
    "pigz",
    "e2fsprogs",
    "bash",
    "ca-certificates",
    "curl",
    "jq",
    "procps",
    "socat",
    "containerd",
    "runc",
    "containernetworking-plugins",
)
"""Debian packages of the node: kind's own list, with Debian's containerd, runc and CNI."""
