"""Where the local stack keeps its files, and how they are written.

Every file is written atomically (temporary file + rename) so a command that
is killed half-way never leaves a truncated `stack.json` behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kdemo.errors import UsageError

__all__ = [
    "DATA_DIR_ENV",
    "STACK_FILE",
    "STATE_DIR_ENV",
    "SUPERVISOR_FILE",
    "atomic_write",
    "data_dir",
    "default_state_dir",
    "log_path",
    "read_json",
    "stack_id",
    "write_json",
]

STATE_DIR_ENV = "KDEMO_STATE_DIR"
DATA_DIR_ENV = "KDEMO_DATA_DIR"
STACK_FILE = "stack.json"
SUPERVISOR_FILE = "supervisor.json"


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """`KDEMO_STATE_DIR`, else `$XDG_STATE_HOME/kdemo`, else `~/.local/state/kdemo`."""
    env = os.environ if env is None else env
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV]).expanduser().absolute()
    xdg = env.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg).expanduser().absolute() / "kdemo"
    return Path.home() / ".local" / "state" / "kdemo"


def stack_id(state_dir: Path) -> str:
    """A short stable id of the stack, derived from its state directory."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]


def data_dir(
    state_dir: Path,
    node: str,
    kept: str | None,
    default: Path,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Where the stack keeps `node`'s data (`postgres`, `nats`).

    The directory recorded in stack.json (`kept`) wins; at the first `up` it is
    `$KDEMO_DATA_DIR/<node>-<stack id>` when that is set, else `default`.
    """
    env = os.environ if env is None else env
    given = env.get(DATA_DIR_ENV)
    wanted = Path(given).absolute() / f"{node}-{stack_id(state_dir)}" if given else None
    if kept:
        if wanted is not None and Path(kept) != wanted:
            raise UsageError(
                f"{DATA_DIR_ENV} points elsewhere than this stack's {node} data ({kept})",
                f"unset {DATA_DIR_ENV} to keep that data, or run `kdemo down --purge` first",
            )
        return Path(kept)
    return wanted or default


def log_path(state_dir: Path, node: str) -> Path:
    return state_dir / "logs" / f"{node}.log"


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data`; the file never exists with other permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Mapping[str, Any], mode: int = 0o644) -> None:
    atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), mode)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when the file does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data
