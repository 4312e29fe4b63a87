"""`kdemo smoke`: the whole flow once against the running stack, step by step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from kdemo.cli.app import Output, OutputOption, app_of, print_json
from kdemo.errors import KdemoError
from kdemo.flow.smoke import StepResult, junit_xml, run_smoke

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
    app = app_of(ctx)
    rt = app.runtime()  # not running_runtime: "stack ready" is the first step it reports

    def show(step: StepResult) -> None:
        detail = f" [dim]{escape(step.detail)}[/dim]" if step.detail else ""
        app.err.print(f"{_MARK[step.outcome]} {step.name} ({step.seconds:.2f} s){detail}")

    report = run_smoke(rt, on_step=show)
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(junit_xml(report), encoding="utf-8")
        app.say(f"[dim]JUnit report: {escape(str(junit))}[/dim]")
    if output is Output.json:
        print_json(app, report.to_json())
    failed = report.failed_step
    if failed is not None:
        raise KdemoError(
            f"smoke failed at step {failed.name!r}: {failed.detail}",
            failed.hint or "see `kdemo logs <service>` and `kdemo dlq list`",
        )
    if output is Output.text:
        app.out.print(f"smoke passed: {len(report.steps)} steps in {report.seconds:.2f} s")
