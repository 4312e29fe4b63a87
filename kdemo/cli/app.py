"""What every command shares: the application object, output helpers and the error boundary."""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from kdemo.errors import KdemoError, StackNotUp
from kdemo.flow.http import describe_transport_error

if TYPE_CHECKING:
    from kdemo.runtime.base import Runtime

__all__ = [
    "App",
    "KdemoGroup",
    "Output",
    "OutputOption",
    "app_of",
    "print_error",
    "print_json",
]


class Output(StrEnum):
    text = "text"
    json = "json"


OutputOption = Annotated[
    Output,
    typer.Option(
        "--output", "-o", help="[bold]text[/bold] for people, [bold]json[/bold] for scripts."
    ),
]


@dataclass
class App:
    """One per invocation, on `ctx.obj`: global options and lazily built collaborators."""

    state_dir: Path | None = None
    debug: bool = False
    out: Console = field(default_factory=lambda: Console(highlight=False, soft_wrap=True))
    err: Console = field(
        default_factory=lambda: Console(stderr=True, highlight=False, soft_wrap=True)
    )
    _runtime: Runtime | None = field(default=None, repr=False)

    def runtime(self) -> Runtime:
        """The stack's runtime, found through the state directory."""
        if self._runtime is None:
            from kdemo.runtime import get_runtime  # imported late: most errors need no runtime

            self._runtime = get_runtime(self.state_dir)
        return self._runtime

    def running_runtime(self) -> Runtime:
        """The runtime, for commands that need the stack up (a clear error otherwise)."""
        rt = self.runtime()
        if not rt.is_up():
            raise StackNotUp("the stack is not up", "run `kdemo up` first")
        return rt

    def say(self, message: str) -> None:
        """Chatter for people, on stderr (stdout carries only data)."""
        self.err.print(message)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {escape(message)}")


def app_of(ctx: typer.Context) -> App:
    obj = ctx.find_object(App)
    if obj is None:  # a command invoked without the root callback (only in odd embeddings)
        obj = App()
        ctx.obj = obj
    return obj


def print_json(app: App, data: Any) -> None:
    """Machine-readable output: one JSON document on stdout, nothing else there."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def print_error(console: Console, message: str, hint: str = "") -> None:
    """The one error format: a single red line, with the hint in parentheses."""
    line = f"[bold red]error:[/bold red] {escape(message)}"
    if hint:
        line += f" [dim](hint: {escape(hint)})[/dim]"
    console.print(line, soft_wrap=True)  # one line, however narrow the terminal


class KdemoGroup(TyperGroup):
    """The command boundary: every failure becomes one red line and an exit code.

    `KdemoError` carries its own exit code; connection failures mean the stack is
    not reachable; anything else is a bug, shown with a traceback only under --debug.
    Typer's own usage errors (exit 2) and exits pass through untouched.
    """

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except KdemoError as exc:
            self._fail(ctx, exc.message, exc.hint, exc.exit_code)
        except httpx.TransportError as exc:
            err = describe_transport_error(exc)
            self._fail(ctx, err.message, err.hint, err.exit_code)
        except Exception as exc:  # the boundary: a bug still ends in one line, not a dump
            self._fail(
                ctx,
                f"unexpected {type(exc).__name__}: {exc}",
                "rerun with --debug for the traceback, and please report it",
                1,
            )
        return None

    @staticmethod
    def _fail(ctx: typer.Context, message: str, hint: str, code: int) -> None:
        obj = ctx.find_object(App) or App()
        if obj.debug:
            obj.err.print(traceback.format_exc(), markup=False)
        print_error(obj.err, message, hint)
        raise typer.Exit(code)
