"""The signing page in Chromium against the real stack, with a wallet holding eth-account keys."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable

import httpx
import pytest
from eth_account import Account
from playwright.sync_api import Locator, Page, Route, expect

from services.common import eip712
from services.common.intent_tokens import issue_intent_token, verify_intent_token

from .support import Intent, LiveStack, Session, shot
from .wallet import FakeWallet

pytestmark = pytest.mark.stack

OpenBrowser = Callable[..., Session]


def state(page: Page) -> Locator:
    return page.locator("#state")


def connect(page: Page, expected: str = "ready") -> None:
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.locator("#state")).to_have_attribute("data-state", expected)


def post_signature(stack: LiveStack, intent: Intent, key: str) -> httpx.Response:
    """Sign the intent outside the browser, as another wallet would, through frontend's API."""
    typed = stack.http.get(f"{stack.frontend}/api/intents/{intent.token}").json()["typed_data"]
    account = Account.from_key(key)
    return stack.http.post(
        f"{stack.frontend}/api/signatures",
        json={
            "token": intent.token,
            "address": account.address,
            "signature": eip712.sign_typed_data(typed, key),
        },
        headers={"Accept": "application/json"},
    )


def test_signing_goes_to_the_issue_and_records_the_bounty(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """The page says what will be signed, the user picks an account, signs, lands on the issue."""
    intent = live_stack.new_intent("$USDC:50$")
    wallet = FakeWallet.fresh("Test Wallet", accounts=2)
    session = open_browser(wallet)
    page = session.page
    page.goto(intent.url)
    facts = page.locator("#intent-facts")
    for text in (intent.issue_url.split("/")[3], "#7", "50 USDC", "UTC (in 23 h"):
        expect(facts).to_contain_text(text)
    shot(page, "sign-wallet-found")
    connect(page)
    chosen = wallet.addresses[1]
    page.get_by_label("Account that signs").select_option(chosen)
    expect(state(page)).to_contain_text(f"{chosen} will sign 50 USDC")
    shot(page, "sign-ready")
    page.get_by_role("button", name="Sign with wallet").click()
    page.wait_for_url(intent.issue_url)
    success = [t for t in session.trace if t.startswith("sign:success")]
    assert success, session.trace
    assert "50 USDC" in success[0]
    assert chosen in success[0]
    bounty = live_stack.wait_for_bounty(
        intent.intent_id, lambda b: b["state"] == "signed", "signed"
    )
    assert bounty["funder"]["address"].lower() == chosen.lower()


def test_success_shows_what_was_signed_before_leaving(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """Before it navigates, the page shows the signed fields and a link to the issue."""
    intent = live_stack.new_intent("$DAI:12$")
    session = open_browser(FakeWallet.fresh("Test Wallet"))
    page = session.page
    # hold the navigation to the issue (never answered) so the success state stays in view
    page.route("https://github.com/**", lambda route: None)
    page.goto(intent.url)
    connect(page)
    page.get_by_role("button", name="Sign with wallet").click()
    expect(state(page)).to_have_attribute("data-state", "success")
    signed = page.locator("#signed-facts")
    for text in ("12 DAI", "#7", session.wallets[0].addresses[0], "0x"):
        expect(signed).to_contain_text(text)
    expect(page.get_by_role("link", name="Go to the issue now")).to_have_attribute(
        "href", intent.issue_url
    )
    shot(page, "sign-success")


def test_declining_publishes_nothing_and_offers_retry(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """A 4001 from the wallet: nothing is posted, gateway keeps it pending, Try again works."""
    intent = live_stack.new_intent("$USDC:8$")
    wallet = FakeWallet.fresh("Test Wallet", decline={"eth_signTypedData_v4"})
    session = open_browser(wallet)
    page = session.page
    page.goto(intent.url)
    connect(page)
    page.get_by_role("button", name="Sign with wallet").click()
    expect(state(page)).to_have_attribute("data-state", "rejected")
    expect(state(page)).to_contain_text("nothing was published")
    shot(page, "sign-rejected")
    assert not any("/api/signatures" in url for url in session.posts)
    assert live_stack.wait_for_bounty(intent.intent_id, lambda b: True, "the intent")["state"] == (
        "pending"
    )
    wallet.decline.clear()
    page.get_by_role("button", name="Try again").click()
    page.wait_for_url(intent.issue_url)
    live_stack.wait_for_bounty(intent.intent_id, lambda b: b["state"] == "signed", "signed")


def test_a_wallet_that_signs_other_data_is_refused(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """A signature of tampered typed data is refused by frontend (400) and the page says so."""
    intent = live_stack.new_intent("$USDC:9$")
    page = open_browser(FakeWallet.fresh("Lying Wallet", tamper=True)).page
    page.goto(intent.url)
    connect(page)
    with page.expect_response("**/api/signatures") as answer:
        page.get_by_role("button", name="Sign with wallet").click()
    assert answer.value.status == 400
    assert answer.value.json()["error"]["code"] == "signature_mismatch"
    expect(state(page)).to_have_attribute("data-state", "refused")
    expect(state(page)).to_contain_text("kdemo refused the signature")
    expect(state(page)).to_contain_text("Nothing was published")
    shot(page, "sign-refused")
    assert live_stack.wait_for_bounty(intent.intent_id, lambda b: True, "the intent")["state"] == (
        "pending"
    )


def test_an_expired_link_is_explained_without_asking_the_wallet(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """A genuine token past its deadline: a 410 page naming the bounty; the wallet is not asked."""
    intent = live_stack.new_intent("$USDC:4$")
    secrets = json.loads((live_stack.state_dir / "secrets.json").read_text())
    claims = verify_intent_token(intent.token, secrets["intent_verify_key"])
    past = dataclasses.replace(claims, expires_at=int(time.time()) - 60)
    token = issue_intent_token(past, secrets["intent_signing_key"], now=time.time() - 120)
    wallet = FakeWallet.fresh("Test Wallet")
    page = open_browser(wallet).page
    response = page.goto(f"{live_stack.frontend}/sign?t={token}")
    assert response is not None
    assert response.status == 410
    expect(page.locator("#state")).to_have_attribute("data-state", "expired")
    expect(page.locator("h1")).to_have_text("Signing link expired")
    expect(page.locator("#state")).to_contain_text("4 USDC")
    shot(page, "sign-expired")
    assert wallet.calls == []


def test_a_link_that_expires_while_open_stops_before_the_wallet(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """When the deadline passes with the page open, Sign shows the expired state, no prompt."""
    intent = live_stack.new_intent("$USDC:5$")
    wallet = FakeWallet.fresh("Test Wallet")
    page = open_browser(wallet).page
    page.clock.install()
    page.goto(intent.url)
    connect(page)
    page.clock.fast_forward("25:00:00")  # past the default 24 h intent lifetime
    page.get_by_role("button", name="Sign with wallet").click()
    expect(state(page)).to_have_attribute("data-state", "expired")
    expect(page.get_by_role("link", name="Go to the issue")).to_have_attribute(
        "href", intent.issue_url
    )
    assert "eth_signTypedData_v4" not in wallet.methods_called()


def test_the_same_wallet_twice_is_told_it_already_signed(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """A wallet that signed is recognised on its next visit and pointed to the issue."""
    intent = live_stack.new_intent("$USDC:6$")
    wallet = FakeWallet.fresh("Test Wallet")
    first = open_browser(wallet).page
    first.goto(intent.url)
    connect(first)
    first.get_by_role("button", name="Sign with wallet").click()
    first.wait_for_url(intent.issue_url)
    live_stack.wait_for_bounty(intent.intent_id, lambda b: b["state"] == "signed", "signed")
    again = FakeWallet("Test Wallet", wallet.keys)
    page = open_browser(again).page
    page.goto(intent.url)
    connect(page, expected="already-signed")
    expect(state(page)).to_contain_text(wallet.addresses[0])
    expect(page.get_by_role("link", name="Go to the issue")).to_have_attribute(
        "href", intent.issue_url
    )
    shot(page, "sign-already-signed")
    assert "eth_signTypedData_v4" not in again.methods_called()


def test_the_same_wallet_signing_again_is_answered_already_signed(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """A repeat signature the page did not foresee is answered `already_signed`, not an error."""
    intent = live_stack.new_intent("$USDC:16$")
    wallet = FakeWallet.fresh("Test Wallet")
    page = open_browser(wallet).page
    page.goto(intent.url)  # rendered before the first signature reaches gateway
    assert (
        post_signature(live_stack, intent, "0x" + bytes(wallet.keys[0].key).hex()).status_code
        == 200
    )
    connect(page)
    page.get_by_role("button", name="Sign with wallet").click()
    expect(state(page)).to_have_attribute("data-state", "already-signed")


def test_another_wallets_offer_is_listed_and_never_blocks(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """Earlier signers are listed; a second wallet still signs, and gateway records its offer."""
    intent = live_stack.new_intent("$USDC:30$")
    first = Account.create()
    assert post_signature(live_stack, intent, "0x" + bytes(first.key).hex()).status_code == 200
    live_stack.wait_for_bounty(intent.intent_id, lambda b: b["state"] == "signed", "signed")
    wallet = FakeWallet.fresh("Second Wallet")
    page = open_browser(wallet).page
    page.goto(intent.url)
    expect(page.locator("#signers")).to_contain_text(first.address)
    connect(page)
    shot(page, "sign-other-offers")
    page.get_by_role("button", name="Sign with wallet").click()
    page.wait_for_url(intent.issue_url)
    bounty = live_stack.wait_for_bounty(
        intent.intent_id, lambda b: len(b["offers"]) == 1, "the second offer"
    )
    assert bounty["funder"]["address"].lower() == first.address.lower()
    assert bounty["offers"][0]["address"].lower() == wallet.addresses[0].lower()


@pytest.mark.parametrize(
    ("known", "decline", "expected", "message"),
    [
        pytest.param({1, 11155111}, set(), "ready", "Ready to sign", id="switch-accepted"),
        pytest.param(
            {1, 11155111},
            {"wallet_switchEthereumChain"},
            "switch-rejected",
            "You declined switching the network",
            id="switch-declined",
        ),
        pytest.param(
            {11155111}, set(), "chain-unknown", "does not know this network", id="chain-unknown"
        ),
    ],
)
def test_a_wallet_on_another_chain_is_asked_to_switch(
    live_stack: LiveStack,
    open_browser: OpenBrowser,
    known: set[int],
    decline: set[str],
    expected: str,
    message: str,
) -> None:
    """eth_chainId is read; the page offers wallet_switchEthereumChain and handles 4001/4902."""
    intent = live_stack.new_intent("$USDC:7$")
    wallet = FakeWallet.fresh(
        "Test Wallet", chain_id=11155111, known_chains=frozenset(known), decline=decline
    )
    page = open_browser(wallet).page
    page.goto(intent.url)
    connect(page, expected="wrong-chain")
    expect(state(page)).to_contain_text("chain id 11155111 (Sepolia)")
    if expected == "ready":
        shot(page, "sign-wrong-chain")
    page.get_by_role("button", name="Switch to chain id 1 (Ethereum mainnet)").click()
    expect(state(page)).to_have_attribute("data-state", expected)
    expect(state(page)).to_contain_text(message)
    if expected == "ready":
        page.get_by_role("button", name="Sign with wallet").click()
        page.wait_for_url(intent.issue_url)


def test_a_locked_wallet_is_asked_to_unlock(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """No account from eth_requestAccounts means a locked wallet; Try again after unlocking."""
    intent = live_stack.new_intent("$USDC:3$")
    wallet = FakeWallet.fresh("Test Wallet", locked=True)
    page = open_browser(wallet).page
    page.goto(intent.url)
    connect(page, expected="locked")
    expect(state(page)).to_contain_text("unlock it")
    shot(page, "sign-locked")
    wallet.locked = False
    page.get_by_role("button", name="Try again").click()
    expect(state(page)).to_have_attribute("data-state", "ready")


def test_without_a_wallet_the_page_suggests_one_and_the_cli(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """No EIP-6963 announcement and no window.ethereum: install a wallet, or `kdemo sign`."""
    intent = live_stack.new_intent("$USDC:2$")
    page = open_browser().page
    page.goto(intent.url)
    expect(state(page)).to_have_attribute("data-state", "no-wallet")
    expect(state(page)).to_contain_text("Install a browser wallet")
    expect(state(page)).to_contain_text(f"kdemo sign '{intent.url}'")
    expect(page.get_by_role("button", name="Connect wallet")).to_be_disabled()
    shot(page, "sign-no-wallet")


@pytest.mark.parametrize(
    "wallets",
    [
        pytest.param(
            [FakeWallet.fresh("Legacy Wallet", eip6963=False, legacy=True)], id="window-ethereum"
        ),
        pytest.param(
            [FakeWallet.fresh("First Wallet"), FakeWallet.fresh("Second Wallet")], id="two-wallets"
        ),
    ],
)
def test_the_user_picks_the_wallet(
    live_stack: LiveStack, open_browser: OpenBrowser, wallets: list[FakeWallet]
) -> None:
    """window.ethereum serves when nothing announces itself; with two wallets the user picks."""
    intent = live_stack.new_intent("$USDC:11$")
    page = open_browser(*wallets).page
    page.goto(intent.url)
    chosen = wallets[-1]
    if len(wallets) > 1:
        page.get_by_label("Wallet", exact=True).select_option(label=chosen.name)
    connect(page)
    expect(page.get_by_label("Account that signs")).to_have_value(chosen.addresses[0])
    assert all(w.calls == [] for w in wallets if w is not chosen)


def test_a_network_error_offers_retry(live_stack: LiveStack, open_browser: OpenBrowser) -> None:
    """A post that never reaches frontend: the page says so, Retry signs and records it."""
    intent = live_stack.new_intent("$USDC:13$")
    page = open_browser(FakeWallet.fresh("Test Wallet")).page
    page.goto(intent.url)
    connect(page)

    def offline(route: Route) -> None:
        route.abort("internetdisconnected")

    page.route("**/api/signatures", offline)
    page.get_by_role("button", name="Sign with wallet").click()
    expect(state(page)).to_have_attribute("data-state", "network")
    expect(state(page)).to_contain_text("could not be reached")
    shot(page, "sign-network-error")
    page.unroute("**/api/signatures", offline)
    page.get_by_role("button", name="Retry").click()
    page.wait_for_url(intent.issue_url)
    live_stack.wait_for_bounty(intent.intent_id, lambda b: b["state"] == "signed", "signed")
