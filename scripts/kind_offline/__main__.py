"""`python3 -m scripts.kind_offline [build [--cached-only] [--idle] | running | stop]`.

build (the default) makes sure everything exists and the private daemon runs, then prints
on stdout the settings a shell can `eval`; the last two lines are always `DOCKER_HOST=…`
and `KDEMO_KIND_NODE_IMAGE=…`. With --cached-only it builds and installs nothing and exits
3 when anything is missing; with --idle its builds run at idle CPU and disk priority, so
they can run beside other work. running exits 0 when the private daemon answers, 1 when
not. stop stops the private daemon (and with it any cluster on it).
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
from .shell import ChainError, NotCached, Timings, at_idle_priority, run, say

_FILES = Path(__file__).resolve().parent / "files"
HOST_PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap", "jq": "jq", "ip": "iproute2"}
TOOLS_DIR = Path("/usr/local/bin")
NOT_CACHED_EXIT = 3


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


def _install_tools(programs: dict[str, Path]) -> None:
    """Put the built kind and kubectl on PATH where there are none; warn when kind differs."""
    for tool in ("kind", "kubectl"):
        found = shutil.which(tool)
        if found is None:
            shutil.copy2(programs[tool], TOOLS_DIR / tool)
            say(f"installed {tool} as {TOOLS_DIR / tool}")
    kind = shutil.which("kind") or str(TOOLS_DIR / "kind")
    have = run([kind, "version"]).split()[1:2]
    if have != [versions.KIND]:
        say(f"warning: {kind} is kind {have}, the node image was built for {versions.KIND}")


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


def build(*, cached_only: bool = False) -> int:
    if os.geteuid() != 0:
        raise ChainError("run as root: debootstrap, dockerd and the bridge need it")
    if shutil.which("go") is None:
        raise ChainError("Go is not installed (https://go.dev/doc/install)")
    cache, daemon = locations()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "lock", "w") as lock:
        say(f"cache {cache} (waiting for any other run to finish)")
        fcntl.flock(lock, fcntl.LOCK_EX)
        timings = Timings(cached_only=cached_only)
        _host_packages(timings)
        daemon.start()  # not a build: allowed with --cached-only too
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
        if not timings.cached_only:
            _install_tools(programs)
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
    parser.add_argument("command", nargs="?", default="build", choices=("build", "running", "stop"))
    parser.add_argument(
        "--cached-only", action="store_true", help="build nothing; exit 3 when anything is missing"
    )
    parser.add_argument(
        "--idle",
        action="store_true",
        help="build at idle CPU and disk priority (nice 19, ionice idle), beside other work",
    )
    args = parser.parse_args()
    if args.idle:
        at_idle_priority()
    cache, daemon = locations()
    try:
        if args.command == "running":
            return 0 if daemon.running() else 1
        if args.command == "stop":
            cache.mkdir(parents=True, exist_ok=True)
            with open(cache / "lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # never under a build that is using it
                daemon.stop()
            return 0
        return build(cached_only=args.cached_only)
    except NotCached as exc:
        say(f"not cached: {exc}")
        return NOT_CACHED_EXIT
    except (ChainError, OSError, KeyError, subprocess.TimeoutExpired) as exc:
        say(f"error: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
