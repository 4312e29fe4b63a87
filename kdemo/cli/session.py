"""What every command shares: the invocation's session (global options, consoles, the
runtime), output helpers and the error boundary."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shlex
import shutil
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup, TyperOption

from kdemo.cli.richhelp import load_rich_utils
from kdemo.errors import KdemoError, StackNotUp

if TYPE_CHECKING:
    from kdemo.runtime.base import Runtime

__all__ = [
    "DEV_ENV",
    "KdemoCommand",
    "KdemoGroup",
    "Output",
    "OutputOption",
    "Session",
    "as_invoked",
    "configure_logging",
    "invocation",
    "print_error",
    "print_json",
    "session_of",
]

DEV_ENV = "KDEMO_VIA_DEV"
"""Set by `./dev` (to how it was called, e.g. `./dev`) for the commands it runs."""


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
class Session:
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

    def enable_debug(self) -> None:
        """--debug, wherever it was given: tracebacks for errors, libraries' warnings shown."""
        self.debug = True
        configure_logging(debug=True)

    def say(self, message: str) -> None:
        """Chatter for people, on stderr (stdout carries only data); `kdemo …` as invoked."""
        self.err.print(as_invoked(message))

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {escape(as_invoked(message))}")

    def command(self, args: str) -> str:
        """`kdemo ARGS` spelled the way this user can run it (see `invocation`)."""
        return f"{invocation()} {args}"


def invocation(env: Mapping[str, str] | None = None, argv0: str | None = None) -> str:
    """How the user runs kdemo, for the hints that name a command.

    Through `./dev` (which sets KDEMO_VIA_DEV) `kdemo` is not on the user's PATH, so the
    hint says `./dev kdemo`; a script called by its path (`.venv/bin/kdemo`, venv not
    activated) is named by that path; otherwise plain `kdemo`.
    """
    env = os.environ if env is None else env
    via = env.get(DEV_ENV, "").strip()
    if via:
        return f"{shlex.quote('./dev' if via in ('1', 'true', 'yes') else via)} kdemo"
    argv0 = sys.argv[0] if argv0 is None else argv0
    if Path(argv0).name == "kdemo" and os.sep in argv0:
        on_path = shutil.which("kdemo", path=env.get("PATH"))
        if on_path is None or Path(on_path).resolve() != Path(argv0).resolve():
            return shlex.quote(argv0)
    return "kdemo"


_COMMAND_IN_TEXT = re.compile(r"(?<=`)kdemo(?=[ `])")


def as_invoked(text: str) -> str:
    """`text` with every backquoted `kdemo …` spelled the way this user can run it."""
    prefix = invocation()
    return text if prefix == "kdemo" else _COMMAND_IN_TEXT.sub(prefix, text)


_NULL_HANDLER = logging.NullHandler()


def configure_logging(*, debug: bool) -> None:
    """Libraries' log records are not output: only --debug shows them (as warnings and up)."""
    root = logging.getLogger()
    if debug:
        root.removeHandler(_NULL_HANDLER)  # a root option may have been parsed first
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    elif not root.handlers:
        # Without any handler Python prints errors through its last-resort handler.
        root.addHandler(_NULL_HANDLER)


def session_of(ctx: typer.Context) -> Session:
    obj = ctx.find_object(Session)
    if obj is None:  # a command invoked without the root callback (only in odd embeddings)
        obj = Session()
        ctx.obj = obj
    return obj


def print_json(session: Session, data: Any) -> None:
    """Machine-readable output: one JSON document on stdout, nothing else there."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def print_error(console: Console, message: str, hint: str = "") -> None:
    """The one error format: a single red line, with the hint in parentheses.

    Commands named in it (`kdemo up`) are spelled the way this user runs kdemo.
    """
    line = f"[bold red]error:[/bold red] {escape(as_invoked(message))}"
    if hint:
        line += f" [dim](hint: {escape(as_invoked(hint))})[/dim]"
    console.print(line, soft_wrap=True)  # one line, however narrow the terminal


def _blank_flag_metavars(params: Sequence[Any]) -> None:
    """A plain flag takes no value: help shows nothing after it instead of `<bool>`."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""


def _debug_from_command(ctx: typer.Context, value: bool) -> None:
    if value:
        session_of(ctx).enable_debug()


@functools.cache
def _debug_option() -> Any:
    """`--debug` as an option of every command, so it works after the command name too.

    Built by Typer from a declaration, like every other option (not by hand).
    """
    probe = typer.Typer()

    @probe.command()
    def _probe(
        debug: Annotated[
            bool,
            typer.Option(
                "--debug",
                help="Show tracebacks for errors.",
                callback=_debug_from_command,
                expose_value=False,
                is_eager=True,
            ),
        ] = False,
    ) -> None:
        """Never run: only its option is used."""

    [option] = [p for p in typer.main.get_command(probe).params if p.name == "debug"]
    return option


def _as_transport_error(exc: Exception) -> KdemoError | None:
    """An HTTP client's connection error as the one-line error users see, else None.

    httpx is imported by the commands that talk HTTP, not at start: an exception can only
    be one of its errors when a command has loaded it already.
    """
    httpx = sys.modules.get("httpx")
    if httpx is None or not isinstance(exc, httpx.TransportError):
        return None
    from kdemo.flow.http import describe_transport_error

    return describe_transport_error(exc)


class KdemoCommand(TyperCommand):
    """Every kdemo command: takes `--debug` itself, and shows plain flags without `<bool>`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not any(p.name == "debug" for p in self.params):
            self.params.append(_debug_option())

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        _blank_flag_metavars(params)
        return params

    def format_help(self, ctx: Any, formatter: Any) -> None:
        load_rich_utils()  # Typer's renderer, without the Rich modules help does not use
        super().format_help(ctx, formatter)


class KdemoGroup(TyperGroup):
    """The command boundary: every failure becomes one red line and an exit code.

    `KdemoError` carries its own exit code; connection failures mean the stack is
    not reachable; anything else is a bug, shown with a traceback only under --debug.
    Typer's own usage errors (exit 2) and exits pass through untouched.
    """

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        _blank_flag_metavars(params)
        return params

    def format_help(self, ctx: Any, formatter: Any) -> None:
        load_rich_utils()  # Typer's renderer, without the Rich modules help does not use
        super().format_help(ctx, formatter)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except KdemoError as exc:
            self._fail(ctx, exc.message, exc.hint, exc.exit_code)
        except Exception as exc:  # the boundary: a bug still ends in one line, not a dump
            transport = _as_transport_error(exc)
            if transport is not None:
                self._fail(ctx, transport.message, transport.hint, transport.exit_code)
            self._fail(
                ctx,
                f"unexpected {type(exc).__name__}: {exc}",
                "rerun with --debug for the traceback, and please report it",
                1,
            )
        return None

    @staticmethod
    def _fail(ctx: typer.Context, message: str, hint: str, code: int) -> None:
        obj = ctx.find_object(Session) or Session()
        if obj.debug:
            obj.err.print(traceback.format_exc(), markup=False)
        print_error(obj.err, message, hint)
        raise typer.Exit(code)
