"""The `kdemo` command: one Typer application, one module per command group.

Every command finds the stack through the state directory and talks to it only
through the Runtime interface and the services' public URLs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kdemo.cli import bounties, chaos, dashboard, doctor, flow, smoke, stack
from kdemo.cli.dlq import dlq_app
from kdemo.cli.session import KdemoCommand, KdemoGroup, Session, configure_logging, print_error

__all__ = ["app", "main"]

app = typer.Typer(
    name="kdemo",
    cls=KdemoGroup,
    help=(
        "Run a small microservice stack and follow one bounty through it: "
        "a GitHub comment, a wallet signature, events on a bus, rows in databases."
    ),
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    # Errors are mapped to one line by KdemoGroup; Typer's pretty dumps would bypass --debug.
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    *,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            envvar="KDEMO_STATE_DIR",
            show_envvar=True,
            file_okay=False,
            help="Where the stack keeps stack.json, secrets and data. "
            "Default: $XDG_STATE_HOME/kdemo or ~/.local/state/kdemo.",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    ctx.obj = Session(state_dir=state_dir, debug=debug)
    configure_logging(debug=debug)


# KdemoCommand: each command also takes --debug after its name, and help shows plain flags
# as flags.
app.command("up", cls=KdemoCommand)(stack.up)
app.command("down", cls=KdemoCommand)(stack.down)
app.command("status", cls=KdemoCommand)(stack.status)
app.command("logs", cls=KdemoCommand)(stack.logs)
app.command("kill", cls=KdemoCommand)(stack.kill)
app.command("doctor", cls=KdemoCommand)(doctor.doctor)
app.command("simulate-comment", cls=KdemoCommand)(flow.simulate_comment_command)
app.command("sign", cls=KdemoCommand)(flow.sign_command)
app.command("link-identity", cls=KdemoCommand)(flow.link_identity_command)
app.command("bounties", cls=KdemoCommand)(bounties.bounties)
app.add_typer(dlq_app, name="dlq")
app.command("smoke", cls=KdemoCommand)(smoke.smoke)
app.command("chaos", cls=KdemoCommand)(chaos.chaos)
app.command("dashboard", cls=KdemoCommand)(dashboard.dashboard)


def main() -> None:
    """Console-script entry point (`kdemo`).

    Runs Typer in non-standalone mode so a usage error (exit 2) is one red line with a
    hint, like every other error, instead of a usage block and a boxed panel.
    """
    try:
        result = app(prog_name="kdemo", standalone_mode=False)
    except typer.Abort:
        print_error(Console(stderr=True), "aborted")
        raise SystemExit(1) from None
    except Exception as exc:  # Click's usage errors carry exit_code and format_message
        code, describe = getattr(exc, "exit_code", None), getattr(exc, "format_message", None)
        if not isinstance(code, int) or describe is None:
            raise
        if not str(describe()):  # `kdemo` alone: the help was shown, nothing else to say
            raise SystemExit(code) from None
        context = getattr(exc, "ctx", None)
        command = getattr(context, "command_path", "kdemo")
        print_error(Console(stderr=True), str(describe()), f"see `{command} --help`")
        raise SystemExit(code) from None
    raise SystemExit(result if isinstance(result, int) else 0)
