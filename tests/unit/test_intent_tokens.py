"""Intent tokens: github-app signs them, frontend can only verify them."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from services.common.intent_tokens import (
    IntentClaims,
    TokenError,
    TokenExpired,
    TokenInvalid,
    _private_key,
    _public_key,
    generate_ed25519_keypair,
    issue_intent_token,
    verify_intent_token,
)
from services.common.siwe import issue_nonce

NOW = 1_800_000_000
PRIVATE, PUBLIC = generate_ed25519_keypair()
OTHER_PRIVATE, OTHER_PUBLIC = generate_ed25519_keypair()


def claims(**overrides: Any) -> IntentClaims:
    fields: dict[str, Any] = {
        "intent_id": "0x" + "ab" * 32,
        "repository": "octo/hello",
        "number": 5,
        "kind": "issue",
        "source": "issue_comment",
        "source_id": 99,
        "html_url": "https://github.com/Octo/Hello/issues/5#issuecomment-99",
        "denomination": "USDC",
        "amount": 10**18,
        "author_id": 583231,
        "author_login": "octocat",
        "expires_at": NOW + 3600,
    }
    fields.update(overrides)
    return IntentClaims(**fields)


def payload_of(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def test_round_trip_gives_back_the_claims() -> None:
    """A token issued with the private key verifies with the public key to the same claims."""
    original = claims()
    token = issue_intent_token(original, PRIVATE, now=NOW)
    assert verify_intent_token(token, PUBLIC, now=NOW) == original


def test_token_carries_the_documented_claims() -> None:
    """The JWT is EdDSA with aud 'sign', sub the intent id, exp the expiry, amount a string."""
    token = issue_intent_token(claims(), PRIVATE, now=NOW)
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    payload = payload_of(token)
    assert payload["aud"] == "sign"
    assert payload["sub"] == "0x" + "ab" * 32
    assert payload["exp"] == NOW + 3600
    assert payload["iat"] == NOW
    assert payload["amount"] == str(10**18)
    assert payload["author_id"] == 583231
    assert "intent_id" not in payload
    assert "expires_at" not in payload


def test_token_is_url_safe() -> None:
    """The token can sit in a query string without escaping."""
    token = issue_intent_token(claims(), PRIVATE, now=NOW)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


@pytest.mark.parametrize(
    ("now", "ago"),
    [(NOW + 3600, "0 s ago"), (NOW + 3601, "1 s ago"), (NOW + 3600 + 3 * 3600 + 59, "3 h ago")],
)
def test_expired_token_is_token_expired(now: int, ago: str) -> None:
    """At or after `exp`, a genuine token is TokenExpired (HTTP 410), not invalid; the
    message gives the expiry in ISO 8601 UTC and how long ago it was, never unix seconds."""
    token = issue_intent_token(claims(), PRIVATE, now=NOW)
    with pytest.raises(TokenExpired) as caught:
        verify_intent_token(token, PUBLIC, now=now)
    assert isinstance(caught.value, TokenError)
    assert caught.value.message == f"token: the intent expired at 2027-01-15T09:00:00Z ({ago})"


def test_a_forged_token_is_refused_in_words_without_the_hint() -> None:
    """The refusal says why in plain words, once: no library wording, and no hint (the
    service answers the hint in its own field)."""
    token = issue_intent_token(claims(), OTHER_PRIVATE, now=NOW)
    with pytest.raises(TokenInvalid) as caught:
        verify_intent_token(token, PUBLIC, now=NOW)
    assert caught.value.message == (
        "token: not a genuine intent token (its signature does not match this deployment's key)"
    )


def test_token_is_valid_until_the_last_second() -> None:
    """One second before `exp` the token still verifies."""
    token = issue_intent_token(claims(), PRIVATE, now=NOW)
    assert verify_intent_token(token, PUBLIC, now=NOW + 3599).expires_at == NOW + 3600


def test_default_clock_is_now() -> None:
    """Without `now`, the real clock decides: an old intent is expired."""
    token = issue_intent_token(claims(expires_at=1_000_000_000), PRIVATE, now=999_000_000)
    with pytest.raises(TokenExpired):
        verify_intent_token(token, PUBLIC)


def test_token_from_another_key_is_invalid() -> None:
    """A token signed by a key other than github-app's is TokenInvalid (HTTP 401)."""
    token = issue_intent_token(claims(), OTHER_PRIVATE, now=NOW)
    with pytest.raises(TokenInvalid, match="not a genuine intent token"):
        verify_intent_token(token, PUBLIC, now=NOW)


def test_forged_and_expired_token_is_invalid_not_expired() -> None:
    """The signature is checked before the expiry: a forgery never reads as merely expired."""
    token = issue_intent_token(claims(), OTHER_PRIVATE, now=NOW)
    with pytest.raises(TokenInvalid):
        verify_intent_token(token, PUBLIC, now=NOW + 10**6)


def test_tampered_payload_is_invalid() -> None:
    """Changing the amount in a genuine token's payload breaks its signature."""
    token = issue_intent_token(claims(), PRIVATE, now=NOW)
    header, _, signature = token.split(".")
    payload = payload_of(token)
    payload["amount"] = "1000000"
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalid):
        verify_intent_token(f"{header}.{body}.{signature}", PUBLIC, now=NOW)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "e30.e30.", "...."])
def test_malformed_token_is_invalid(token: str) -> None:
    """Anything that is not a JWT is TokenInvalid."""
    with pytest.raises(TokenInvalid):
        verify_intent_token(token, PUBLIC, now=NOW)


def test_hs256_token_with_the_public_key_as_secret_is_invalid() -> None:
    """The classic algorithm-confusion forgery (HS256 keyed with the public PEM) is refused."""
    payload = payload_of(issue_intent_token(claims(), PRIVATE, now=NOW))
    # Signed by hand: PyJWT itself refuses a PEM key as an HMAC secret, and the forgery
    # must be keyed with exactly what the verifier holds, or it proves nothing.
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = b".".join(_b64url(json.dumps(part).encode()) for part in (header, payload))
    mac = hmac.new(PUBLIC.encode(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + _b64url(mac)).decode()
    with pytest.raises(TokenInvalid):
        verify_intent_token(forged, PUBLIC, now=NOW)


def _b64url(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def test_wrong_audience_is_invalid() -> None:
    """A genuine signature for another audience (e.g. 'link') is TokenInvalid."""
    payload = payload_of(issue_intent_token(claims(), PRIVATE, now=NOW))
    payload["aud"] = "link"
    token = jwt.encode(payload, PRIVATE, algorithm="EdDSA")
    with pytest.raises(TokenInvalid, match="another purpose"):
        verify_intent_token(token, PUBLIC, now=NOW)


@pytest.mark.parametrize("missing", ["aud", "sub", "exp", "amount", "repository", "author_id"])
def test_genuine_token_missing_a_claim_is_invalid(missing: str) -> None:
    """A correctly signed token without a required claim is TokenInvalid, naming the problem."""
    payload = payload_of(issue_intent_token(claims(), PRIVATE, now=NOW))
    del payload[missing]
    token = jwt.encode(payload, PRIVATE, algorithm="EdDSA")
    with pytest.raises(TokenInvalid):
        verify_intent_token(token, PUBLIC, now=NOW)


def test_link_nonce_is_not_an_intent_token() -> None:
    """A SIWE link nonce presented as an intent token is TokenInvalid."""
    nonce = issue_nonce("11" * 32, ttl_s=900, now=datetime.fromtimestamp(NOW, UTC))
    with pytest.raises(TokenInvalid):
        verify_intent_token(nonce, PUBLIC, now=NOW)


def test_keypair_is_pem_pkcs8_and_spki() -> None:
    """The generated keys are PEM: the private key PKCS#8, the public key SubjectPublicKeyInfo."""
    private, public = generate_ed25519_keypair()
    assert private.startswith("-----BEGIN PRIVATE KEY-----")
    assert public.startswith("-----BEGIN PUBLIC KEY-----")
    assert (private, public) != (PRIVATE, PUBLIC)


def _raw(pem: str) -> bytes:
    """The raw public key of a private or public PEM, through the loaders under test."""
    if "PRIVATE" in pem:
        return _private_key(pem).public_key().public_bytes_raw()
    return _public_key(pem).public_bytes_raw()


def test_each_key_is_loaded_once_and_kept_per_pem() -> None:
    """The same PEM gives back the very key object it loaded; another PEM its own key, and
    tokens signed one after the other with two keys verify only with their own."""
    assert _private_key(PRIVATE) is _private_key(PRIVATE)
    assert _public_key(PUBLIC) is _public_key(PUBLIC)
    assert _raw(PRIVATE) == _raw(PUBLIC)
    assert _raw(OTHER_PRIVATE) == _raw(OTHER_PUBLIC)
    assert _raw(PRIVATE) != _raw(OTHER_PRIVATE)

    mine = issue_intent_token(claims(), PRIVATE, now=NOW)
    other = issue_intent_token(claims(), OTHER_PRIVATE, now=NOW)
    assert verify_intent_token(mine, PUBLIC, now=NOW) == claims()
    assert verify_intent_token(other, OTHER_PUBLIC, now=NOW) == claims()
    with pytest.raises(TokenInvalid):
        verify_intent_token(other, PUBLIC, now=NOW)


def test_a_bad_key_is_refused_every_time() -> None:
    """A PEM that does not load is not remembered as if it had: each use raises again."""
    for _ in range(2):
        with pytest.raises(ValueError, match="KDEMO_INTENT_SIGNING_KEY"):
            issue_intent_token(claims(), "not a key either", now=NOW)


@pytest.mark.parametrize(
    ("pem", "field"),
    [("not a key", "KDEMO_INTENT_SIGNING_KEY"), (PUBLIC, "KDEMO_INTENT_SIGNING_KEY")],
    ids=["not-pem", "public-key"],  # the keys are made per run: ids must not show them
)
def test_bad_signing_key_is_named(pem: str, field: str) -> None:
    """A signing key that is not an Ed25519 private PEM names the variable to fix."""
    with pytest.raises(ValueError, match=field):
        issue_intent_token(claims(), pem, now=NOW)


@pytest.mark.parametrize("pem", ["not a key", PRIVATE], ids=["not-pem", "private-key"])
def test_bad_verify_key_is_named(pem: str) -> None:
    """A verify key that is not an Ed25519 public PEM names the variable to fix."""
    token = issue_intent_token(claims(), PRIVATE, now=NOW)
    with pytest.raises(ValueError, match="KDEMO_INTENT_VERIFY_KEY"):
        verify_intent_token(token, pem, now=NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("intent_id", "0x1234"),
        ("intent_id", "0x" + "AB" * 32),
        ("repository", "Octo/Hello"),
        ("repository", "octo"),
        ("number", 0),
        ("number", True),
        ("kind", "discussion"),
        ("source", "push"),
        ("source_id", -3),
        ("html_url", "javascript:alert(1)"),
        ("denomination", "usdc"),
        ("amount", 0),
        ("amount", 10**18 + 1),
        ("author_id", 0),
        ("author_login", ""),
        ("expires_at", 0),
    ],
)
def test_bad_claims_are_refused_naming_the_field(field: str, value: object) -> None:
    """IntentClaims refuses each malformed field with an error that names it."""
    with pytest.raises(ValueError, match=f"^{field}"):
        claims(**{field: value})


@pytest.mark.parametrize(
    ("source", "kind"),
    [("issue", "pull_request"), ("pull_request", "issue"), ("review_comment", "issue")],
)
def test_source_must_fit_the_kind(source: str, kind: str) -> None:
    """A source that cannot occur on that kind of thread is refused."""
    with pytest.raises(ValueError, match=f"^kind: a {source} cannot be on a {kind}"):
        claims(source=source, kind=kind)


def test_claims_are_frozen() -> None:
    """Verified claims cannot be altered after the fact."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        claims().amount = 1  # type: ignore[misc]
