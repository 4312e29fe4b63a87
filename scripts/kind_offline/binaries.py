"""The Go programs of a kind cluster, built from the Go module proxy into the cache.

Each program is built in a small wrapper module that requires it at its pinned version,
so `go` resolves exactly the dependencies its authors locked. Kubernetes itself replaces
its staging modules with local directories, which a dependency may not do: the wrapper
repeats each of those replaces with the published module at the release's version.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from . import versions
from .shell import ChainError, Timings, run

__all__ = ["KUBERNETES_BINARIES", "GoBuild", "build_all"]

KUBERNETES_BINARIES = (
    "kubeadm",
    "kubelet",
    "kubectl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
)
_FILES = Path(__file__).resolve().parent / "files"
_REPLACE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", re.MULTILINE)


@dataclass(frozen=True)
class GoBuild:
    cache: Path
    """The versioned cache: go/ holds Go's own caches, bin/ the results, src/ the wrappers."""

    @property
    def env(self) -> dict[str, str]:
        go = self.cache / "go"
        return {
            "GOMODCACHE": str(go / "mod"),
            "GOCACHE": str(go / "build"),
            "GOPATH": str(go / "path"),
            "CGO_ENABLED": "0",  # static binaries for FROM-scratch images
            "GOFLAGS": "-buildvcs=false",
            "GOTOOLCHAIN": "local",
        }

    def bin_dir(self, name: str, version: str) -> Path:
        return self.cache / "bin" / f"{name}-{version}"

    def module_dir(self, module: str, version: str) -> Path:
        """Where `go mod download` put a module (capitals are escaped as `!x`)."""
        escaped = re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), module)
        return Path(self.env["GOMODCACHE"]) / f"{escaped}@{version}"

    def download(self, module: str, version: str) -> Path:
        run(["go", "mod", "download", f"{module}@{version}"], env=self.env, cwd=self.cache)
        return self.module_dir(module, version)

    def wrapper(self, name: str, requires: dict[str, str], replaces: dict[str, str]) -> Path:
        folder = self.cache / "src" / name
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"module kdemo-build/{name}", "", "go 1.24.0", "", "godebug default=go1.24", ""]
        lines += [f"require {m} {v}" for m, v in requires.items()]
        lines += [f"replace {m} => {m} {v}" for m, v in sorted(replaces.items())]
        (folder / "go.mod").write_text("\n".join(lines) + "\n")
        return folder

    def build(
        self,
        name: str,
        folder: Path,
        packages: dict[str, str],
        out: Path,
        ldflags: str = "-s -w",
    ) -> None:
        """`go get` then `go build` each package (binary name -> import path) into `out`."""
        log = self.cache / "logs" / f"{name}.log"
        version = {p.split("@")[0]: p for p in packages.values()}
        run(["go", "get", *version.values()], env=self.env, cwd=folder, log=log)
        partial = out.with_name(out.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        for binary, package in packages.items():
            run(
                ["go", "build", "-trimpath", "-ldflags", ldflags,
                 "-o", str(partial / binary), package.split("@")[0]],
                env=self.env, cwd=folder, log=log,
            )  # fmt: skip
        partial.rename(out)  # the whole set or nothing: a killed build is redone


def _kubernetes_ldflags() -> str:
    """The version stamps kubeadm and kind read (without them: v0.0.0-master)."""
    major, minor = versions.KUBERNETES.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        for key, value in (
            ("gitVersion", versions.KUBERNETES),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
            ("gitCommit", "0" * 40),
            ("buildDate", versions.BUILD_DATE),
        ):
            flags.append(f"-X {pkg}.{key}={value}")
    return " ".join(flags)


def _kubernetes(go: GoBuild, out: Path) -> None:
    source = go.download("k8s.io/kubernetes", versions.KUBERNETES)
    staged = _REPLACE.findall((source / "go.mod").read_text())
    if not staged:
        raise ChainError(f"no staging replaces found in {source}/go.mod")
    folder = go.wrapper(
        "kubernetes",
        {"k8s.io/kubernetes": versions.KUBERNETES},
        {module: versions.STAGING for module in staged},
    )
    packages = {b: f"k8s.io/kubernetes/cmd/{b}@{versions.KUBERNETES}" for b in KUBERNETES_BINARIES}
    go.build("kubernetes", folder, packages, out, _kubernetes_ldflags())


def _single(go: GoBuild, name: str, module: str, version: str, package: str, out: Path) -> None:
    folder = go.wrapper(name, {module: version}, {})
    go.build(name, folder, {name: f"{package}@{version}"}, out)


def build_all(go: GoBuild, timings: Timings) -> dict[str, Path]:
    """Build every program (each skipped when the cache has it); name -> its binary."""
    kubernetes = go.bin_dir("kubernetes", versions.KUBERNETES)
    with timings.step(f"Kubernetes {versions.KUBERNETES} (7 binaries)", cached=kubernetes.exists()):
        if not kubernetes.exists():
            _kubernetes(go, kubernetes)
    programs = {f"{b}": kubernetes / b for b in KUBERNETES_BINARIES}

    singles = (
        ("kind", "sigs.k8s.io/kind", versions.KIND, "sigs.k8s.io/kind"),
        ("etcd", "go.etcd.io/etcd/server/v3", versions.ETCD, "go.etcd.io/etcd/server/v3"),
        ("coredns", "github.com/coredns/coredns", versions.COREDNS, "github.com/coredns/coredns"),
        ("crictl", "sigs.k8s.io/cri-tools", versions.CRI_TOOLS, "sigs.k8s.io/cri-tools/cmd/crictl"),
        (
            "local-path-provisioner",
            "github.com/rancher/local-path-provisioner",
            versions.LOCAL_PATH_PROVISIONER,
            "github.com/rancher/local-path-provisioner",
        ),
        (
            "kube-router",
            "github.com/cloudnativelabs/kube-router/v2",
            versions.KUBE_ROUTER,
            "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router",
        ),
    )
    for name, module, version, package in singles:
        out = go.bin_dir(name, version)
        with timings.step(f"{name} {version}", cached=out.exists()):
            if not out.exists():
                _single(go, name, module, version, package, out)
        programs[name] = out / name

    source = _FILES / "pause" / "pause.go"
    pause = go.bin_dir("pause", hashlib.sha256(source.read_bytes()).hexdigest()[:12])
    with timings.step("pause (kdemo's own)", cached=pause.exists()):
        if not pause.exists():
            partial = pause.with_name(pause.name + ".partial")
            partial.mkdir(parents=True, exist_ok=True)
            run(
                ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial / "pause"),
                 str(source)],
                env=go.env, cwd=go.cache,
            )  # fmt: skip
            partial.rename(pause)
    programs["pause"] = pause / "pause"
    return programs
