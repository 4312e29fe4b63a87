"""services.common.timefmt: the one RFC 3339 formatter, byte-identical to what it replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.timefmt import rfc3339, rfc3339_from_unix, utc_now_rfc3339

MOMENT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
WHOLE = MOMENT.replace(microsecond=0)


@pytest.mark.parametrize(
    ("moment", "precision", "expected"),
    [
        (MOMENT, "seconds", "2026-01-02T03:04:05Z"),
        (MOMENT, "milliseconds", "2026-01-02T03:04:05.678Z"),
        (MOMENT, "microseconds", "2026-01-02T03:04:05.678901Z"),
        (MOMENT, "auto", "2026-01-02T03:04:05.678901Z"),
        (WHOLE, "auto", "2026-01-02T03:04:05Z"),
        (WHOLE, "milliseconds", "2026-01-02T03:04:05.000Z"),
    ],
)
def test_precisions(moment: datetime, precision: str, expected: str) -> None:
    assert rfc3339(moment, precision) == expected  # type: ignore[arg-type]


def test_other_offsets_are_converted_to_utc() -> None:
    east = MOMENT.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert rfc3339(east) == "2026-01-02T03:04:05Z"


def test_from_unix_seconds() -> None:
    assert rfc3339_from_unix(0) == "1970-01-01T00:00:00Z"
    assert rfc3339_from_unix(int(WHOLE.timestamp())) == "2026-01-02T03:04:05Z"


def test_now_is_utc_with_z() -> None:
    text = utc_now_rfc3339("milliseconds")
    assert text.endswith("Z")
    assert len(text) == len("2026-01-02T03:04:05.678Z")


_AWARE = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
)


@given(_AWARE)
def test_identical_to_the_formatters_it_replaced(moment: datetime) -> None:
    # frontend/linking.py, services/common/siwe.py, github_app/replies.py
    assert rfc3339(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # gateway/api.py, github_app/intents.py, frontend/signing.py's signed_at
    assert rfc3339(moment, "auto") == moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    # identity/pairing.py's rfc3339, gateway/ledger.py
    assert rfc3339(moment, "milliseconds") == moment.astimezone(UTC).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")


@given(st.integers(min_value=0, max_value=2**33))
def test_from_unix_identical_to_frontend_signing(unix: int) -> None:
    old = datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rfc3339_from_unix(unix) == old
