"""`python3 -m scripts.kind_offline [build|stop]` — see the package's docstring.

build (the default) makes sure everything exists and the private daemon runs, then prints
on stdout the settings a shell can `eval`; the last two lines are always `DOCKER_HOST=…`
and `KDEMO_KIND_NODE_IMAGE=…`. stop stops the private daemon (and with it any cluster).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import versions
from .binaries import GoBuild, build_all
from .docker_daemon import PrivateDocker
from .images import REPOSITORY, ImageBuilder, sandbox_image, storage_manifest
from .shell import ChainError, Timings, run, say

_FILES = Path(__file__).resolve().parent / "files"
HOST_PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap", "jq": "jq", "ip": "iproute2"}
KIND_ON_PATH = Path("/usr/local/bin/kind")


def locations() -> tuple[Path, PrivateDocker]:
    cache = (
        Path(os.environ.get("KDEMO_KIND_CACHE", "/var/cache/kdemo-kind")) / versions.CACHE_LAYOUT
    )
    run_dir = Path(os.environ.get("KDEMO_KIND_RUN", "/run/kdemo-kind"))
    return cache, PrivateDocker(run_dir, cache / "docker")


def _host_packages(timings: Timings) -> None:
    missing = sorted({pkg for tool, pkg in HOST_PACKAGES.items() if shutil.which(tool) is None})
    with timings.step(f"host packages ({', '.join(missing) or 'all present'})", cached=not missing):
        if missing:
            if shutil.which("apt-get") is None:
                raise ChainError(f"install {', '.join(missing)} (no apt-get here)")
            run(["apt-get", "update", "-qq"])
            run(
                ["apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=300", *missing],
                env={"DEBIAN_FRONTEND": "noninteractive"},
            )


def _install_kind(kind: Path) -> None:
    """Put the built kind on PATH unless the user has one; warn when theirs differs."""
    found = shutil.which("kind")
    if found is None:
        shutil.copy2(kind, KIND_ON_PATH)
        say(f"installed kind {versions.KIND} as {KIND_ON_PATH}")
        return
    have = run([found, "version"]).split()[1:2]
    if have != [versions.KIND]:
        say(f"warning: {found} is kind {have}, the node image was built for {versions.KIND}")


def _kubeadm_images(kubeadm: Path) -> list[str]:
    out = run(
        [str(kubeadm), "config", "images", "list", "--kubernetes-version", versions.KUBERNETES]
    )
    return [line.strip() for line in out.splitlines() if line.strip()]


def _node_images(
    builder: ImageBuilder, programs: dict[str, Path], debian: str, go: GoBuild
) -> tuple[dict[str, str], dict[str, str]]:
    """Every image the node must hold (the name a pod asks for -> local image) and manifests."""
    wrapper = {"iptables-wrapper": _FILES / "iptables" / "iptables-wrapper"}
    local = {
        name: builder.scratch(name, programs[name], at=f"/usr/local/bin/{name}")
        for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
    }
    local["coredns"] = builder.scratch("coredns", programs["coredns"], at="/coredns")
    local["pause"] = builder.scratch("pause", programs["pause"], at="/pause", user="65535:65535")
    local["local-path-provisioner"] = builder.scratch(
        "local-path-provisioner",
        programs["local-path-provisioner"],
        at="/usr/local/bin/local-path-provisioner",
    )
    for name in ("kube-proxy", "kube-router"):
        local[name] = builder.from_recipe(
            name, "iptables", debian, {**wrapper, f"bin/{name}": programs[name]}
        )

    wanted: dict[str, str] = {}
    for reference in _kubeadm_images(programs["kubeadm"]):
        repository, tag = reference.rsplit(":", 1)
        component = repository.rsplit("/", 1)[1]
        pinned = {"etcd": versions.ETCD.lstrip("v"), "coredns": versions.COREDNS}.get(component)
        if pinned and not tag.startswith(pinned):
            raise ChainError(
                f"kubeadm {versions.KUBERNETES} wants {reference}; pin that version in versions.py"
            )
        wanted[reference] = local[component]
    wanted[sandbox_image(go)] = local["pause"]
    storage, storage_images = storage_manifest(go)
    wanted[storage_images["provisioner"]] = local["local-path-provisioner"]
    wanted[storage_images["helper"]] = debian  # runs a shell script: any Debian will do
    router = f"{REPOSITORY}/kube-router:{versions.KUBE_ROUTER}"
    wanted[router] = local["kube-router"]
    cni = (_FILES / "kube-router.yaml").read_text().replace("image: IMAGE", f"image: {router}")
    return wanted, {"default-cni.yaml": cni, "default-storage.yaml": storage}


def build() -> int:
    if os.geteuid() != 0:
        raise ChainError("run as root: debootstrap, dockerd and the bridge need it")
    if shutil.which("go") is None:
        raise ChainError("Go is not installed (https://go.dev/doc/install)")
    cache, daemon = locations()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "lock", "w") as lock:
        say(f"cache {cache} (waiting for any other run to finish)")
        fcntl.flock(lock, fcntl.LOCK_EX)
        timings = Timings()
        _host_packages(timings)
        with timings.step("private dockerd", cached=daemon.running()):
            daemon.start()
        builder = ImageBuilder(cache, daemon.env, timings)
        debian = builder.debian()
        python = builder.from_recipe(
            "python3",
            "python",
            debian,
            {"ca-certificates.crt": Path("/etc/ssl/certs/ca-certificates.crt")},
        )
        go = GoBuild(cache)
        programs = build_all(go, timings)
        _install_kind(programs["kind"])
        images, manifests = _node_images(builder, programs, debian, go)
        kindbase = builder.kind_base(go, debian)
        node = builder.node(kindbase, programs, images, manifests)
        timings.report()
    print(f"KDEMO_BASE_IMAGE={python}")
    print(f"DOCKER_HOST={daemon.host}")
    print(f"KDEMO_KIND_NODE_IMAGE={node}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m scripts.kind_offline", description=__doc__)
    parser.add_argument("command", nargs="?", default="build", choices=("build", "stop"))
    args = parser.parse_args()
    try:
        if args.command == "stop":
            _, daemon = locations()
            daemon.stop()
            return 0
        return build()
    except ChainError as exc:
        say(f"error: {exc}")
        return 1
    except subprocess.TimeoutExpired as exc:
        say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
