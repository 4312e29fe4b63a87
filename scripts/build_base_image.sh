#!/usr/bin/env bash
# Build a local Debian base image with python3 + python3-venv, for machines that cannot pull one.
#
# usage: scripts/build_base_image.sh TAG [CACHE_DIR]
#   TAG        image tag to create, e.g. kdemo-base:bookworm
#   CACHE_DIR  where the root filesystem tarball is kept between runs
#              (default /var/cache/kdemo-test)
#
# The release is the host's (VERSION_CODENAME in /etc/os-release), fetched from the host's
# Debian mirror. The host's CA bundle is copied in, so pip inside `docker build --network host`
# trusts what the host trusts. Needs root (debootstrap) and a docker daemon (DOCKER_HOST).
set -euo pipefail

tag=${1:?usage: build_base_image.sh TAG [CACHE_DIR]}
cache=${2:-/var/cache/kdemo-test}

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag already present"
    exit 0
fi

# shellcheck source=/dev/null
. /etc/os-release
release=${VERSION_CODENAME:?the host is not a Debian-like release}
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}
tarball="$cache/rootfs-$release-python3.tar"

if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/rootfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$release" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
    cp /etc/ssl/certs/ca-certificates.crt "$work/root/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
    tar -C "$work/root" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
fi

docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/usr/bin/python3"]' "$tarball" "$tag" >/dev/null
echo "base image $tag built from $tarball"
