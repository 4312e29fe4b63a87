"""What the page tests share: the running stack, a browser session, screenshots."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import BrowserContext, Page

from kdemo.flow.webhook import WebhookResult, simulate_comment
from kdemo.runtime.base import Runtime

from .wallet import FakeWallet

__all__ = ["CHROMIUM", "Intent", "LiveStack", "Session", "shot"]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = os.environ.get("KDEMO_PAGE_SCREENSHOTS", "")
"""A directory to save page screenshots into (scripts/screenshots_pages.py sets it)."""


@dataclass
class LiveStack:
    """The running stack's public URLs and a way to make bounty comments on it."""

    runtime: Runtime
    state_dir: Path
    urls: dict[str, str]
    secret: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))

    @property
    def frontend(self) -> str:
        return self.urls["frontend"]

    @property
    def gateway(self) -> str:
        return self.urls["gateway"]

    def new_intent(self, body: str = "$USDC:50$", *, login: str = "octo-funder") -> Intent:
        """Comment `body` by `login` on a fresh issue; the intent github-app recorded."""
        repo = f"pages-{uuid.uuid4().hex[:10]}/demo"
        result = simulate_comment(
            self.http, self.urls["github-app"], self.secret, body, repo=repo, number=7, login=login
        )
        assert result.intents, result.to_json()
        intent = result.intents[0]
        url = str(intent["signing_url"])
        return Intent(
            str(intent["intent_id"]),
            url,
            parse_qs(urlsplit(url).query)["t"][0],
            f"https://github.com/{repo}/issues/7",
        )

    def link_comment(self, code: str, *, login: str) -> WebhookResult:
        """Comment `$link:<code>$` as `login`, as GitHub would deliver it."""
        repo = f"pages-{uuid.uuid4().hex[:10]}/demo"
        return simulate_comment(
            self.http,
            self.urls["github-app"],
            self.secret,
            f"$link:{code}$",
            repo=repo,
            number=1,
            login=login,
        )

    def bounty(self, intent_id: str) -> dict[str, Any] | None:
        response = self.http.get(f"{self.gateway}/api/bounties/{intent_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        bounty: dict[str, Any] = response.json()["bounty"]
        return bounty

    def wait_for_bounty(
        self, intent_id: str, until: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        """gateway's bounty once `until` holds for it; fails naming `what` after 30 s."""
        deadline = time.monotonic() + 30.0
        bounty = None
        while time.monotonic() < deadline:
            bounty = self.bounty(intent_id)
            if bounty is not None and until(bounty):
                return bounty
            time.sleep(0.2)  # polling interval of a bounded wait, not synchronisation
        raise AssertionError(f"gateway never showed {what} for {intent_id}: {bounty}")


@dataclass(frozen=True)
class Intent:
    """A recorded intent: its id, signing URL and token, and the issue it belongs to."""

    intent_id: str
    url: str
    token: str
    issue_url: str


@dataclass
class Session:
    """A browser context with the test's wallets, and what its pages reported."""

    context: BrowserContext
    page: Page
    wallets: list[FakeWallet]
    trace: list[str]
    posts: list[str]
    """URLs of every POST the pages made."""


def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot as docs/images/pages/<name>.png when asked to."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
