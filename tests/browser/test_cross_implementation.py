"""What the pages ask a wallet to sign, signed by ethers (node): accepted, with the same hash."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from playwright.sync_api import expect

from services.common.eip712 import typed_data_hash

from .support import LiveStack, Session
from .wallet import FakeWallet

pytestmark = pytest.mark.stack

OpenBrowser = Callable[..., Session]
JS = Path(__file__).resolve().parents[1] / "js"


def ethers(request: dict[str, Any]) -> dict[str, Any]:
    """Run tests/js/sign_page_data.mjs (ethers v6) on `request`; its JSON answer."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the ethers cross-check needs it")
    if not (JS / "node_modules" / "ethers").is_dir():
        pytest.skip("ethers is not installed: run `npm ci --prefix tests/js`")
    result = subprocess.run(
        [node, str(JS / "sign_page_data.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_ethers_signs_the_pages_typed_data_and_frontend_accepts_it(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """The typed data the page hands the wallet: ethers hashes it alike and its signature counts."""
    intent = live_stack.new_intent("$USDC:42$")
    wallet = FakeWallet.fresh("Test Wallet", decline={"eth_signTypedData_v4"})
    page = open_browser(wallet).page
    page.goto(intent.url)
    page.get_by_role("button", name="Connect wallet").click()
    page.get_by_role("button", name="Sign with wallet").click()
    expect(page.locator("#state")).to_have_attribute("data-state", "rejected")
    params = next(p for m, p in wallet.calls if m == "eth_signTypedData_v4")
    typed = json.loads(params[1])
    key = Account.create()
    answer = ethers({"private_key": "0x" + bytes(key.key).hex(), "typed_data": typed})
    assert answer["hash"] == typed_data_hash(typed)
    response = live_stack.http.post(
        f"{live_stack.frontend}/api/signatures",
        json={
            "token": intent.token,
            "address": answer["address"],
            "signature": answer["typed_signature"],
        },
        headers={"Accept": "application/json"},
    )
    assert (response.status_code, response.json()["status"]) == (200, "signed"), response.text


def test_ethers_signs_the_pages_siwe_message_and_frontend_accepts_it(
    live_stack: LiveStack, open_browser: OpenBrowser
) -> None:
    """The exact SIWE text the link page shows, signed by ethers, gets a link code."""
    wallet = FakeWallet.fresh("Test Wallet")
    page = open_browser(wallet).page
    page.goto(f"{live_stack.frontend}/link")
    page.get_by_label("GitHub login").fill("octo-ethers")
    page.get_by_role("button", name="Connect wallet").click()
    page.get_by_role("button", name="Show the message").click()
    expect(page.locator("#state")).to_have_attribute("data-state", "message")
    message = page.locator("#message-text").text_content()
    assert message
    answer = ethers({"private_key": "0x" + bytes(wallet.keys[0].key).hex(), "message": message})
    assert answer["address"] == wallet.addresses[0]
    response = live_stack.http.post(
        f"{live_stack.frontend}/api/links",
        json={"message": message, "signature": answer["message_signature"]},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["comment"] == f"$link:{response.json()['code']}$"
