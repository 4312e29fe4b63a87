"""The one kdemo image: its tag, and building it with docker (only when it is missing).

The tag is a hash of everything the image is made from (Dockerfile, lock file, services,
base image), so an unchanged checkout never rebuilds and a changed one never reuses a
stale image. `KDEMO_BASE_IMAGE` replaces the default base (the official slim Python
image) with any Debian-like image that has python3 and venv — on a machine that cannot
pull, one built locally (see docs/kubernetes.md).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

from kdemo.runtime.base import Progress
from kdemo.runtime.kube.conventions import IMAGE_NAME
from kdemo.runtime.kube.render import MANIFESTS_DIR
from kdemo.runtime.kube.tools import run_tool

__all__ = [
    "BASE_IMAGE_ENV",
    "base_identity",
    "base_image",
    "build_image",
    "content_tag",
    "docker_build",
    "image_id",
    "image_reference",
    "image_tag",
]

BASE_IMAGE_ENV = "KDEMO_BASE_IMAGE"
ROOT = MANIFESTS_DIR.parent
_IMAGE_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock", "services")
_BUILD_HINT = "see `kdemo doctor`; the build's whole output: `docker build .` in the repository"


def base_image() -> str | None:
    return os.environ.get(BASE_IMAGE_ENV) or None


def content_tag(base: str | None, inputs: Iterable[tuple[str, bytes]]) -> str:
    """A tag that changes whenever the base (its name, or better its id) or any input (a
    file's name and bytes) changes."""
    digest = hashlib.sha256((base or "").encode() + b"\0")
    for name, content in inputs:
        digest.update(name.encode() + b"\0" + content)
    return digest.hexdigest()[:12]


def image_tag(root: Path = ROOT, base: str | None = None) -> str:
    """A tag that changes whenever anything the image is built from changes (`base`: the
    base image's name, or better its id)."""
    return content_tag(base, _repository_inputs(root))


def _repository_inputs(root: Path) -> Iterator[tuple[str, bytes]]:
    for name in _IMAGE_INPUTS:
        path = root / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts:
                yield str(f.relative_to(root)), f.read_bytes()


def base_identity() -> str | None:
    """The configured base image by id when docker has it (a base rebuilt under the same
    name then makes a new tag), else by name; None for the Dockerfile's default."""
    base = base_image()
    return (base and image_id(base)) or base


def image_reference(repository: str | None = None) -> str:
    """`[repository/]kdemo:<tag>` for this checkout and the configured base image."""
    name = f"{repository.rstrip('/')}/{IMAGE_NAME}" if repository else IMAGE_NAME
    return f"{name}:{image_tag(ROOT, base_identity())}"


def image_id(reference: str) -> str | None:
    """docker's id of a local image, or None (not there, or no docker to ask)."""
    try:
        done = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", reference],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def build_image(reference: str, progress: Progress) -> None:
    """Build the image unless docker already has this exact tag."""
    docker_build(reference, ROOT, progress, hint=_BUILD_HINT)


def docker_build(
    reference: str,
    context: Path,
    progress: Progress,
    *,
    hint: str,
    dockerfile: Path | None = None,
) -> None:
    """`docker build` of `context` into `reference` on the configured base image, unless
    docker already has this exact tag."""
    if image_id(reference) is not None:
        progress(f"the image {reference} is already built")
        return
    base = base_image()
    progress(f"building the image {reference} (docker build{', on ' + base if base else ''})")
    # The host's network: apt and pip inside the build reach the registries the way this
    # machine does, also with a daemon that routes no traffic for its containers.
    argv = ["docker", "build", "--network", "host", "--tag", reference]
    if dockerfile is not None:
        argv += ["--file", str(dockerfile)]
    if base:
        argv += ["--build-arg", f"BASE_IMAGE={base}"]
    run_tool([*argv, str(context)], what=f"building {reference}", hint=hint, timeout=1800)
