"""Generate the Python gRPC modules from services/protos/*.proto.

    uv run python scripts/gen_protos.py            # regenerate in place
    uv run python scripts/gen_protos.py --check    # exit 1 naming stale files

protoc runs from the repository root with `-I .`, so the generated modules live
next to their .proto files and import each other absolutely
(`from services.protos import calc_pb2`). protoc's header comments carry tool
versions; they are replaced by one fixed line so the output depends on the
.proto files and the locked grpcio-tools only.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

__all__ = ["PROTO_DIR", "REPO", "check", "generate", "main"]

REPO = Path(__file__).resolve().parents[1]
PROTO_DIR = Path("services/protos")
_GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def _protos() -> list[Path]:
    return sorted(p.relative_to(REPO) for p in (REPO / PROTO_DIR).glob("*.proto"))


def _generated_in(directory: Path) -> set[str]:
    return {
        p.name
        for p in directory.glob("*_pb2*")
        if p.is_file() and p.name.endswith(_GENERATED_SUFFIXES)
    }


def _strip_header(text: str, proto: str) -> str:
    """Replace protoc's leading comment lines (with tool versions) by one fixed line."""
    lines = text.splitlines(keepends=True)
    start = 0
    while start < len(lines) and lines[start].startswith("#"):
        start += 1
    return f"# Generated from {proto} by scripts/gen_protos.py; do not edit.\n" + "".join(
        lines[start:]
    )


def generate(out_dir: Path) -> set[str]:
    """Run protoc for every .proto into `out_dir`; returns the generated file names."""
    protos = _protos()
    if not protos:
        raise SystemExit(f"no .proto files in {PROTO_DIR}")
    plugin = Path(sysconfig.get_path("scripts")) / "protoc-gen-mypy_grpc"
    if not plugin.exists():
        raise SystemExit(
            f"{plugin} not found: install the dev dependencies (`uv sync`) for mypy-protobuf"
        )
    with tempfile.TemporaryDirectory() as raw_dir:
        raw = Path(raw_dir)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                "-I",
                ".",
                f"--python_out={raw}",
                f"--grpc_python_out={raw}",
                f"--pyi_out={raw}",
                f"--plugin=protoc-gen-mypy_grpc={plugin}",
                f"--mypy_grpc_out={raw}",
                *(str(p) for p in protos),
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        names = _generated_in(raw / PROTO_DIR)
        for name in names:
            text = (raw / PROTO_DIR / name).read_text("utf-8")
            if name.endswith(".py"):
                text = _strip_header(text, f"{PROTO_DIR}/{name.split('_pb2')[0]}.proto")
            (out_dir / name).write_text(text, "utf-8")
    return names


def check() -> list[str]:
    """Names of files in services/protos that differ from a fresh generation."""
    target = REPO / PROTO_DIR
    with tempfile.TemporaryDirectory() as fresh_dir:
        fresh = Path(fresh_dir)
        expected = generate(fresh)
        present = _generated_in(target)
        stale = sorted(present - expected)  # generated from a .proto that is gone
        for name in sorted(expected):
            if name not in present or not filecmp.cmp(fresh / name, target / name, shallow=False):
                stale.append(name)
    return sorted(f"{PROTO_DIR}/{name}" for name in stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if any file is stale"
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = check()
            if stale:
                print(
                    "stale generated gRPC code: "
                    + ", ".join(stale)
                    + "\nhint: run `uv run python scripts/gen_protos.py` and commit the result",
                    file=sys.stderr,
                )
                return 1
            print("generated gRPC code is up to date")
            return 0
        target = REPO / PROTO_DIR
        with tempfile.TemporaryDirectory() as fresh_dir:
            fresh = Path(fresh_dir)
            names = generate(fresh)
            for name in _generated_in(target) - names:
                (target / name).unlink()
            for name in sorted(names):
                shutil.copyfile(fresh / name, target / name)
                print(f"wrote {PROTO_DIR}/{name}")
        return 0
    except subprocess.CalledProcessError as error:
        print(f"protoc failed:\n{error.stderr}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
