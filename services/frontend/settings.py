"""frontend's settings, read only from `KDEMO_*` environment variables."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, field_validator

from services.common.settings import BusSettings, ServiceSettings

__all__ = ["FrontendSettings"]

_SALT = re.compile(r"0x[0-9a-fA-F]{64}")


class FrontendSettings(ServiceSettings, BusSettings):
    """Everything frontend needs: keys to verify tokens and nonces, peers, public URLs."""

    intent_verify_key: str
    """Ed25519 public key (PEM) matching github-app's intent signing key."""
    link_nonce_secret: str
    """HMAC key (hex, at least 16 bytes) for the stateless SIWE nonces."""
    eip712_salt: str
    """The deployment's EIP-712 domain salt, 0x + 64 hex digits."""
    chain_id: int = Field(default=1, ge=1)
    link_ttl: int = Field(default=900, ge=30, le=86400)
    gateway_url: str = "http://127.0.0.1:8000"
    identity_addr: str = "127.0.0.1:50051"

    @field_validator("intent_verify_key")
    @classmethod
    def _pem_public_key(cls, value: str) -> str:
        try:
            key = serialization.load_pem_public_key(value.encode())
        except (ValueError, TypeError) as exc:
            raise ValueError(
                "not a PEM public key; pass the SubjectPublicKeyInfo Ed25519 key that matches "
                "KDEMO_INTENT_SIGNING_KEY"
            ) from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"expected an Ed25519 public key, got {type(key).__name__}")
        return value

    @field_validator("link_nonce_secret")
    @classmethod
    def _hex_secret(cls, value: str) -> str:
        try:
            raw = bytes.fromhex(value)
        except ValueError as exc:
            raise ValueError("not hex; pass at least 32 hex digits") from exc
        if len(raw) < 16:
            raise ValueError(f"{len(raw)} bytes is too short; use at least 16 bytes (32 hex)")
        return value

    @field_validator("eip712_salt")
    @classmethod
    def _salt(cls, value: str) -> str:
        if not _SALT.fullmatch(value):
            raise ValueError("expected 0x followed by 64 hex digits")
        return value.lower()

    @field_validator("public_url_frontend", "gateway_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL such as http://127.0.0.1:8080")
        return value.rstrip("/")

    @property
    def public_domain(self) -> str:
        """host[:port] of frontend's public URL: the SIWE domain a wallet shows."""
        return urlsplit(self.public_url_frontend).netloc

    @property
    def link_uri(self) -> str:
        return f"{self.public_url_frontend}/link"
