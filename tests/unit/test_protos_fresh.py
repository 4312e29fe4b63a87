"""The generated gRPC modules match their .proto files (no drift)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh() -> None:
    """`scripts/gen_protos.py --check` regenerates into a temporary directory and finds no
    difference from the committed modules."""
    done = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_generated_modules_import_absolutely() -> None:
    """The generated stubs import their messages as `services.protos.<name>_pb2`."""
    from services.protos import calc_pb2, calc_pb2_grpc, identity_pb2, identity_pb2_grpc

    assert calc_pb2.DESCRIPTOR.package == "kdemo.calc.v1"
    assert identity_pb2.DESCRIPTOR.package == "kdemo.identity.v1"
    assert hasattr(calc_pb2_grpc, "CalcStub")
    assert hasattr(identity_pb2_grpc, "IdentityStub")
    source = (REPO / "services/protos/calc_pb2_grpc.py").read_text()
    assert "from services.protos import calc_pb2" in source


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_protos", REPO / "scripts/gen_protos.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_names_stale_and_orphaned_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--check names an edited generated file and one whose .proto is gone, and exits 1."""
    script = _load_script()
    copy = tmp_path / "services/protos"
    shutil.copytree(REPO / "services/protos", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "calc_pb2.py").write_text("# edited by hand\n")
    (copy / "gone_pb2.py").write_text("# from a deleted proto\n")
    monkeypatch.setattr(script, "REPO", tmp_path)
    assert script.check() == ["services/protos/calc_pb2.py", "services/protos/gone_pb2.py"]
    assert script.main(["--check"]) == 1
