# The kind node base: Debian's systemd, containerd, runc and CNI plugins, kind's own node
# files (entrypoint, units, containerd configuration, copied from kind's Go module at build
# time), and node-setup.sh for the rest.
ARG BASE
FROM ${BASE}
COPY packages /tmp/packages
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(cat /tmp/packages) \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/packages
COPY kind-files/ /
COPY kdemo-files/ /
COPY node-setup.sh /tmp/node-setup.sh
RUN /tmp/node-setup.sh && rm /tmp/node-setup.sh
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
