"""Bringing the stack up and down, and looking at it: up, down, status, logs, dashboard."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from kdemo.cli.session import Output, OutputOption, print_json, session_of
from kdemo.errors import KdemoError, UsageError

__all__ = ["RuntimeName", "down", "kill", "logs", "status", "up"]


class RuntimeName(StrEnum):
    local = "local"
    kind = "kind"
    kubernetes = "kubernetes"


class BusName(StrEnum):
    nats = "nats"
    kafka = "kafka"


_STATE_STYLE = {"ready": "green", "starting": "yellow", "restarting": "yellow", "down": "red"}


def up(
    ctx: typer.Context,
    *,
    runtime: Annotated[
        RuntimeName,
        typer.Option("--runtime", "-r", help="Where to run the stack.", envvar="KDEMO_RUNTIME"),
    ] = RuntimeName.local,
    bus: Annotated[
        BusName | None,
        typer.Option(
            "--bus",
            "-b",
            help="The event bus: nats or kafka. Default: the stack's own, nats for a new one.",
            show_default=False,
        ),
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="Kube context (--runtime kubernetes).")
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option("--registry", help="Registry to push images to (--runtime kubernetes)."),
    ] = None,
    node_image: Annotated[
        str | None,
        typer.Option(
            "--node-image",
            envvar="KDEMO_KIND_NODE_IMAGE",
            show_envvar=True,
            help="Node image for a new kind cluster (--runtime kind); default: kind's own.",
        ),
    ] = None,
    dashboard: Annotated[
        bool, typer.Option("--dashboard", help="Open the live dashboard once the stack is up.")
    ] = False,
    output: OutputOption = Output.text,
) -> None:
    """Bring the stack up (a no-op when it already runs) and print its public URLs."""
    session = session_of(ctx)
    if runtime is not RuntimeName.kubernetes:
        for option, value in (("--context", context), ("--registry", registry)):
            if value is not None:
                raise UsageError(
                    f"{option} applies to --runtime kubernetes, not to {runtime.value}",
                    f"drop {option}, or use --runtime kubernetes",
                )
    if runtime is not RuntimeName.kind:
        source = ctx.get_parameter_source("node_image")
        if source is not None and source.name == "COMMANDLINE":
            raise UsageError(
                f"--node-image applies to --runtime kind, not to {runtime.value}",
                "drop --node-image, or use --runtime kind",
            )
        node_image = None  # KDEMO_KIND_NODE_IMAGE may be set for other runs: not for this one
    wanted_bus = bus.value if bus is not None else None
    if runtime is RuntimeName.local:
        if wanted_bus is None:
            rt = session.runtime()
        else:
            from kdemo.runtime import get_runtime

            rt = get_runtime(session.state_dir, bus=wanted_bus)
    else:
        from kdemo.runtime import new_runtime  # imported late: the cluster client is heavy

        rt = new_runtime(
            runtime.value,
            session.state_dir,
            context=context,
            registry=registry,
            node_image=node_image,
            bus=wanted_bus,
        )
    if dashboard:
        from kdemo.cli.dashboard import require_terminal  # late: only --dashboard needs it

        require_terminal()  # before starting anything: a script must not get a stack by accident
    with session.err.status("starting the stack", spinner="dots") as spinner:

        def progress(message: str) -> None:
            spinner.update(escape(message))
            session.err.print(f"[dim]· {escape(message)}[/dim]")

        urls = rt.up(progress=progress)
    if dashboard:
        from kdemo.cli.dashboard import open_dashboard  # late: only --dashboard needs Textual

        open_dashboard(ctx, rt)
        return
    if output is Output.json:
        print_json(session, {"runtime": rt.name, "bus": rt.bus(), "urls": urls})
        return
    table = Table(title=f"kdemo is up ({rt.name}) on {rt.bus()}", title_justify="left")
    table.add_column("service", no_wrap=True)
    table.add_column("public URL", overflow="fold")
    for name, url in urls.items():
        table.add_row(name, url)
    session.out.print(table)
    next_step = session.command("simulate-comment '$USDC:50$' --repo you/project --number 1")
    session.say(f"next: [bold]{escape(next_step)}[/bold]")


def down(
    ctx: typer.Context,
    *,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the data and the secrets.")
    ] = False,
) -> None:
    """Stop the stack; data and secrets are kept unless --purge."""
    session = session_of(ctx)
    rt = session.runtime()
    with session.err.status("stopping the stack", spinner="dots") as spinner:

        def progress(message: str) -> None:
            spinner.update(escape(message))
            session.err.print(f"[dim]· {escape(message)}[/dim]")

        outcome = rt.down(purge=purge, progress=progress)
    session.say(f"stack stopped: {outcome}")


def status(ctx: typer.Context, *, output: OutputOption = Output.text) -> None:
    """Every node of the stack: state, URL, uptime, restarts; and the dead-letter count.

    In JSON, `dlq` is -1 when it cannot be known (the stack or its bus is down); `bus` is
    the stack's event bus (nats or kafka).
    """
    session = session_of(ctx)
    rt = session.runtime()
    rows = rt.status()
    up = rt.is_up()
    dlq = -1  # unknown: the bus is not there to ask
    if up:
        try:
            dlq = rt.dlq_count()
        except KdemoError as exc:
            # status matters most when something is broken: report the rest, flag the unknown.
            session.warn(f"cannot count dead letters: {exc.message}")
    if output is Output.json:
        print_json(
            session,
            {
                "runtime": rt.name,
                "bus": rt.bus(),
                "services": [r.to_json() for r in rows],
                "dlq": dlq,
            },
        )
        return
    table = Table(title=f"kdemo stack ({rt.name}) on {rt.bus()}", title_justify="left")
    for column in ("node", "kind", "state", "url", "pid", "uptime", "restarts"):
        table.add_column(
            column,
            justify="right" if column in ("uptime", "restarts") else "left",
            # A URL cut with an ellipsis is useless: every cell folds instead, and on a narrow
            # terminal Rich narrows the widest column (url) first.
            overflow="fold",
        )
    for r in rows:
        style = _STATE_STYLE.get(r.state, "")
        pid = str(r.pid) if r.pid is not None else (f"{len(r.pods)} pods" if r.pods else "-")
        table.add_row(
            r.name,
            r.kind,
            f"[{style}]{r.state}[/{style}]",
            escape(r.url),
            pid,
            r.uptime_text if r.state != "down" else "-",
            str(r.restarts),
        )
    session.out.print(table)
    if not up:
        session.say(f"the stack is not up: run [bold]{escape(session.command('up'))}[/bold]")
    if dlq > 0:
        session.warn(f"{dlq} dead-lettered event(s): see `kdemo dlq list`")


def _require_node(node: str) -> None:
    """A UsageError unless `node` is a node of the topology (on either bus)."""
    from kdemo.runtime.buses import all_node_names  # late: `kdemo --help` needs no topology

    known = all_node_names()
    if node not in known:
        raise UsageError(f"unknown node {node!r}", f"choose one of: {', '.join(known)}")


def logs(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="A node of the topology, e.g. gateway or the bus.")],
    *,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, help="How many recent lines first.")
    ] = 200,
) -> None:
    """Print a node's log lines (JSON lines for the services)."""
    _require_node(node)
    session = session_of(ctx)
    rt = session.runtime()
    try:
        for line in rt.logs(node, follow=follow, lines=lines):
            # Plain writes: log lines are data, and Rich would reflow or colour them.
            sys.stdout.write(line if line.endswith("\n") else line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:  # Ctrl-C ends `logs -f`; that is how it is meant to stop
        return


def kill(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="A node of the topology, e.g. gateway or the bus.")],
    *,
    output: OutputOption = Output.text,
) -> None:
    """Kill a node at once (SIGKILL, or its pods deleted); the runtime brings it back."""
    _require_node(node)
    session = session_of(ctx)
    rt = session.running_runtime()
    killed = rt.kill(node)
    if output is Output.json:
        print_json(session, {"node": node, "killed": killed})
        return
    session.out.print(f"killed {node} ({killed})")
    session.say(f"watch it come back: [bold]{escape(session.command('status'))}[/bold]")
