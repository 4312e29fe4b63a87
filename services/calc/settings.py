"""calc's settings, read only from `KDEMO_*` environment variables."""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["CalcSettings", "SettingsError", "load_settings"]


class CalcSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KDEMO_", extra="ignore")

    host: str = "127.0.0.1"
    """Bind address of both listeners."""
    grpc_port: int = Field(default=50051, ge=1, le=65535)
    metrics_port: int = Field(default=9464, ge=1, le=65535)
    calc_fee_bps: int = Field(default=250, ge=0, le=10_000)
    """Fee in basis points taken from every payout (250 = 2.5 %)."""


class SettingsError(ValueError):
    """A bad environment variable, named, with the reason and the fix."""


_HINTS = {
    "grpc_port": "a port number from 1 to 65535",
    "metrics_port": "a port number from 1 to 65535",
    "calc_fee_bps": "a whole number of basis points from 0 to 10000 (250 = 2.5 %)",
    "host": "an address to listen on, e.g. 127.0.0.1",
}


def load_settings() -> CalcSettings:
    """Read the environment; raises SettingsError naming the first bad variable."""
    try:
        return CalcSettings()
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise SettingsError(
            f"KDEMO_{field.upper()}={first.get('input')!r}: {first['msg']}; "
            f"set it to {_HINTS.get(field, 'a valid value')}"
        ) from error
