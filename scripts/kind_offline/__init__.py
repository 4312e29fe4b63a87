"""Everything a kind cluster needs, built offline from Debian packages and Go sources.

`python3 -m scripts.kind_offline` (or `just kind-offline`) builds, once and into a
versioned cache, kind itself, the Kubernetes binaries, etcd, CoreDNS,
local-path-provisioner, pause and kube-router; the Debian base images; the component
images; and a kind node image that holds them all. It starts a private Docker daemon
for the work (its own socket, state and bridge) and prints, on stdout, the settings
to `eval`; all chatter goes to stderr. See docs/kind-offline.md.
"""
