"""`kdemo dlq list|replay`: events that could never be handled, kept on the bus."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from kdemo.cli.session import KdemoCommand, KdemoGroup, Output, OutputOption, print_json, session_of
from kdemo.errors import KdemoError

__all__ = ["dlq_app"]

dlq_app = typer.Typer(
    cls=KdemoGroup,
    help="Dead-lettered events: list them, or replay them once the cause is fixed.",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
)


@dlq_app.command("list", cls=KdemoCommand)
def dlq_list(ctx: typer.Context, *, output: OutputOption = Output.text) -> None:
    """Dead letters still on the bus, oldest first."""
    session = session_of(ctx)
    letters = session.running_runtime().dlq_list()
    if output is Output.json:
        print_json(session, [d.to_json() for d in letters])
        return
    if not letters:
        session.say("no dead letters")
        return
    table = Table(title=f"{len(letters)} dead letter(s)", title_justify="left")
    for column in ("seq", "event", "consumer", "reason", "when"):
        # event ids and reasons are long: wrapped, never cut with an ellipsis
        table.add_column(column, overflow="fold")
    for d in letters:
        table.add_row(
            str(d.seq),
            escape(d.event_id or d.original_subject),
            escape(d.consumer),
            escape(d.reason),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.time)),
        )
    session.out.print(table)


@dlq_app.command("replay", cls=KdemoCommand)
def dlq_replay(
    ctx: typer.Context,
    seqs: Annotated[
        list[int] | None,
        typer.Argument(help="Sequence numbers from `kdemo dlq list`; all when none are given."),
    ] = None,
    *,
    output: OutputOption = Output.text,
) -> None:
    """Republish dead letters to their original subjects."""
    session = session_of(ctx)
    rt = session.running_runtime()
    if seqs:
        there = [d.seq for d in rt.dlq_list()]
        unknown = sorted(set(seqs) - set(there))
        if unknown:
            raise KdemoError(
                f"no dead letter with sequence {_listed(unknown)}; nothing was replayed",
                f"dead letters now: {_listed(there)}" if there else "there are no dead letters",
            )
    count = rt.dlq_replay(list(seqs) if seqs else None)
    if output is Output.json:
        print_json(session, {"replayed": count})
        return
    session.out.print(f"replayed {count} dead letter(s)")


def _listed(seqs: list[int], most: int = 20) -> str:
    shown = ", ".join(str(s) for s in seqs[:most])
    return shown + (f" and {len(seqs) - most} more" if len(seqs) > most else "")
