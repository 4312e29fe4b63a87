# Debian with python3 and venv: the base of kdemo's own image where none can be pulled.
# The host's CA bundle comes along, so pip inside `docker build` trusts what the host trusts.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
CMD ["/usr/bin/python3"]
