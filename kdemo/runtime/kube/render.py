"""Rendering `manifests/` with `kubectl kustomize` (kubectl's only other use is port-forward)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from kdemo.errors import ConfigError, KdemoError

__all__ = ["MANIFESTS_DIR", "find_kubectl", "kustomization_with", "render", "set_image"]

MANIFESTS_DIR = Path(__file__).resolve().parents[3] / "manifests"
"""`manifests/` of this checkout (the runtime deploys what the repository holds)."""

Manifest = dict[str, Any]


def find_kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise KdemoError(
            "kubectl is not installed (kdemo uses it to render manifests and port-forward)",
            "install it: https://kubernetes.io/docs/tasks/tools/ (kind users usually have it)",
        )
    return path


def kustomization_with(overlay: Path, components: Sequence[str], folder: Path) -> Path:
    """A kustomization in `folder` that adds `components` (by name) to `overlay`."""
    missing = [c for c in components if not (MANIFESTS_DIR / "components" / c).is_dir()]
    if missing:
        raise ConfigError(
            f"unknown kustomize component(s): {', '.join(missing)}",
            "choose from: "
            + ", ".join(sorted(p.name for p in (MANIFESTS_DIR / "components").iterdir())),
        )
    body = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize refuses absolute paths: name the directories relative to `folder`.
        "resources": [os.path.relpath(Path(overlay).resolve(), folder)],
        "components": [
            os.path.relpath(MANIFESTS_DIR / "components" / c, folder) for c in components
        ],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return folder


def render(overlay: Path, components: Sequence[str] = ()) -> list[Manifest]:
    """Every object `kubectl kustomize` renders from `overlay` (plus `components`)."""
    kubectl = find_kubectl()
    with tempfile.TemporaryDirectory(prefix="kdemo-kustomize-") as tmp:
        target = kustomization_with(Path(overlay), components, Path(tmp)) if components else overlay
        done = subprocess.run(
            [kubectl, "kustomize", str(target)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise KdemoError(
            f"`kubectl kustomize {overlay}` failed: {last}",
            "run it yourself to see the whole error; the manifests may have been edited",
        )
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def set_image(objects: list[Manifest], name: str, reference: str) -> list[Manifest]:
    """Point every container (init containers too) whose image is `name` (any tag) at
    `reference`."""
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            image = str(container.get("image", ""))
            if image == name or image.startswith(name + ":"):
                container["image"] = reference
    return objects
