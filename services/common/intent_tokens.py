"""Intent tokens: the signing URL's proof that github-app recorded this bounty.

github-app signs an EdDSA (Ed25519) JWT with its private key; frontend holds only
the public key, so it can verify a token but never mint one, and it rebuilds the
typed data from the verified claims instead of trusting a form.

Claims: `aud` = "sign", `sub` = the intent id, `iat`, `exp` = the intent's expiry,
and the fields of `IntentClaims` under their own names (`amount` as a decimal
string, like every amount that leaves a service).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.common.intent_ids import MAX_AMOUNT, SOURCES

__all__ = [
    "AUDIENCE",
    "IntentClaims",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "generate_ed25519_keypair",
    "issue_intent_token",
    "verify_intent_token",
]

AUDIENCE: Final = "sign"
_ALGORITHM: Final = "EdDSA"
_INTENT_ID = re.compile(r"0x[0-9a-f]{64}")
_DENOMINATION = re.compile(r"[A-Z][A-Z0-9]{1,9}")
# which sources can appear on which kind of thread
_KINDS_OF_SOURCE: Final = {
    "issue_comment": {"issue", "pull_request"},
    "issue": {"issue"},
    "pull_request": {"pull_request"},
    "review_comment": {"pull_request"},
}


class TokenError(Exception):
    """A token was refused; `message` says why in one sentence (the caller adds the hint)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TokenInvalid(TokenError):
    """Forged, malformed or meant for another purpose (HTTP 401)."""


class TokenExpired(TokenError):
    """Genuine but past its `exp` (HTTP 410)."""


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def _text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: expected a non-empty string, got {value!r}")


@dataclass(frozen=True)
class IntentClaims:
    """What an intent token vouches for: one recorded bounty and who wrote it."""

    intent_id: str
    repository: str
    number: int
    kind: Literal["issue", "pull_request"]
    source: str
    source_id: int
    html_url: str
    denomination: str
    amount: int
    author_id: int
    author_login: str
    expires_at: int
    """Unix seconds; the EIP-712 deadline and the token's `exp`."""

    def __post_init__(self) -> None:
        if not isinstance(self.intent_id, str) or not _INTENT_ID.fullmatch(self.intent_id):
            raise ValueError(
                f"intent_id: expected 0x + 64 lower-case hex digits, got {self.intent_id!r}; "
                "derive it with services.common.eip712.intent_id"
            )
        _text("repository", self.repository)
        if self.repository != self.repository.lower() or self.repository.count("/") != 1:
            raise ValueError(
                f"repository: expected the lower-case OWNER/NAME, got {self.repository!r}"
            )
        _positive_int("number", self.number)
        if self.kind not in ("issue", "pull_request"):
            raise ValueError(f"kind: expected 'issue' or 'pull_request', got {self.kind!r}")
        if not isinstance(self.source, str) or self.source not in SOURCES:
            raise ValueError(
                f"source: {self.source!r} is not a bounty source; use one of "
                f"{', '.join(sorted(SOURCES))}"
            )
        if self.kind not in _KINDS_OF_SOURCE[self.source]:
            raise ValueError(
                f"kind: a {self.source} cannot be on a {self.kind}; "
                f"use {' or '.join(sorted(_KINDS_OF_SOURCE[self.source]))}"
            )
        _positive_int("source_id", self.source_id)
        _text("html_url", self.html_url)
        if not self.html_url.startswith(("https://", "http://")):
            raise ValueError(f"html_url: expected an http(s) URL, got {self.html_url!r}")
        if not isinstance(self.denomination, str) or not _DENOMINATION.fullmatch(self.denomination):
            raise ValueError(
                f"denomination: expected 2-10 upper-case letters or digits starting with a "
                f"letter, got {self.denomination!r}"
            )
        _positive_int("amount", self.amount)
        if self.amount > MAX_AMOUNT:
            raise ValueError(f"amount: {self.amount} exceeds the maximum of 10^18 whole units")
        _positive_int("author_id", self.author_id)
        _text("author_login", self.author_login)
        _positive_int("expires_at", self.expires_at)


# A service signs (or verifies) with one key for its whole life: each PEM is parsed once
# (parsing was a quarter of the time of issuing a token). The key objects are immutable.
# A PEM that fails to load raises every time (lru_cache keeps only results).
@lru_cache(maxsize=4)
def _private_key(pem: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            "KDEMO_INTENT_SIGNING_KEY: not a PEM private key; expected an unencrypted PKCS#8 "
            "Ed25519 key such as generate_ed25519_keypair() makes"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(
            f"KDEMO_INTENT_SIGNING_KEY: expected an Ed25519 key, got {type(key).__name__}"
        )
    return key


@lru_cache(maxsize=4)
def _public_key(pem: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(
            "KDEMO_INTENT_VERIFY_KEY: not a PEM public key; expected the SubjectPublicKeyInfo "
            "Ed25519 key that matches KDEMO_INTENT_SIGNING_KEY"
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(
            f"KDEMO_INTENT_VERIFY_KEY: expected an Ed25519 key, got {type(key).__name__}"
        )
    return key


def generate_ed25519_keypair() -> tuple[str, str]:
    """A fresh key pair as (private PEM in PKCS#8, public PEM in SubjectPublicKeyInfo)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode(), public.decode()


def issue_intent_token(
    claims: IntentClaims, private_key_pem: str, *, now: float | None = None
) -> str:
    """Sign `claims` as a compact EdDSA JWT for the signing URL."""
    payload: dict[str, Any] = asdict(claims)
    payload.pop("intent_id")
    payload.pop("expires_at")
    payload["amount"] = str(claims.amount)
    payload.update(
        aud=AUDIENCE,
        sub=claims.intent_id,
        iat=int(time.time() if now is None else now),
        exp=claims.expires_at,
    )
    return jwt.encode(payload, _private_key(private_key_pem), algorithm=_ALGORITHM)


def verify_intent_token(
    token: str, public_key_pem: str, *, now: float | None = None
) -> IntentClaims:
    """The claims of a genuine, unexpired intent token; else `TokenInvalid` or `TokenExpired`."""
    key = _public_key(public_key_pem)
    if not isinstance(token, str) or not token:
        raise TokenInvalid("token: missing")
    try:
        # time is judged below against `now` (not PyJWT's clock), after signature and audience
        payload = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],
            audience=AUDIENCE,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "require": ["aud", "sub", "exp"],
            },
        )
    except jwt.InvalidAudienceError as exc:
        raise TokenInvalid("token: meant for another purpose (its audience is not 'sign')") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenInvalid(f"token: not a genuine intent token ({_why_invalid(exc)})") from exc
    try:
        amount = payload["amount"]
        if not isinstance(amount, str) or not amount.isdigit():
            raise ValueError(f"amount: expected a decimal string, got {amount!r}")
        claims = IntentClaims(
            intent_id=payload["sub"],
            repository=payload["repository"],
            number=payload["number"],
            kind=payload["kind"],
            source=payload["source"],
            source_id=payload["source_id"],
            html_url=payload["html_url"],
            denomination=payload["denomination"],
            amount=int(amount),
            author_id=payload["author_id"],
            author_login=payload["author_login"],
            expires_at=payload["exp"],
        )
    except KeyError as exc:
        raise TokenInvalid(f"token: the {exc.args[0]!r} claim is missing") from exc
    except ValueError as exc:
        raise TokenInvalid(f"token: a claim is malformed ({exc})") from exc
    current = time.time() if now is None else now
    if current >= claims.expires_at:
        expired = datetime.fromtimestamp(claims.expires_at, UTC)
        raise TokenExpired(
            f"token: the intent expired at {expired:%Y-%m-%dT%H:%M:%SZ} "
            f"({_ago(current - claims.expires_at)})"
        )
    return claims


def _why_invalid(exc: jwt.InvalidTokenError) -> str:
    """PyJWT's refusal in the words of someone holding a signing URL."""
    if isinstance(exc, jwt.InvalidSignatureError):
        return "its signature does not match this deployment's key"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"it lacks the {exc.claim!r} claim"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "it is signed with another algorithm"
    if isinstance(exc, jwt.DecodeError):
        return "it is cut short or garbled"
    return "it cannot be verified"


def _ago(seconds: float) -> str:
    """`3 h ago`, `5 min ago`, `2 days ago`: how long ago, to the unit people think in."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 2 * 86400:
        return f"{s // 3600} h ago"
    return f"{s // 86400} days ago"
