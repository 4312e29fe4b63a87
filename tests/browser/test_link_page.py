"""The link page in Chromium: SIWE in the page, the code commented on GitHub, identity's verdict."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from services.common import eip712

from .support import LiveStack, Session, shot
from .wallet import FakeWallet

pytestmark = pytest.mark.stack

OpenBrowser = Callable[..., Session]
CODE = re.compile(r"\$link:([a-z]+)\$")


def fresh_login() -> str:
    return f"octo-{uuid.uuid4().hex[:8]}"


def show_message(page: Page, stack: LiveStack, login: str) -> None:
    page.goto(f"{stack.frontend}/link")
    page.get_by_label("GitHub login").fill(login)
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.locator("#state")).to_have_attribute("data-state", "connected")
    page.get_by_role("button", name="Show the message").click()
    expect(page.locator("#state")).to_have_attribute("data-state", "message")


def test_linking_end_to_end_shows_the_message_the_code_and_the_verdict(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """SIWE shown then signed → code → `$link:<code>$` commented → linked, and gateway knows."""
    login = fresh_login()
    wallet = FakeWallet.fresh("Test Wallet")
    page = open_browser(wallet).page
    show_message(page, live_stack, login)
    fields = page.locator("#message-fields")
    host = urlsplit(live_stack.frontend).netloc
    for text in (
        host,
        wallet.addresses[0],
        f"Link this wallet to the GitHub account {login} on kdemo",
        "URI",
        "Version1",
        "Chain ID1",
        "Nonce",
        "Issued At",
        "Expiration Time",
    ):
        expect(fields).to_contain_text(text)
    shot(page, "link-message")
    page.get_by_role("button", name="Sign with wallet").click()
    comment = page.locator("#comment-text")
    expect(comment).to_have_text(CODE)
    code = CODE.fullmatch(comment.inner_text().strip())
    assert code is not None
    expect(page).to_have_url(f"{live_stack.frontend}/link?code={code[1]}")
    shot(page, "link-code")
    assert live_stack.link_comment(code[1], login=login).link_codes == (code[1],)
    status = page.locator("#code-state")
    expect(status).to_have_attribute("data-link-state", "linked", timeout=30_000)
    expect(status).to_contain_text(f"github:{login}")
    shot(page, "link-confirmed")
    # gateway now names the login for a bounty this wallet signs on the author's own issue
    intent = live_stack.new_intent("$USDC:21$", login=login)
    typed = live_stack.http.get(f"{live_stack.frontend}/api/intents/{intent.token}").json()
    signature = eip712.sign_typed_data(typed["typed_data"], "0x" + bytes(wallet.keys[0].key).hex())
    answer = live_stack.http.post(
        f"{live_stack.frontend}/api/signatures",
        json={"token": intent.token, "address": wallet.addresses[0], "signature": signature},
    )
    assert answer.status_code == 200, answer.text
    bounty = live_stack.wait_for_bounty(
        intent.intent_id, lambda b: b["state"] == "signed", "the signed bounty"
    )
    assert (bounty["funder"]["login"], bounty["funder"]["verified"]) == (login, True)


def test_a_comment_from_another_account_is_refused_on_the_page(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """The code commented by someone else: identity refuses and the page shows the reason."""
    page = open_browser(FakeWallet.fresh("Test Wallet")).page
    show_message(page, live_stack, fresh_login())
    page.get_by_role("button", name="Sign with wallet").click()
    expect(page.locator("#comment-text")).to_have_text(CODE)
    code = CODE.fullmatch(page.locator("#comment-text").inner_text().strip())
    assert code is not None
    live_stack.link_comment(code[1], login=fresh_login())
    expect(page.locator("#code-state")).to_have_attribute(
        "data-link-state", "refused", timeout=30_000
    )
    expect(page.locator("#state")).to_have_attribute("data-state", "refused")
    shot(page, "link-refused")


def test_declining_the_message_sends_nothing(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """A 4001 on personal_sign: no link request is posted and the page offers to try again."""
    wallet = FakeWallet.fresh("Test Wallet", decline={"personal_sign"})
    session = open_browser(wallet)
    page = session.page
    show_message(page, live_stack, fresh_login())
    page.get_by_role("button", name="Sign with wallet").click()
    expect(page.locator("#state")).to_have_attribute("data-state", "rejected")
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    assert not any("/api/links" in url for url in session.posts)


@pytest.mark.parametrize("login", ["", "-bad-", "has space"])
def test_a_bad_login_is_named_before_the_wallet_is_asked(
    live_stack: LiveStack, open_browser: OpenBrowser, login: str
) -> None:
    """An empty or malformed GitHub login is explained on the field; no message is fetched."""
    wallet = FakeWallet.fresh("Test Wallet")
    page = open_browser(wallet).page
    page.goto(f"{live_stack.frontend}/link")
    page.get_by_label("GitHub login").fill(login)
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.locator("#state")).to_have_attribute("data-state", "connected")
    page.get_by_role("button", name="Show the message").click()
    expect(page.locator("#state")).to_have_attribute("data-state", "invalid-login")
    expect(page.get_by_label("GitHub login")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("GitHub login")).to_be_focused()
    assert "personal_sign" not in wallet.methods_called()


def test_without_a_wallet_the_link_page_points_to_the_cli(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """No wallet: install one, or `kdemo link-identity` from a terminal."""
    page = open_browser().page
    page.goto(f"{live_stack.frontend}/link")
    expect(page.locator("#state")).to_have_attribute("data-state", "no-wallet")
    expect(page.locator("#state")).to_contain_text("kdemo link-identity --github")
    shot(page, "link-no-wallet")
