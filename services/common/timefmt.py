"""The one timestamp format of the services: RFC 3339 in UTC, with a `Z`.

`rfc3339` and `rfc3339_from_unix` differ only in what they are given. The precision is
the caller's to state, because what is already stored or signed fixes it:

* "seconds": `2026-01-02T03:04:05Z` (the SIWE text, the signing page, link answers);
* "milliseconds": `2026-01-02T03:04:05.678Z` (identity's events and replies, the ledger);
* "auto": Python's own choice, microseconds when there are any, else seconds
  (`2026-01-02T03:04:05.678901Z` or `2026-01-02T03:04:05Z`): the gateway API and
  github-app's intents, as they have always answered.

A naive datetime is taken as local time, as `datetime.astimezone` does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

__all__ = ["Precision", "rfc3339", "rfc3339_from_unix", "utc_now_rfc3339"]

Precision = Literal["seconds", "milliseconds", "microseconds", "auto"]


def rfc3339(moment: datetime, precision: Precision = "seconds") -> str:
    """`moment` in UTC as RFC 3339 with a `Z`, to the given precision (truncated, not rounded)."""
    text = moment.astimezone(UTC).isoformat(timespec=precision)
    return text.removesuffix("+00:00") + "Z"


def rfc3339_from_unix(seconds: float, precision: Precision = "seconds") -> str:
    """Unix seconds (a JWT's `exp`, say) as RFC 3339 in UTC with a `Z`."""
    return rfc3339(datetime.fromtimestamp(seconds, UTC), precision)


def utc_now_rfc3339(precision: Precision = "seconds") -> str:
    """Now, as RFC 3339 in UTC with a `Z`."""
    return rfc3339(datetime.now(UTC), precision)
