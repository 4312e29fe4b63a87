#!/bin/sh
# Make a Debian root filesystem into a kind node, in the layout kind's own node base image
# has (kind v0.33.0, images/base: Apache-2.0), so kind's entrypoint and units work on it.
set -eu

# systemd in a container (https://systemd.io/CONTAINER_INTERFACE/): start only what a node
# runs. Units Debian enables for a real machine (getty, udev, timers, tmpfiles at boot)
# have nothing to do here, and some fail without devices.
for wants in /lib/systemd/system/multi-user.target.wants /etc/systemd/system/*.wants \
    /lib/systemd/system/local-fs.target.wants /lib/systemd/system/basic.target.wants; do
    rm -f "$wants"/*
done
rm -f /lib/systemd/system/sockets.target.wants/*udev* \
    /lib/systemd/system/sockets.target.wants/*initctl* \
    /lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service
echo "ReadKMsg=no" >>/etc/systemd/journald.conf # the host's kernel log is not the node's
systemctl enable kubelet.service containerd.service undo-mount-hacks.service
systemctl mask systemd-binfmt.service # binfmt_misc is global to the host's kernel

# Paths kind's units and kubeadm expect; Debian puts these binaries elsewhere.
mkdir -p /etc/kubernetes/manifests /opt/cni
ln -sf /usr/bin/containerd /usr/local/bin/containerd
ln -sfn /usr/lib/cni /opt/cni/bin

# Where the machine's root lacks CAP_SYS_RESOURCE, runc cannot give pods a negative
# oom_score_adj: containerd then keeps every container's at or above its own.
sed -i 's/^\(\s*restrict_oom_score_adj\s*=\s*\)false/\1true/' /etc/containerd/config.toml
grep -q 'restrict_oom_score_adj = true' /etc/containerd/config.toml

# The pods' base OCI spec, named by kind's containerd configuration: containerd's default,
# without rlimits, plus kind's hook that mounts the node's product files into each pod.
ctr oci spec | jq '
    del(.process.rlimits)
    | .hooks.createContainer = ((.hooks.createContainer // []) + [{path: "/kind/bin/mount-product-files.sh"}])
' >/etc/containerd/cri-base.json
