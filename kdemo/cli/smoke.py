"""`kdemo smoke`: the whole flow once against the running stack, step by step."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from kdemo.cli.session import Output, OutputOption, print_json, session_of
from kdemo.errors import KdemoError

if TYPE_CHECKING:
    from kdemo.flow.smoke import StepResult

__all__ = ["smoke"]

_MARK = {"passed": "[green]✓[/green]", "failed": "[red]✗[/red]", "skipped": "[dim]-[/dim]"}


def smoke(
    ctx: typer.Context,
    *,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", dir_okay=False, help="Also write a JUnit XML report here."),
    ] = None,
    output: OutputOption = Output.text,
) -> None:
    """Run the flow end to end (fresh wallet, unique issue); fail at the first broken step."""
    from kdemo.flow.smoke import junit_xml, run_smoke  # late: loads the HTTP client and wallet

    session = session_of(ctx)
    rt = session.runtime()  # not running_runtime: "stack ready" is the first step it reports

    def show(step: StepResult) -> None:
        detail = f" [dim]{escape(step.detail)}[/dim]" if step.detail else ""
        session.err.print(f"{_MARK[step.outcome]} {step.name} ({step.seconds:.2f} s){detail}")

    report = run_smoke(rt, on_step=show)
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(junit_xml(report), encoding="utf-8")
        session.say(f"[dim]JUnit report: {escape(str(junit))}[/dim]")
    if output is Output.json:
        print_json(session, report.to_json())
    failed = report.failed_step
    if failed is not None:
        raise KdemoError(
            f"smoke failed at step {failed.name!r}: {failed.detail}",
            failed.hint or "see `kdemo logs <service>` and `kdemo dlq list`",
        )
    if output is Output.text:
        session.out.print(f"smoke passed: {len(report.steps)} steps in {report.seconds:.2f} s")
