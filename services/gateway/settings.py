"""gateway's configuration, read only from `KDEMO_*` environment variables."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from services.common.settings import BusSettings, ServiceSettings

__all__ = ["GatewaySettings"]

_SALT = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDR = re.compile(r"[^\s:]+:\d{1,5}")


class GatewaySettings(ServiceSettings, BusSettings):
    """Everything gateway needs; the runtime passes each value as `KDEMO_<NAME>`."""

    database_url: str = Field(min_length=1)
    """`postgresql://ledger:pw@127.0.0.1:port/ledger` (required)."""
    calc_addr: str = "127.0.0.1:50051"
    identity_addr: str = "127.0.0.1:50052"
    eip712_salt: str
    """The deployment's EIP-712 domain salt, `0x` + 64 hex digits (required)."""
    chain_id: int = Field(default=1, ge=1)

    @field_validator("eip712_salt")
    @classmethod
    def _check_salt(cls, value: str) -> str:
        if not _SALT.fullmatch(value):
            raise ValueError(
                "KDEMO_EIP712_SALT must be 0x followed by 64 hex digits; "
                "use the salt from the stack's secrets"
            )
        return value.lower()

    @field_validator("calc_addr", "identity_addr")
    @classmethod
    def _check_addr(cls, value: str) -> str:
        if not _ADDR.fullmatch(value):
            raise ValueError(f"{value!r} is not host:port; pass e.g. 127.0.0.1:50051")
        return value
