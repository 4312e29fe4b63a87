"""`kdemo chaos`: flows under faults, then an audit of what the stack kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from kdemo.chaos import FAULTS
from kdemo.cli.session import Output, OutputOption, Session, print_json, session_of
from kdemo.errors import KdemoError, UsageError

if TYPE_CHECKING:
    from kdemo.chaos.faults import FaultRecord
    from kdemo.chaos.run import ChaosReport

__all__ = ["chaos"]


def chaos(
    ctx: typer.Context,
    *,
    flows: Annotated[
        int, typer.Option("--flows", help="Flows to drive (comment → sign → link).")
    ] = 100,
    rate: Annotated[float, typer.Option("--rate", help="Flows started per second.")] = 5.0,
    faults: Annotated[
        str,
        typer.Option(
            "--faults",
            help=f"Comma-separated faults, each on every node: {', '.join(FAULTS)}; '' for none.",
        ),
    ] = ",".join(FAULTS),
    seed: Annotated[int, typer.Option("--seed", help="Makes the fault plan reproducible.")] = 1,
    every: Annotated[
        float, typer.Option("--every", help="Mean seconds between faults (after recovery).")
    ] = 4.0,
    stop_for: Annotated[
        float | None,
        typer.Option(
            "--stop-for",
            help="Seconds a stopped node stays frozen (default: just past the bus's "
            "redelivery timeout: the JetStream ack wait on NATS, the consumer groups' session "
            "timeout on Kafka).",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = Output.text,
) -> None:
    """Drive flows while killing, freezing and restarting nodes; audit the ledger and the bus.

    Runs on the running stack, on its bus (NATS or Kafka): the faults hit that bus's node.

    Exit 1 when the audit finds anything lost, doubled or recorded though refused,
    a dead letter, or a flow that did not complete.
    """
    session = session_of(ctx)
    if flows < 1:
        raise UsageError(f"--flows {flows}: must be at least 1", "e.g. --flows 100")
    if rate <= 0:
        raise UsageError(f"--rate {rate:g}: must be positive", "flows started per second, e.g. 5")
    if every <= 0 or (stop_for is not None and stop_for <= 0):
        raise UsageError("--every and --stop-for must be positive seconds", "e.g. --every 4")
    from kdemo.chaos.faults import parse_faults
    from kdemo.chaos.run import ChaosOptions, run_chaos  # late: loads the wallet and bus client

    options = ChaosOptions(
        flows=flows,
        rate=rate,
        faults=parse_faults(faults),
        seed=seed,
        every_s=every,
        stop_s=stop_for,
    )
    rt = session.running_runtime()

    def fault_line(record: FaultRecord) -> None:
        recovered = (
            f"whole again in {record.recovery_s:.1f} s"
            if record.recovery_s is not None
            else escape(record.error or "not whole again")
        )
        session.say(f"[dim]{record.at_s:7.1f} s[/dim] {record.fault} {record.node}: {recovered}")

    report = run_chaos(
        rt, options, progress=lambda m: session.say(f"[dim]{escape(m)}…[/dim]"), on_fault=fault_line
    )
    if output is Output.json:
        print_json(session, report.to_json())
    else:
        _print_report(session, report)
    if not report.ok:
        data = report.to_json()
        raise KdemoError(
            f"chaos found {data['lost']} lost, {data['doubled']} doubled, "
            f"{data['recorded_refused']} recorded though refused, "
            f"{data['dead_lettered']} dead-lettered, {len(report.problems)} other problems",
            "see the report above; `kdemo logs <node>` and `kdemo dlq list` tell more",
        )


def _print_report(session: Session, report: ChaosReport) -> None:
    data = report.to_json()
    out = session.out
    out.print(
        f"[bold]{data['flows']} flows[/bold] at {report.options.rate:g}/s in "
        f"{report.seconds:.1f} s (seed {report.options.seed}, bus {report.bus}, "
        f"repository {report.repo}); "
        f"settled {report.settle_s:.1f} s after the last flow"
    )
    outcomes = data["outcomes"]
    out.print(
        "comments: "
        + ", ".join(f"{n} {k}" for k, n in outcomes["comment"].items())
        + "; signatures: "
        + ", ".join(f"{n} {k}" for k, n in outcomes["signed"].items())
        + "; links: "
        + ", ".join(f"{n} {k}" for k, n in outcomes["link"].items())
    )
    faults = data["faults"]
    out.print(
        f"faults injected: {faults['injected']} ({', '.join(report.options.faults) or 'none'}); "
        f"recovery p50 {faults['recovery_s']['p50']} s, max {faults['recovery_s']['max']} s; "
        f"each stop {faults['stop_s']} s"
    )
    if data["copies"]:
        copies = ", ".join(f"{n} {event}" for event, n in data["copies"].items())
        out.print(f"copies kept by the bus, consumed once: {copies}")
    for label, key in (
        ("lost", "lost"),
        ("doubled", "doubled"),
        ("recorded though refused", "recorded_refused"),
        ("dead-lettered", "dead_lettered"),
    ):
        n = data[key]
        out.print(f"{label}: " + ("[green]0[/green]" if n == 0 else f"[red]{n}[/red]"))
    table = Table("stage", "count", "p50 ms", "p99 ms", box=None, pad_edge=False)
    for stage, figures in data["stages"].items():
        table.add_row(stage, str(figures["count"]), str(figures["p50_ms"]), str(figures["p99_ms"]))
    out.print(table)
    for finding in report.audit.findings[:20]:
        out.print(
            f"[red]{finding.kind}[/red] {finding.what} {escape(finding.key)} "
            f"(found {finding.found})"
        )
    for problem in report.problems:
        out.print(f"[yellow]problem:[/yellow] {escape(problem)}")
