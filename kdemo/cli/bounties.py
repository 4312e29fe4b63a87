"""`kdemo bounties`: the ledger as gateway serves it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from kdemo.cli.session import Output, OutputOption, print_json, session_of

__all__ = ["BountyState", "bounties"]


class BountyState(StrEnum):
    pending = "pending"
    signed = "signed"


def bounties(
    ctx: typer.Context,
    *,
    repo: Annotated[str | None, typer.Option("--repo", help="Only this OWNER/REPO.")] = None,
    state: Annotated[BountyState | None, typer.Option("--state", help="Only this state.")] = None,
    output: OutputOption = Output.text,
) -> None:
    """List the bounties in the ledger, with their funders and calc's totals."""
    if repo is not None:
        from kdemo.flow.payloads import parse_repo  # late: `kdemo --help` does not need it

        parse_repo(repo)
    from kdemo.flow.bounties import fetch_bounties  # late: loads the HTTP client
    from kdemo.flow.http import new_client

    session = session_of(ctx)
    gateway = session.running_runtime().public_urls()["gateway"]
    with new_client() as client:
        listing = fetch_bounties(client, gateway, repo=repo, state=state.value if state else None)
    for warning in listing.warnings:
        session.warn(f"gateway: {warning}")
    if output is Output.json:
        print_json(session, listing.to_json())
        return
    if not listing.bounties:
        session.say(
            "no bounties yet: try `kdemo simulate-comment '$USDC:50$' --repo o/r --number 1`"
        )
        return
    table = Table(title="bounties", title_justify="left")
    for column in ("repo", "number", "amount", "state", "funder", "verified"):
        table.add_column(
            column,
            justify="right" if column in ("number", "amount") else "left",
            # Wrapped, never cut with an ellipsis: on a narrow terminal Rich narrows the
            # widest columns (repo, funder) first.
            overflow="fold",
        )
    for b in listing.bounties:
        funder: dict[str, Any] = b.get("funder") or {}
        table.add_row(
            escape(str(b.get("repository") or b.get("repo") or "")),
            str(b.get("number", "")),
            escape(f"{b.get('amount', '')} {b.get('denomination', '')}".strip()),
            "[green]signed[/green]" if b.get("state") == "signed" else escape(str(b.get("state"))),
            _funder_cell(funder),
            "[green]yes[/green]" if funder.get("verified") else ("no" if funder else "-"),
        )
    session.out.print(table)
    if listing.totals:
        session.out.print(_totals_table(listing.totals))


def _funder_cell(funder: dict[str, Any]) -> str:
    """The funder's GitHub login; its address while identity does not know it; "-" if unsigned."""
    if not funder:
        return "-"
    if funder.get("login"):
        return escape(str(funder["login"]))
    address = str(funder.get("address") or "")
    return f"unknown ({escape(address[:6])}…{escape(address[-4:])})" if address else "unknown"


def _totals_table(totals: Any) -> Table:
    """calc's totals, whether gateway sends a list of rows or a map by denomination."""
    rows: list[dict[str, Any]]
    if isinstance(totals, dict):
        rows = [
            {"denomination": k, **(v if isinstance(v, dict) else {"total": v})}
            for k, v in totals.items()
        ]
    else:
        rows = [r for r in totals if isinstance(r, dict)] if isinstance(totals, list) else []
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    table = Table(title="totals", title_justify="left")
    for column in columns:
        table.add_column(
            column, justify="left" if column == "denomination" else "right", overflow="fold"
        )
    for row in rows:
        table.add_row(*(escape(str(row.get(c, ""))) for c in columns))
    return table
