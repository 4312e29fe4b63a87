# Debian with iptables (legacy and nft), ipset and conntrack, for kube-proxy and kube-router.
# iptables-wrapper picks the mode the node's kubelet uses on first call.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      iptables nftables conntrack ipset \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY iptables-wrapper /usr/sbin/iptables-wrapper
RUN chmod 0755 /usr/sbin/iptables-wrapper \
 && for tool in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do \
      ln -sf iptables-wrapper "/usr/sbin/$tool"; \
    done
COPY bin/ /usr/local/bin/
