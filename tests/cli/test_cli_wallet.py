"""The headless wallet: EIP-712 and EIP-191 signatures that eth-account recovers."""

from __future__ import annotations

import copy

import pytest
from eth_account import Account

from kdemo.errors import KdemoError, UsageError
from kdemo.flow.wallet import (
    TEST_ACCOUNT_ADDRESS,
    TEST_ACCOUNT_KEY,
    Wallet,
    normalise_typed_data,
    parse_signing_url,
    recover_personal,
    recover_typed_data,
)
from tests.cli.support import BOUNTY_TYPED


def test_test_account_key_belongs_to_its_published_address() -> None:
    """The default key is the well-known public test account, and its address is the known one."""
    assert Wallet.test_account().address == TEST_ACCOUNT_ADDRESS
    assert Account.from_key(TEST_ACCOUNT_KEY).address == TEST_ACCOUNT_ADDRESS


def test_typed_data_signature_recovers_to_the_signer() -> None:
    """eth-account recovers the wallet's address from its EIP-712 signature of decimal strings."""
    wallet = Wallet.fresh()
    signature = wallet.sign_typed_data(BOUNTY_TYPED)
    assert signature.startswith("0x")
    assert len(signature) == 132
    assert recover_typed_data(BOUNTY_TYPED, signature) == wallet.address
    changed = copy.deepcopy(BOUNTY_TYPED)
    changed["message"]["amount"] = "51"
    assert recover_typed_data(changed, signature) != wallet.address


def test_decimal_strings_sign_like_integers() -> None:
    """A uint256 sent as a decimal string hashes exactly like the integer it stands for."""
    as_ints = copy.deepcopy(BOUNTY_TYPED)
    for key in ("number", "sourceId", "amount", "deadline"):
        as_ints["message"][key] = int(as_ints["message"][key])
    as_ints["domain"]["chainId"] = 1
    wallet = Wallet.test_account()
    assert wallet.sign_typed_data(BOUNTY_TYPED) == wallet.sign_typed_data(as_ints)
    assert normalise_typed_data(BOUNTY_TYPED)["message"]["amount"] == 50


def test_personal_sign_recovers_to_the_signer() -> None:
    """An EIP-191 signature of a SIWE-like text recovers to the wallet."""
    wallet = Wallet.fresh()
    text = "127.0.0.1 wants you to sign in with your Ethereum account:\n" + wallet.address
    assert recover_personal(text, wallet.personal_sign(text)) == wallet.address


@pytest.mark.parametrize(
    "key", ["", "0x1234", "zz" * 32, "0x" + "00" * 32, "0x" + "ff" * 32, "0x" + "ab" * 33]
)
def test_bad_keys_are_refused_naming_the_source(key: str) -> None:
    """A key that is not 32 bytes of hex on the curve is a usage error naming where it came from."""
    with pytest.raises(UsageError) as err:
        Wallet.from_key(key, source="KDEMO_SIGNER_KEY")
    assert "KDEMO_SIGNER_KEY" in err.value.message


@pytest.mark.parametrize("key", [TEST_ACCOUNT_KEY, TEST_ACCOUNT_KEY[2:], TEST_ACCOUNT_KEY.upper()])
def test_keys_with_or_without_0x_are_the_same_wallet(key: str) -> None:
    """`0x` is optional and hex case does not matter."""
    assert Wallet.from_key(key.replace("0X", "0x")).address == TEST_ACCOUNT_ADDRESS


@pytest.mark.parametrize(
    ("url", "base", "token"),
    [
        ("http://127.0.0.1:8080/sign?t=abc.def", "http://127.0.0.1:8080", "abc.def"),
        ("https://demo.example/sign?x=1&t=tok", "https://demo.example", "tok"),
    ],
)
def test_signing_url_gives_frontend_origin_and_token(url: str, base: str, token: str) -> None:
    """The frontend is the URL's own origin; the token is its `t` parameter."""
    parsed = parse_signing_url(url)
    assert (parsed.base, parsed.token) == (base, token)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("not a url", "http(s)://host"),
        ("ftp://127.0.0.1/sign?t=x", "http(s)://host"),
        ("http://127.0.0.1:8080/sign", "t=<token>"),
        ("http://127.0.0.1:8080/sign?t=", "t=<token>"),
    ],
)
def test_bad_signing_urls_fail_with_the_reason(url: str, why: str) -> None:
    """A URL without a scheme and host, or without a token, is refused with exit code 1."""
    with pytest.raises(KdemoError) as err:
        parse_signing_url(url)
    assert why in err.value.message
    assert err.value.exit_code == 1
