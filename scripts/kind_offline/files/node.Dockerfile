# The kind node base, shaped like kind's own (images/base/Dockerfile of its module) but from
# Debian's packages: systemd, containerd, runc and the CNI plugins. kind's files (entrypoint,
# units, containerd configuration) are copied from its Go module at build time.
ARG BASE
FROM ${BASE}
COPY packages /tmp/packages
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(cat /tmp/packages) \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/packages
COPY kind-files/ /
COPY kdemo-files/ /
# The unit clean-up of kind's base image: only what a node needs starts.
RUN find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
 && rm -f /lib/systemd/system/multi-user.target.wants/* \
 && rm -f /etc/systemd/system/*.wants/* \
 && rm -f /lib/systemd/system/local-fs.target.wants/* \
 && rm -f /lib/systemd/system/sockets.target.wants/*udev* \
 && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \
 && rm -f /lib/systemd/system/basic.target.wants/* \
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
 && systemctl mask systemd-binfmt.service \
 && mkdir -p /etc/kubernetes/manifests /opt/cni \
 && ln -sf /usr/bin/containerd /usr/local/bin/containerd \
 && ln -sfn /usr/lib/cni /opt/cni/bin
# Where the machine's root lacks CAP_SYS_RESOURCE, runc cannot give pods a negative
# oom_score_adj: containerd then keeps every container's at or above its own.
RUN sed -i 's/^\(\s*restrict_oom_score_adj\s*=\s*\)false/\1true/' /etc/containerd/config.toml \
 && grep -q 'restrict_oom_score_adj = true' /etc/containerd/config.toml \
 && ctr oci spec \
    | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
