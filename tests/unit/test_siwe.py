"""SIWE link messages, their nonces and link codes."""

from __future__ import annotations

import json
import re
import string
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from services.common.siwe import (
    LINK_CODE_LENGTH,
    SiweError,
    build_link_message,
    issue_nonce,
    link_code_for,
    new_link_code,
    parse_message,
    validate_github_login,
    verify_link_message,
    verify_nonce,
)

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "siwe.json").read_text())
KEY = VECTORS["private_key"]
ADDRESS = VECTORS["address"]
OTHER_KEY = "0x59c6995e998f97a0a52f5dda8e6a7a8aed6e4e0c61fa9d9c0b9e0e7a6d3c2b10"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DOMAIN = "127.0.0.1:8443"
SECRET = "5f" * 32


def message(**overrides: Any) -> str:
    fields: dict[str, Any] = {
        "domain": DOMAIN,
        "uri": f"http://{DOMAIN}/link",
        "address": ADDRESS,
        "login": "octocat",
        "chain_id": 1,
        "nonce": "abcdefgh12345678",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(minutes=15),
    }
    fields.update(overrides)
    return build_link_message(**fields)


def sign(text: str, key: str = KEY) -> str:
    return "0x" + bytes(Account.sign_message(encode_defunct(text=text), key).signature).hex()


def verify(text: str, signature: str, **overrides: Any) -> Any:
    options: dict[str, Any] = {"expected_domain": DOMAIN, "chain_id": 1, "now": NOW}
    options.update(overrides)
    return verify_link_message(text, signature, **options)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_golden_vectors_are_reproduced(case: dict[str, Any]) -> None:
    """Every committed message is built byte for byte, and its signature verifies."""
    inputs = case["inputs"]
    issued = datetime.fromisoformat(inputs["issued_at"])
    text = build_link_message(
        domain=inputs["domain"],
        uri=inputs["uri"],
        address=ADDRESS.lower(),
        login=inputs["login"],
        chain_id=inputs["chain_id"],
        nonce=inputs["nonce"],
        issued_at=issued,
        expires_at=datetime.fromisoformat(inputs["expires_at"]),
    )
    assert text == case["message"]
    assert sign(text) == case["signature"]
    parsed = verify_link_message(
        text,
        case["signature"],
        expected_domain=inputs["domain"],
        chain_id=inputs["chain_id"],
        now=issued,
    )
    assert parsed.login == inputs["login"]
    assert parsed.address == ADDRESS


def test_message_follows_eip_4361() -> None:
    """The text has the EIP-4361 lines in order, with the statement naming the login."""
    text = message(address=ADDRESS.lower(), issued_at=NOW.astimezone(timezone(timedelta(hours=2))))
    assert text.split("\n") == [
        "127.0.0.1:8443 wants you to sign in with your Ethereum account:",
        ADDRESS,
        "",
        "Link this wallet to the GitHub account octocat on kdemo",
        "",
        "URI: http://127.0.0.1:8443/link",
        "Version: 1",
        "Chain ID: 1",
        "Nonce: abcdefgh12345678",
        "Issued At: 2026-03-01T12:00:00Z",
        "Expiration Time: 2026-03-01T12:15:00Z",
    ]


def test_parse_reads_back_every_field() -> None:
    """parse_message returns what build_link_message put in, login included."""
    parsed = parse_message(message(chain_id=11155111, login="a-b"))
    assert parsed.domain == DOMAIN
    assert parsed.address == ADDRESS
    assert parsed.uri == f"http://{DOMAIN}/link"
    assert parsed.version == "1"
    assert parsed.chain_id == 11155111
    assert parsed.nonce == "abcdefgh12345678"
    assert parsed.issued_at == NOW
    assert parsed.expires_at == NOW + timedelta(minutes=15)
    assert parsed.login == "a-b"


def test_valid_signature_verifies() -> None:
    """The wallet named in the message signing it verifies, returning the parsed message."""
    text = message()
    assert verify(text, sign(text)).login == "octocat"


def test_domain_is_optional_to_check() -> None:
    """identity, which has no domain of its own, verifies with expected_domain None."""
    text = message(domain="kdemo.example.org")
    assert verify(text, sign(text), expected_domain=None).domain == "kdemo.example.org"


def test_message_for_another_domain_is_refused() -> None:
    """A message made for another site is refused even with a valid signature."""
    text = message(domain="evil.example")
    with pytest.raises(SiweError, match=r"domain 'evil\.example' is not") as caught:
        verify(text, sign(text))
    assert caught.value.reason == "domain_mismatch"


def test_other_chain_is_refused() -> None:
    """A message for another chain id is refused."""
    text = message(chain_id=5)
    with pytest.raises(SiweError) as caught:
        verify(text, sign(text))
    assert caught.value.reason == "chain_mismatch"


@pytest.mark.parametrize("late", [timedelta(minutes=15), timedelta(days=1)])
def test_expired_message_is_refused(late: timedelta) -> None:
    """At or after its expiration time the message is refused as expired."""
    text = message()
    with pytest.raises(SiweError, match="expired") as caught:
        verify(text, sign(text), now=NOW + late)
    assert caught.value.reason == "expired"


def test_message_from_the_future_is_refused() -> None:
    """A message issued well after `now` (beyond clock skew) is not yet valid."""
    text = message(issued_at=NOW + timedelta(minutes=5), expires_at=NOW + timedelta(minutes=20))
    with pytest.raises(SiweError) as caught:
        verify(text, sign(text))
    assert caught.value.reason == "not_yet_valid"


def test_small_clock_skew_is_tolerated() -> None:
    """A browser clock a little ahead does not break linking."""
    text = message(issued_at=NOW + timedelta(seconds=30))
    assert verify(text, sign(text)).login == "octocat"


def test_wrong_signer_is_refused() -> None:
    """A signature by another wallet than the one in the message is refused, naming both."""
    text = message()
    other = Account.from_key(OTHER_KEY).address
    with pytest.raises(SiweError, match=f"made by {other}, not by {ADDRESS}") as caught:
        verify(text, sign(text, OTHER_KEY))
    assert caught.value.reason == "signer_mismatch"


def test_tampered_login_is_refused() -> None:
    """Changing the login after signing recovers another signer."""
    text = message()
    signature = sign(text)
    with pytest.raises(SiweError) as caught:
        verify(text.replace("octocat", "mallory"), signature)
    assert caught.value.reason == "signer_mismatch"


@pytest.mark.parametrize("signature", ["", "0x12", "0x" + "zz" * 65, "0x" + "00" * 65])
def test_bad_signature_is_refused(signature: str) -> None:
    """A malformed or unrecoverable signature is refused as bad_signature."""
    with pytest.raises(SiweError) as caught:
        verify(message(), signature)
    assert caught.value.reason == "bad_signature"


def _replace_line(index: int, line: str) -> str:
    lines = message().split("\n")
    lines[index] = line
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "expected 11 lines"),
        (message() + "\n", "expected 11 lines"),
        (message().replace("\n", "\r\n"), "\\\\r"),
        (message() + "\nResources:", "expected 11 lines"),
        (_replace_line(0, "127.0.0.1:8443 wants you to sign in"), "first line"),
        (_replace_line(0, "bad host! wants you to sign in with your Ethereum account:"), "domain"),
        (_replace_line(1, ADDRESS.lower()), "checksum"),
        (_replace_line(1, "0x1234"), "checksum"),
        (_replace_line(2, "x"), "blank lines"),
        (_replace_line(3, "Sign in to kdemo"), "statement"),
        (_replace_line(5, "URI: not a uri"), "URI"),
        (_replace_line(6, "Version: 2"), "Version"),
        (_replace_line(7, "Chain ID: 01"), "Chain ID"),
        (_replace_line(8, "Nonce: short"), "Nonce"),
        (_replace_line(8, "Nonce: has-dash-1234"), "Nonce"),
        (_replace_line(9, "Issued At: yesterday"), "Issued At"),
        (_replace_line(9, "Issued At: 2026-13-45T12:00:00Z"), "not a valid date"),
        (_replace_line(9, "Issued At: 2026-03-01T12:00:00"), "Issued At"),
        (_replace_line(10, "Not Before: 2026-03-01T12:00:00Z"), "Expiration Time"),
        (_replace_line(10, "Expiration Time: 2026-03-01T11:00:00Z"), "later than"),
    ],
)
def test_malformed_messages_are_refused(text: str, needle: str) -> None:
    """Every deviation from the kdemo EIP-4361 profile is a 'malformed' SiweError saying where."""
    with pytest.raises(SiweError, match=needle) as caught:
        parse_message(text)
    assert caught.value.reason in {"malformed", "bad_address"}


@pytest.mark.parametrize(
    "login", ["", "-octo", "octo-", "oc--to", "octo_cat", "a" * 40, "octo cat", "octó"]
)
def test_bad_github_logins_are_refused(login: str) -> None:
    """Logins GitHub could never issue are refused, when building and when parsing."""
    with pytest.raises(SiweError, match="is not a GitHub login") as caught:
        validate_github_login(login)
    assert caught.value.reason == "bad_login"
    with pytest.raises(SiweError):
        message(login=login)


def test_bad_login_in_a_signed_message_is_refused() -> None:
    """A statement naming an impossible login is refused even if signed."""
    text = message().replace("account octocat on", "account -bad- on")
    with pytest.raises(SiweError) as caught:
        verify(text, sign(text))
    assert caught.value.reason == "bad_login"


@pytest.mark.parametrize("login", ["a", "A1", "octo-cat", "a-b-c", "x" * 39])
def test_good_github_logins_are_accepted(login: str) -> None:
    """Logins of 1-39 letters, digits and single inner hyphens pass unchanged."""
    assert validate_github_login(login) == login
    assert parse_message(message(login=login)).login == login


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("domain", "https://kdemo.example"),
        ("uri", "/link"),
        ("address", "0x1234"),
        ("chain_id", 0),
        ("nonce", "short"),
        ("issued_at", datetime(2026, 3, 1, 12)),
        ("expires_at", NOW),
    ],
)
def test_build_refuses_bad_fields(field: str, value: object) -> None:
    """build_link_message names the field that cannot go into a message."""
    with pytest.raises(SiweError, match=field):
        message(**{field: value})


def test_nonce_is_alphanumeric_and_verifies() -> None:
    """A nonce is EIP-4361-safe (alphanumeric, >= 8) and verifies until its expiry."""
    nonce = issue_nonce(SECRET, ttl_s=900, now=NOW)
    assert re.fullmatch(r"[a-z2-7]{60}", nonce)
    assert verify_nonce(nonce, SECRET, now=NOW + timedelta(seconds=899)) == NOW + timedelta(
        seconds=900
    )
    assert parse_message(message(nonce=nonce)).nonce == nonce


def test_nonces_are_unique() -> None:
    """Two nonces issued at the same instant differ."""
    assert issue_nonce(SECRET, ttl_s=60, now=NOW) != issue_nonce(SECRET, ttl_s=60, now=NOW)


def test_expired_nonce_is_refused() -> None:
    """At its expiry, a nonce is refused as nonce_expired."""
    nonce = issue_nonce(SECRET, ttl_s=900, now=NOW)
    with pytest.raises(SiweError) as caught:
        verify_nonce(nonce, SECRET, now=NOW + timedelta(seconds=900))
    assert caught.value.reason == "nonce_expired"


def test_nonce_from_another_secret_is_refused() -> None:
    """A nonce made with another deployment's secret is refused."""
    nonce = issue_nonce("6a" * 32, ttl_s=900, now=NOW)
    with pytest.raises(SiweError, match="not issued by this deployment"):
        verify_nonce(nonce, SECRET, now=NOW)


def test_tampered_nonce_is_refused() -> None:
    """Changing one character of a nonce (say, to extend its expiry) is detected."""
    nonce = issue_nonce(SECRET, ttl_s=900, now=NOW)
    flipped = nonce[:5] + ("a" if nonce[5] != "a" else "b") + nonce[6:]
    with pytest.raises(SiweError) as caught:
        verify_nonce(flipped, SECRET, now=NOW)
    assert caught.value.reason == "bad_nonce"


def test_nonce_has_one_spelling() -> None:
    """A nonce whose unused last bits are changed is refused, so each nonce has one text."""
    nonce = issue_nonce(SECRET, ttl_s=900, now=NOW)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    last = alphabet.index(nonce[-1])
    variant = nonce[:-1] + alphabet[last ^ 1]  # 37 bytes leave 4 unused bits in the last char
    with pytest.raises(SiweError, match="canonical"):
        verify_nonce(variant, SECRET, now=NOW)


@pytest.mark.parametrize("nonce", ["", "abcdefgh12345678", "a" * 60, "A" * 60, "a" * 59, "eyJ.x.y"])
def test_foreign_nonces_are_refused(nonce: str) -> None:
    """Strings that are not kdemo nonces (a JWT among them) are refused as bad_nonce."""
    with pytest.raises(SiweError) as caught:
        verify_nonce(nonce, SECRET, now=NOW)
    assert caught.value.reason == "bad_nonce"


@pytest.mark.parametrize(("secret", "needle"), [("zz" * 16, "not hex"), ("ab" * 8, "too short")])
def test_bad_nonce_secret_is_named(secret: str, needle: str) -> None:
    """A nonce secret that is not hex or too short names KDEMO_LINK_NONCE_SECRET."""
    with pytest.raises(ValueError, match=f"KDEMO_LINK_NONCE_SECRET: .*{needle}"):
        issue_nonce(secret, ttl_s=60)


@pytest.mark.parametrize("ttl", [0, -5, True])
def test_bad_nonce_ttl_is_refused(ttl: int) -> None:
    """A nonce lifetime must be a positive number of seconds."""
    with pytest.raises(ValueError, match="ttl_s"):
        issue_nonce(SECRET, ttl_s=ttl)


def test_link_codes_are_long_lowercase_letters() -> None:
    """A link code is 28 lower-case letters (no digit, so never an amount) and never repeats."""
    codes = {new_link_code() for _ in range(200)}
    assert len(codes) == 200
    assert LINK_CODE_LENGTH == 28
    for code in codes:
        assert len(code) == 28
        assert set(code) <= set(string.ascii_lowercase)


def test_a_nonce_has_one_link_code_only_the_secret_can_compute() -> None:
    """The code of a nonce is the same each time (a replay gets no new code), differs for
    every nonce and under another secret, and is 28 lower-case letters like a fresh one."""
    nonces = [issue_nonce(SECRET, ttl_s=600) for _ in range(200)]
    codes = [link_code_for(nonce, SECRET) for nonce in nonces]

    assert [link_code_for(nonce, SECRET) for nonce in nonces] == codes
    assert len(set(codes)) == 200
    assert all(re.fullmatch(r"[a-z]{28}", code) for code in codes)
    assert link_code_for(nonces[0], "60" * 32) != codes[0]
    # the letters are spread over the alphabet, not stuck at one end of it
    assert set("".join(codes)) == set(string.ascii_lowercase)
