"""The images: a Debian base from debootstrap, the component images and the kind node image.

Every image is tagged with a hash of what it is made from, so a second run finds it and
a change to any input (a Dockerfile here, a binary, a version) builds it anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import versions
from .binaries import GoBuild
from .shell import ChainError, Timings, run

__all__ = ["ImageBuilder"]

_FILES = Path(__file__).resolve().parent / "files"
_KIND_FILES = "images/base/files"
"""kind's node base files (entrypoint, units, containerd config), read from its module."""
_STORAGE_SOURCE = "pkg/build/nodeimage/const_storage.go"
_GO_CONST = re.compile(r'^const (\w+) = "([^"]*)"', re.MULTILINE)
_GO_OPERAND = re.compile(r"`([^`]*)`|(\w+)")
_EXECUTABLE_DIRS = ("usr/local/bin/", "kind/bin/")
REPOSITORY = "kdemo-kind"
_DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _digest(*parts: bytes | str | Path) -> str:
    sha = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            files = sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]
            for f in files:
                name = f.relative_to(part) if part.is_dir() else Path(f.name)
                sha.update(name.as_posix().encode() + b"\0" + f.read_bytes())
        else:
            sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\0")
    return sha.hexdigest()[:12]


def debian_mirror() -> str:
    """The host's Debian mirror (deb822 or one-line sources), else deb.debian.org."""
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if not path.exists():
            continue
        text = path.read_text()
        match = re.search(r"^URIs:\s*(\S+)", text, re.MULTILINE) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.MULTILINE
        )
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


@dataclass
class ImageBuilder:
    cache: Path
    docker_env: Mapping[str, str]
    timings: Timings

    # -- docker --------------------------------------------------------------------------

    def docker(self, *args: str, stdin: bytes | None = None, timeout: float = 1800) -> str:
        return run(["docker", *args], env=self.docker_env, stdin=stdin, timeout=timeout)

    def exists(self, tag: str) -> bool:
        return self.docker_code("image", "inspect", tag) == 0

    def image_id(self, tag: str) -> str:
        return self.docker("image", "inspect", "--format", "{{.Id}}", tag).strip()

    def build(self, what: str, tag: str, context: Path, base: str | None = None) -> str:
        """`docker build` (host network: apt and pip reach the registries as the host does)."""
        with self.timings.step(what, cached=self.exists(tag)):
            if not self.exists(tag):
                argv = ["build", "--network", "host", "--tag", tag]
                if base:
                    argv += ["--build-arg", f"BASE={base}"]
                log = self.cache / "logs" / f"{tag.replace('/', '_').replace(':', '_')}.log"
                run(["docker", *argv, str(context)], env=self.docker_env, log=log)
        return tag

    # -- the Debian base -----------------------------------------------------------------

    def debian(self) -> str:
        """A minimal Debian (`debootstrap --variant=minbase`) imported as an image."""
        tarball = self.cache / "rootfs" / f"debian-{versions.DEBIAN}.tar"
        with self.timings.step(
            f"Debian {versions.DEBIAN} root filesystem", cached=tarball.exists()
        ):
            if not tarball.exists():
                self._debootstrap(tarball)
        tag = f"{REPOSITORY}/debian:{versions.DEBIAN}-{_digest(tarball)}"
        with self.timings.step("Debian base image", cached=self.exists(tag)):
            if not self.exists(tag):
                self.docker(
                    "import",
                    "--change", f"ENV PATH={_DEBIAN_PATH}",
                    "--change", 'CMD ["/bin/bash"]',
                    str(tarball), tag,
                )  # fmt: skip
        return tag

    def _debootstrap(self, tarball: Path) -> None:
        tarball.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="debootstrap-") as tmp:
            root = Path(tmp) / "root"
            run(
                ["debootstrap", "--variant=minbase", versions.DEBIAN, str(root), debian_mirror()],
                log=self.cache / "logs" / "debootstrap.log",
            )
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for f in (root / junk).glob("*"):
                    if f.is_file():
                        f.unlink()
            partial = tarball.with_suffix(".partial")
            run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."])
            partial.rename(tarball)

    # -- images from a Dockerfile in files/ ----------------------------------------------

    def from_recipe(self, name: str, recipe: str, base: str, extra: Mapping[str, Path] = {}) -> str:
        """Build files/<recipe>.Dockerfile on `base`, with `extra` files in its context."""
        dockerfile = _FILES / f"{recipe}.Dockerfile"
        with tempfile.TemporaryDirectory(prefix="kdemo-kind-ctx-") as tmp:
            context = Path(tmp)
            shutil.copyfile(dockerfile, context / "Dockerfile")
            for target, source in extra.items():
                _copy(source, context / target)
            tag = f"{REPOSITORY}/{name}:{_digest(context, self.image_id(base))}"
            return self.build(f"image {name}", tag, context, base)

    def scratch(self, name: str, binary: Path, *, at: str, user: str | None = None) -> str:
        """An image of one static binary and nothing else."""
        lines = ["FROM scratch", f"COPY {binary.name} {at}"]
        lines += ["ENV PATH=/usr/local/bin", f'ENTRYPOINT ["{at}"]']
        if user:
            lines.append(f"USER {user}")
        with tempfile.TemporaryDirectory(prefix="kdemo-kind-ctx-") as tmp:
            context = Path(tmp)
            (context / "Dockerfile").write_text("\n".join(lines) + "\n")
            shutil.copy2(binary, context / binary.name)
            tag = f"{REPOSITORY}/{name}:{_digest(context)}"
            return self.build(f"image {name}", tag, context)

    # -- the node --------------------------------------------------------------------------

    def kind_base(self, go: GoBuild, debian: str) -> str:
        """Debian with systemd, containerd and kind's own node files (entrypoint, units)."""
        kind_files = go.download("sigs.k8s.io/kind", versions.KIND) / _KIND_FILES
        with tempfile.TemporaryDirectory(prefix="kdemo-kind-ctx-") as tmp:
            context = Path(tmp)
            shutil.copyfile(_FILES / "node.Dockerfile", context / "Dockerfile")
            shutil.copy2(_FILES / "node-setup.sh", context / "node-setup.sh")
            _stage_tree(kind_files, context / "kind-files", skip=("LICENSES",))
            _stage_tree(_FILES / "node", context / "kdemo-files")
            (context / "packages").write_text(" ".join(versions.NODE_PACKAGES) + "\n")
            tag = (
                f"{REPOSITORY}/kindbase:{versions.DEBIAN}-{_digest(context, self.image_id(debian))}"
            )
            return self.build(
                "node base image (systemd, containerd, kind's files)", tag, context, debian
            )

    def node(self, kindbase: str, binaries: Mapping[str, Path], images: Mapping[str, str],
             manifests: Mapping[str, str]) -> str:  # fmt: skip
        """The node image: kind's base plus kubeadm, kubelet, kubectl, crictl and every image,
        pinned.

        `images` maps the name a pod asks for to the local image that answers it.
        """
        ids = sorted(f"{name}={self.image_id(local)}" for name, local in images.items())
        tag = f"{REPOSITORY}/node:{versions.KUBERNETES}-" + _digest(
            self.image_id(kindbase),
            *[binaries[b] for b in ("kubeadm", "kubelet", "kubectl", "crictl")],
            *ids,
            json.dumps(dict(manifests), sort_keys=True),
        )
        with self.timings.step(f"node image {tag}", cached=self.exists(tag)):
            if not self.exists(tag):
                self._assemble(tag, kindbase, binaries, images, manifests)
        return tag

    def _assemble(self, tag: str, kindbase: str, binaries: Mapping[str, Path],
                  images: Mapping[str, str], manifests: Mapping[str, str]) -> None:  # fmt: skip
        container = f"kdemo-kind-build-{os.getpid()}"
        self.docker(
            "run", "--detach", "--name", container, "--entrypoint", "sleep",
            "--security-opt", "seccomp=unconfined", kindbase, "infinity",
        )  # fmt: skip
        try:
            for name in ("kubeadm", "kubelet", "kubectl"):
                self.docker("cp", str(binaries[name]), f"{container}:/usr/bin/{name}")
            self.docker("cp", str(binaries["crictl"]), f"{container}:/usr/local/bin/crictl")
            self._write(container, "/kind/version", versions.KUBERNETES)
            for name, text in manifests.items():
                self._write(container, f"/kind/manifests/{name}", text)
            self.docker("exec", "--detach", container, "containerd")
            self._wait_containerd(container)
            for name, local in sorted(images.items()):
                self.docker("tag", local, name)
                saved = self.docker_bytes("save", name)
                self.docker(
                    "exec", "--interactive", container,
                    "ctr", "--namespace=k8s.io", "images", "import",
                    "--label=io.cri-containerd.pinned=pinned",
                    "--all-platforms", "--no-unpack", "--digests", "-",
                    stdin=saved,
                )  # fmt: skip
            listed = self.docker(
                "exec", container, "ctr", "--namespace=k8s.io", "images", "ls", "-q"
            )
            missing = [n for n in images if _normalise(n) not in listed.split()]
            if missing:
                raise ChainError(f"not imported into the node: {', '.join(missing)}")
            self._stop_containerd(container)
            self.docker(
                "commit",
                "--change", 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]',
                container, tag,
            )  # fmt: skip
        finally:
            subprocess.run(
                ["docker", "rm", "--force", container],
                env={**os.environ, **self.docker_env},
                capture_output=True,
                check=False,
            )

    def docker_bytes(self, *args: str) -> bytes:
        done = subprocess.run(
            ["docker", *args],
            env={**os.environ, **self.docker_env},
            capture_output=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise ChainError(f"docker {' '.join(args)} failed: {done.stderr.decode()[-500:]}")
        return done.stdout

    def _write(self, container: str, path: str, text: str) -> None:
        self.docker(
            "exec", "--interactive", container, "sh", "-c",
            f'mkdir -p "$(dirname {path})" && cat > {path}',
            stdin=text.encode(),
        )  # fmt: skip

    def _stop_containerd(self, container: str) -> None:
        """Stop containerd and wait until it is gone: the commit must not catch it mid-write."""
        self.docker("exec", container, "pkill", "-x", "containerd")
        deadline = time.monotonic() + 60
        while self.docker_code("exec", container, "pgrep", "-x", "containerd") == 0:
            if time.monotonic() > deadline:
                raise ChainError("containerd did not stop in the node image's build container")
            time.sleep(0.2)

    def docker_code(self, *args: str) -> int:
        """A docker command's exit code (for questions like `is it still running`)."""
        return subprocess.run(
            ["docker", *args],
            env={**os.environ, **self.docker_env},
            capture_output=True,
            timeout=60,
            check=False,
        ).returncode

    def _wait_containerd(self, container: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                self.docker("exec", container, "ctr", "version", timeout=20)
                return
            except ChainError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def storage_manifest(go: GoBuild) -> tuple[str, dict[str, str]]:
    """kind's default storage manifest and the two images it names, from kind's source."""
    return parse_storage_manifest(
        (go.download("sigs.k8s.io/kind", versions.KIND) / _STORAGE_SOURCE).read_text()
    )


def parse_storage_manifest(source: str) -> tuple[str, dict[str, str]]:
    """The manifest string constant of kind's const_storage.go, with its image constants
    substituted (`"..." + storageProvisionerImage + "..."`), and those two images."""
    consts = dict(_GO_CONST.findall(source))
    rest = source.split("const defaultStorageManifest = ", 1)[1]
    text = ""
    while True:  # operands joined by `+`: raw strings and constant names
        operand = _GO_OPERAND.match(rest)
        if operand is None:
            raise ChainError("cannot read defaultStorageManifest from kind's const_storage.go")
        literal, name = operand.group(1), operand.group(2)
        text += literal if name is None else consts[name]
        rest = rest[operand.end() :]
        joined = re.match(r"\s*\+\s*", rest)
        if joined is None:
            return text, {
                "provisioner": consts["storageProvisionerImage"],
                "helper": consts["storageHelperImage"],
            }
        rest = rest[joined.end() :]


def sandbox_image(go: GoBuild) -> str:
    """The pause image kind's containerd configuration names."""
    config = (
        go.download("sigs.k8s.io/kind", versions.KIND) / _KIND_FILES / "etc/containerd/config.toml"
    )
    match = re.search(r'sandbox_image\s*=\s*"([^"]+)"', config.read_text())
    if not match:
        raise ChainError(f"no sandbox_image in {config}")
    return match.group(1)


def _normalise(name: str) -> str:
    """How containerd names an image: docker.io/library/ for short Docker Hub names."""
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def _stage_tree(source: Path, target: Path, skip: Iterable[str] = ()) -> None:
    """Copy a tree with the modes an image wants (module cache files are read-only)."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_dir() or any(relative.startswith(s) for s in skip):
            continue
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(path.read_bytes())
        executable = relative.startswith(_EXECUTABLE_DIRS) or path.stat().st_mode & 0o111
        out.chmod(0o755 if executable else 0o644)
    for folder in [target, *[p for p in target.rglob("*") if p.is_dir()]]:
        folder.chmod(0o755)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        _stage_tree(source, target)
    else:
        shutil.copy2(source, target)
