"""Where the local stack keeps its files: the supervisor's record, data and logs.

Writing them is `kdemo.runtime.statedir`'s (atomic); the stack record is
`kdemo.runtime.stackfile`'s.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from kdemo.errors import UsageError

__all__ = ["DATA_DIR_ENV", "SUPERVISOR_FILE", "data_dir", "log_path", "stack_id"]

DATA_DIR_ENV = "KDEMO_DATA_DIR"
SUPERVISOR_FILE = "supervisor.json"


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
