"""The offline kind chain's own logic: what it reads from kind's source, its runc wrapper, and
how the tests wait for a chain building in the background."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from scripts.kind_offline.images import _normalise, parse_storage_manifest
from tests.offline_kind import ChainNotReady, parse_settings, wait_for_chain

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


def _finish_chain(directory: Path, status: int, settings: str, log: str) -> None:
    """What `.ci/run`'s background job leaves: the outputs, then the status, renamed whole."""
    (directory / "settings").write_text(settings)
    (directory / "log").write_text(log)
    (directory / "status.part").write_text(f"{status}\n")
    (directory / "status.part").rename(directory / "status")


def test_the_tests_wait_for_a_chain_building_in_the_background(tmp_path: Path) -> None:
    """The settings are read once the status says the chain is done, not before."""
    settings = "DOCKER_HOST=unix:///run/kdemo-kind/docker.sock\nKDEMO_KIND_NODE_IMAGE=a:b\n"
    timer = threading.Timer(0.5, _finish_chain, (tmp_path, 0, settings, "built\n"))
    timer.start()
    try:
        assert wait_for_chain(tmp_path, timeout=30) == parse_settings(settings)
        assert (tmp_path / "status").exists()  # it did wait for it
    finally:
        timer.cancel()


def test_a_failed_background_chain_fails_with_its_last_words(tmp_path: Path) -> None:
    """A chain that failed: its exit status and the end of its log, not a wait."""
    _finish_chain(tmp_path, 1, "", "kind-offline: error: ChainError: go is not installed\n")
    with pytest.raises(ChainNotReady, match=r"failed \(exit 1\):\n.*go is not installed"):
        wait_for_chain(tmp_path, timeout=30)


def test_a_background_chain_that_never_ends_times_out(tmp_path: Path) -> None:
    with pytest.raises(ChainNotReady, match="did not finish in 1 s"):
        wait_for_chain(tmp_path, timeout=1)


def test_the_runc_wrapper_drops_only_cap_sys_resource(
    tmp_path: Path, kind_environment: dict[str, str]
) -> None:
    """`create --bundle` and `exec --process` specs lose CAP_SYS_RESOURCE and nothing else.

    `kind_environment`: the chain installs jq and runc (with docker.io) where it can."""
    if shutil.which("jq") is None or not Path("/usr/sbin/runc").exists():
        pytest.skip("needs jq and /usr/sbin/runc (apt-get install jq runc)")
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
