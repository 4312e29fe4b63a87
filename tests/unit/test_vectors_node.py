"""The golden vectors agree with ethers, an implementation independent of eth-account."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "tests" / "js"
VECTORS = ROOT / "tests" / "vectors"


@pytest.fixture(scope="module")
def ethers_view() -> dict[str, Any]:
    """What tests/js/check_vectors.mjs computes from the committed vectors."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; install Node.js 18+ to cross-check the vectors")
    if not (JS / "node_modules" / "ethers").is_dir():
        pytest.fail("tests/js/node_modules is missing; run: npm ci --prefix tests/js")
    result = subprocess.run(
        [node, str(JS / "check_vectors.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"check_vectors.mjs failed:\n{result.stderr}"
    view: dict[str, Any] = json.loads(result.stdout)
    return view


def committed(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def test_ethers_derives_the_same_address(ethers_view: dict[str, Any]) -> None:
    """ethers derives the committed address from the committed private key."""
    assert ethers_view["eip712"]["address"] == committed("eip712_bounty.json")["address"]
    assert ethers_view["siwe"]["address"] == committed("siwe.json")["address"]


def test_ethers_agrees_on_every_eip712_case(ethers_view: dict[str, Any]) -> None:
    """For each Bounty, ethers' digest and signature equal the committed ones byte for byte."""
    vectors = committed("eip712_bounty.json")
    expected = [
        {
            "name": case["name"],
            "hash": case["hash"],
            "signature": case["signature"],
            "recovered": vectors["address"],
        }
        for case in vectors["cases"]
    ]
    assert ethers_view["eip712"]["cases"] == expected


def test_ethers_agrees_on_every_siwe_case(ethers_view: dict[str, Any]) -> None:
    """For each link message, ethers' personal_sign signature and recovered signer match."""
    vectors = committed("siwe.json")
    expected = [
        {"name": case["name"], "signature": case["signature"], "recovered": vectors["address"]}
        for case in vectors["cases"]
    ]
    assert ethers_view["siwe"]["cases"] == expected


def test_lock_file_pins_ethers_6() -> None:
    """The node check is reproducible: the lock file pins ethers 6."""
    lock = json.loads((JS / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/ethers"]["version"].startswith("6.")


def test_committed_vectors_are_current() -> None:
    """The committed files are exactly what scripts/make_vectors.py writes today."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
