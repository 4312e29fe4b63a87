"""Regenerate docs/images/pages/*.png: the browser tests save a screenshot of each page state.

    uv run python scripts/screenshots_pages.py [pytest args...]

Needs Debian's chromium (/usr/bin/chromium); brings a local stack up in its own
state directory and purges it afterwards, like the tests do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images" / "pages"


def main(argv: list[str]) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDEMO_")}
    env["KDEMO_PAGE_SCREENSHOTS"] = str(OUT)
    command = [sys.executable, "-m", "pytest", "-q", "-m", "stack", "tests/browser", *argv]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
