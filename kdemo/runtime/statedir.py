"""The state directory of a stack, and how its JSON files are written and read.

Shared by every runtime. Every file is written atomically (temporary file + rename) so a
command that is killed half-way never leaves a truncated `stack.json` behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "STATE_DIR_ENV",
    "atomic_write",
    "default_state_dir",
    "read_json",
    "user_cache_dir",
    "write_json",
]

STATE_DIR_ENV = "KDEMO_STATE_DIR"


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """`KDEMO_STATE_DIR`, else `$XDG_STATE_HOME/kdemo`, else `~/.local/state/kdemo`."""
    env = os.environ if env is None else env
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV]).expanduser().absolute()
    xdg = env.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg).expanduser().absolute() / "kdemo"
    return Path.home() / ".local" / "state" / "kdemo"


def user_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """kdemo's cache, shared by every stack: `$XDG_CACHE_HOME/kdemo`, else `~/.cache/kdemo`."""
    env = os.environ if env is None else env
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base.expanduser().absolute() / "kdemo"


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
    """The JSON object in `path`, or None when the file does not exist; a file that cannot
    be read or is not a JSON object is a `ConfigError` naming it."""
    from kdemo.errors import ConfigError  # late: keeps this module free of CLI concerns

    fix = f"restore {path.name} or delete it; `kdemo down --purge` starts the stack over"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", fix) from exc
    except ValueError as exc:  # not JSON, or not UTF-8
        raise ConfigError(f"{path} is not valid JSON: {exc}", fix) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object", fix)
    return data
