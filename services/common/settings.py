"""Settings shared by every service, read only from `KDEMO_*` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BusSettings", "ServiceSettings"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KDEMO_", extra="ignore")

    host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    public_url_frontend: str = "http://127.0.0.1:8000"
    public_url_gateway: str = "http://127.0.0.1:8000"
    public_url_github_app: str = "http://127.0.0.1:8000"


class BusSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KDEMO_", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str | None = None
    nats_password: str | None = None
    nats_stream: str = "KDEMO"
