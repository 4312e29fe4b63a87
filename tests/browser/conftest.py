"""A real local stack and a real Chromium for the page tests.

The stack is brought up once per session in its own state directory and purged at
the end. Each test gets a fresh browser context whose only reachable host is
127.0.0.1: github.com (where the pages send people) is answered by a stand-in page,
and anything else is aborted, so no test ever leaves the machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Route, ViewportSize, sync_playwright

from kdemo.runtime import get_runtime

from .support import CHROMIUM, LiveStack, Session
from .wallet import FakeWallet, install_wallets

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GITHUB_STAND_IN = "<!doctype html><title>GitHub stand-in</title><h1>GitHub stand-in</h1>"
NO_CHROMIUM = f"Debian chromium is not installed ({CHROMIUM}): apt-get install -y chromium"


def _progress(text: str) -> None:
    print(f"[stack] {text}", file=sys.stderr)


@pytest.fixture(scope="package")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The whole local stack, up once for the page tests, purged afterwards."""
    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)  # no stack for tests that cannot run
    state_dir = tmp_path_factory.mktemp("pages-state")
    runtime = get_runtime(state_dir)
    with pytest.MonkeyPatch.context() as env:
        # the stack must not pick up settings meant for another stack
        for name in [n for n in os.environ if n.startswith("KDEMO_")]:
            env.delenv(name)
        env.setenv("KDEMO_STATE_DIR", str(state_dir))
        env.setenv("KDEMO_LINK_PAIR_GRACE", "5")
        try:
            runtime.up(_progress)
            stack = LiveStack(runtime, state_dir, runtime.public_urls(), runtime.webhook_secret())
            yield stack
            stack.http.close()
        finally:
            runtime.down(purge=True, progress=_progress)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, with a fresh profile; Playwright downloads nothing."""
    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)
    with sync_playwright() as playwright:
        # launch() gives every run its own new temporary profile directory
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def _loopback_only(route: Route) -> None:
    host = urlsplit(route.request.url).hostname or ""
    if host == "github.com":
        route.fulfill(status=200, content_type="text/html", body=GITHUB_STAND_IN)
    elif host in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort("blockedbyclient")


@pytest.fixture
def open_browser(browser: Browser) -> Iterator[Callable[..., Session]]:
    """Factory: a fresh context with these wallets injected; closed after the test."""
    contexts: list[BrowserContext] = []

    def open_with(*wallets: FakeWallet, phone: bool = False) -> Session:
        viewport: ViewportSize = (
            {"width": 390, "height": 844} if phone else {"width": 1024, "height": 900}
        )
        context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
        contexts.append(context)
        context.set_default_timeout(15_000)
        context.route("**/*", _loopback_only)
        trace: list[str] = []
        install_wallets(context, list(wallets), trace)
        page = context.new_page()
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        return Session(context, page, list(wallets), trace, posts)

    yield open_with
    for context in contexts:
        context.close()
