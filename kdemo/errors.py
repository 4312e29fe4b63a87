"""The one exception family of kdemo: a message, a hint and an exit code.

The CLI maps every `KdemoError` to a single red line (plus the hint) and exits
with `exit_code`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "KdemoError",
    "NotReady",
    "PortInUse",
    "SecretMismatch",
    "StackNotUp",
    "UsageError",
]


class KdemoError(Exception):
    """A failure the user can act on: what went wrong, and what to do about it."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(KdemoError):
    """The command line or an environment variable was wrong (exit code 2)."""

    exit_code = 2


class ConfigError(KdemoError):
    """A configuration value (environment variable, state file) is invalid."""


class StackNotUp(KdemoError):
    """The command needs a running stack and there is none in the state directory."""

    def __init__(
        self,
        message: str = "the stack is not up",
        hint: str = "run `kdemo up` first",
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message, hint, exit_code)


class PortInUse(KdemoError):
    """A port chosen for a node is held by another process."""

    def __init__(self, port: int, node: str, variable: str) -> None:
        super().__init__(
            f"port {port} for {node} is already in use by another process",
            f"stop that process, or choose another port with {variable}=<port>",
        )
        self.port = port
        self.node = node
        self.variable = variable


class SecretMismatch(KdemoError):
    """A secret given in the environment differs from the one the stack keeps."""


class NotReady(KdemoError):
    """A node did not become ready in time."""

    def __init__(self, node: str, message: str, hint: str) -> None:
        super().__init__(message, hint)
        self.node = node
