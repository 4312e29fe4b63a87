"""The pages are usable without a mouse, readable (contrast) and fit a phone screen."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .support import LiveStack, Session, shot
from .wallet import FakeWallet

pytestmark = pytest.mark.stack

OpenBrowser = Callable[..., Session]

# WCAG 2 contrast of every visible text node's colour against the first opaque background behind it
CONTRAST_JS = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let n = el; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const worst = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const el = t.parentElement;
    if (!t.textContent.trim() || !el.checkVisibility() || el.closest(".skip")) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) worst.push(`${ratio.toFixed(2)}: ${t.textContent.trim().slice(0, 40)}`);
  }
  return worst;
}"""

UNLABELLED_JS = """() => [...document.querySelectorAll("input, select, button, a[href]")]
  .filter((el) => el.checkVisibility())
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
    && !el.textContent.trim())
  .map((el) => el.outerHTML.slice(0, 80))"""


def focus_order(page: Page, steps: int) -> list[str]:
    order = []
    for _ in range(steps):
        page.keyboard.press("Tab")
        order.append(
            page.evaluate(
                "() => document.activeElement.id || document.activeElement.textContent.trim()"
            )
        )
    return order


def test_the_link_page_is_reached_in_reading_order_by_keyboard(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """Tab goes skip link → site links → login → connect; Enter on Connect shows the account."""
    page = open_browser(FakeWallet.fresh("Test Wallet")).page
    page.goto(f"{live_stack.frontend}/link")
    expect(page.locator("#state")).to_have_attribute("data-state", "ready")
    assert focus_order(page, 5) == [
        "Skip to content",
        "kdemo",
        "Link wallet to GitHub",
        "login",
        "connect-button",
    ]
    page.keyboard.press("Enter")
    expect(page.locator("#state")).to_have_attribute("data-state", "connected")
    assert focus_order(page, 2) == ["account-select", "prepare-button"]


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_pages_have_labels_contrast_and_fit_the_screen(
    live_stack: LiveStack, open_browser: OpenBrowser, phone: bool
) -> None:
    """Every control is named, all text has 4.5:1 contrast, and nothing scrolls sideways."""
    intent = live_stack.new_intent("$USDC:1000000000000000000$")
    page = open_browser(FakeWallet.fresh("Test Wallet"), phone=phone).page
    page.goto(intent.url)
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.locator("#state")).to_have_attribute("data-state", "ready")
    if phone:
        shot(page, "sign-ready-phone")
    for url in (intent.url, f"{live_stack.frontend}/link"):
        if url != intent.url:
            page.goto(url)
            page.get_by_label("GitHub login").fill("octo-a11y")
            page.get_by_role("button", name="Connect wallet").click()
            page.get_by_role("button", name="Show the message").click()
            expect(page.locator("#state")).to_have_attribute("data-state", "message")
        assert page.evaluate(UNLABELLED_JS) == []
        assert page.evaluate(CONTRAST_JS) == []
        # a phone zooms out to fit wide content, so compare with the device width, not innerWidth
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        screen = page.viewport_size
        assert screen is not None
        assert wide <= screen["width"], f"{url}: {wide} px wide on a {screen['width']} px screen"
