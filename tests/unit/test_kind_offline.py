"""The offline kind chain's own logic: what it reads from kind's source, and its runc wrapper."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.kind_offline.images import _normalise, parse_storage_manifest
from tests.offline_kind import parse_settings

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "scripts" / "kind_offline" / "files" / "runc-nosysresource"

STORAGE_SOURCE = """package nodeimage

const storageProvisionerImage = "docker.io/kindest/local-path-provisioner:v1"
const storageHelperImage = "docker.io/kindest/local-path-helper:v2"

const defaultStorageManifest = `
image: ` + storageProvisionerImage + `
helper: ` + storageHelperImage + `
end`

// a later declaration must not be read as part of the manifest
var unrelated = other
"""


def test_the_storage_manifest_is_read_with_its_images_substituted() -> None:
    """kind's storage manifest is a Go constant built with `+`: both images are filled in."""
    text, images = parse_storage_manifest(STORAGE_SOURCE)
    assert text == (
        "\nimage: docker.io/kindest/local-path-provisioner:v1\n"
        "helper: docker.io/kindest/local-path-helper:v2\nend"
    )
    assert images == {
        "provisioner": "docker.io/kindest/local-path-provisioner:v1",
        "helper": "docker.io/kindest/local-path-helper:v2",
    }


@pytest.mark.parametrize(
    ("name", "containerd"),
    [
        ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
        ("kindest/local-path-helper:v2", "docker.io/kindest/local-path-helper:v2"),
        ("kdemo-kind/kube-router:v2.1.0", "docker.io/kdemo-kind/kube-router:v2.1.0"),
        ("busybox:1", "docker.io/library/busybox:1"),
    ],
)
def test_image_names_as_containerd_lists_them(name: str, containerd: str) -> None:
    """The node image is checked against containerd's full names, Docker Hub's included."""
    assert _normalise(name) == containerd


def test_settings_are_the_key_value_lines_a_shell_would_eval() -> None:
    """Only `KEY=VALUE` lines count; anything else on stdout is ignored."""
    out = "noise\nDOCKER_HOST=unix:///run/kdemo-kind/docker.sock\nKDEMO_KIND_NODE_IMAGE=a:b\n"
    assert parse_settings(out) == {
        "DOCKER_HOST": "unix:///run/kdemo-kind/docker.sock",
        "KDEMO_KIND_NODE_IMAGE": "a:b",
    }


@pytest.mark.skipif(
    shutil.which("jq") is None or not Path("/usr/sbin/runc").exists(),
    reason="needs jq and /usr/sbin/runc (apt-get install jq runc)",
)
def test_the_runc_wrapper_drops_only_cap_sys_resource(tmp_path: Path) -> None:
    """`create --bundle` and `exec --process` specs lose CAP_SYS_RESOURCE and nothing else."""
    caps = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    spec = {"process": {"capabilities": {"bounding": caps, "effective": caps}}, "root": {}}
    (bundle / "config.json").write_text(json.dumps(spec))
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"capabilities": {"permitted": caps}, "args": ["sh"]}))
    for argv in (
        ["--root", str(tmp_path / "state"), "create", "--bundle", str(bundle), "id-1"],
        ["exec", f"--process={process}", "id-2"],
    ):
        # The real runc then fails (there is no such container): only the specs matter here.
        subprocess.run([str(WRAPPER), *argv], capture_output=True, timeout=30, check=False)
    kept = ["CAP_CHOWN", "CAP_NET_ADMIN"]
    assert json.loads((bundle / "config.json").read_text())["process"]["capabilities"] == {
        "bounding": kept,
        "effective": kept,
    }
    assert json.loads(process.read_text()) == {"capabilities": {"permitted": kept}, "args": ["sh"]}
