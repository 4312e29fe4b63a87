"""identity's settings, read only from `KDEMO_*` environment variables."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import BusSettings, ServiceSettings

__all__ = ["IdentitySettings"]


class IdentitySettings(ServiceSettings, BusSettings):
    grpc_port: int = Field(default=50052, ge=0, le=65535)
    metrics_port: int = Field(default=9102, ge=0, le=65535)
    database_url: str = Field(min_length=1)
    """`postgresql://identity:pw@127.0.0.1:port/identity` (required)."""
    chain_id: int = Field(default=1, ge=1)
    link_pair_grace: float = Field(default=60.0, gt=0)
    """Seconds an unpaired `identity.link_confirmed` waits for its request."""
