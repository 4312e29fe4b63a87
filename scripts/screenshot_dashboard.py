"""Take the README's screenshot of the dashboard from a real local stack.

    uv run python scripts/screenshot_dashboard.py

Brings a stack up in its own state directory, runs the flow twice (one bounty
signed and attributed, one only requested), opens the dashboard at 120x35, saves
`docs/images/dashboard.svg` (and `.png` when `rsvg-convert` is installed), and
brings the stack down again.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx

from kdemo.flow.link import link_identity
from kdemo.flow.wallet import Wallet, sign_intent
from kdemo.flow.webhook import simulate_comment
from kdemo.runtime import get_runtime
from kdemo.runtime.base import Runtime
from kdemo.tui import DashboardApp

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"


def run_flow(runtime: Runtime) -> None:
    urls = runtime.public_urls()
    secret = runtime.webhook_secret()
    wallet = Wallet.fresh()
    with httpx.Client(timeout=10) as client:
        signed = simulate_comment(
            client,
            urls["github-app"],
            secret,
            "Happy to fund this: $USDC:50$",
            repo="acme/widgets",
            number=42,
            login="octocat",
        )
        sign_intent(client, signed.signing_urls[0], wallet)
        link_identity(
            client,
            frontend_url=urls["frontend"],
            github_app_url=urls["github-app"],
            webhook_secret=secret,
            wallet=wallet,
            login="octocat",
            repo="acme/widgets",
            number=42,
        )
        simulate_comment(
            client,
            urls["github-app"],
            secret,
            "Adding to the pot: $DAI:120$",
            repo="acme/widgets",
            number=7,
            login="hubot-fan",
        )


async def screenshot(runtime: Runtime) -> Path:
    app = DashboardApp(runtime)
    async with app.run_test(size=(120, 35)) as pilot:
        for _ in range(100):  # status, the bus's history and a scrape: a few seconds
            await pilot.pause(0.1)
            if app.rows and all(row.ready for row in app.rows.values()):
                break
        await pilot.pause(3.0)
        return Path(app.save_screenshot(filename="dashboard.svg", path=str(IMAGES)))


def main() -> int:
    state_dir = Path(tempfile.mkdtemp(prefix="kdemo-screenshot-"))
    runtime = get_runtime(state_dir)
    try:
        runtime.up(lambda _: None)
        run_flow(runtime)
        svg = asyncio.run(screenshot(runtime))
        print(f"wrote {svg.relative_to(ROOT)}")
        if shutil.which("rsvg-convert"):
            png = svg.with_suffix(".png")
            subprocess.run(["rsvg-convert", str(svg), "-o", str(png)], check=True)
            print(f"wrote {png.relative_to(ROOT)}")
    finally:
        runtime.down(purge=True)
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
