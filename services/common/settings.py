"""Settings shared by every service, read only from `KDEMO_*` environment variables."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BusSettings", "ServiceSettings", "load_or_exit", "setting_problems"]

SettingsT = TypeVar("SettingsT", bound=BaseSettings)
log = logging.getLogger(__name__)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KDEMO_", extra="ignore")

    host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    public_url_frontend: str = "http://127.0.0.1:8000"
    public_url_gateway: str = "http://127.0.0.1:8000"
    public_url_github_app: str = "http://127.0.0.1:8000"


class BusSettings(BaseSettings):
    """Which bus (`KDEMO_BUS`, as in `topology.BUSES`) and how to reach it as this service."""

    model_config = SettingsConfigDict(env_prefix="KDEMO_", extra="ignore")

    bus: Literal["nats", "kafka"] = "nats"
    kafka_bootstrap: str = "127.0.0.1:9092"
    """host:port of a broker; SASL SCRAM-SHA-512 over SASL_PLAINTEXT."""
    kafka_user: str | None = None
    kafka_password: str | None = None
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str | None = None
    nats_password: str | None = None
    nats_stream: str = "KDEMO"


def setting_problems(exc: ValidationError) -> list[str]:
    """One line per bad setting, naming its environment variable, the reason and the fix."""
    lines = []
    for error in exc.errors():
        name = "KDEMO_" + "_".join(str(p) for p in error["loc"]).upper()
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            reason = "missing; set it in the environment (the runtime normally does)"
        lines.append(f"{name}: {reason}")
    return lines


def load_or_exit(settings_class: type[SettingsT], service: str) -> SettingsT:
    """The service's settings; a bad one is named on stderr and in the log, then exit 2."""
    try:
        return settings_class()
    except ValidationError as exc:
        for line in setting_problems(exc):
            log.error("invalid setting", extra={"problem": line})
            print(f"{service}: {line} (see docs/architecture.md)", file=sys.stderr)
        raise SystemExit(2) from None
