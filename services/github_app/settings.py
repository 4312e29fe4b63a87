"""github-app's settings, read only from `KDEMO_*` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.intent_tokens import IntentClaims, issue_intent_token
from services.common.settings import BusSettings, ServiceSettings

__all__ = ["MIN_WEBHOOK_SECRET_BYTES", "GithubAppSettings"]

MIN_WEBHOOK_SECRET_BYTES = 16
_PROBE_CLAIMS = IntentClaims(
    intent_id="0x" + "0" * 64,
    repository="kdemo/probe",
    number=1,
    kind="issue",
    source="issue",
    source_id=1,
    html_url="https://github.com/kdemo/probe/issues/1",
    denomination="USDC",
    amount=1,
    author_id=1,
    author_login="kdemo",
    expires_at=1,
)


class GithubAppSettings(ServiceSettings, BusSettings):
    """Everything github-app needs; invalid values stop it at start-up with the reason."""

    model_config = SettingsConfigDict(env_prefix="KDEMO_", extra="ignore")

    database_url: str = Field(min_length=1)
    github_webhook_secret: SecretStr
    intent_signing_key: SecretStr
    intent_ttl: int = Field(default=86400, ge=60, le=366 * 86400)
    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    relay_enabled: bool = True
    """Publish the outbox (off only in tests that show a crash before publishing loses nothing)."""

    @field_validator("github_webhook_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        size = len(value.get_secret_value().encode())
        if size < MIN_WEBHOOK_SECRET_BYTES:
            raise ValueError(
                f"too short: {size} bytes, at least {MIN_WEBHOOK_SECRET_BYTES} are required; "
                "use a random value, e.g. "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        return value

    @field_validator("intent_signing_key")
    @classmethod
    def _usable_key(cls, value: SecretStr) -> SecretStr:
        # Sign once now, so a wrong key fails at start-up instead of at the first bounty.
        issue_intent_token(_PROBE_CLAIMS, value.get_secret_value())
        return value

    @field_validator("github_token", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("github_api_url", "public_url_frontend")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value.rstrip("/")
