"""CloudEvents envelopes and data schemas: valid events round-trip, bad ones are poison."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from services.common.event_models import BountyRequested, LinkConfirmed
from services.common.events import EventInvalid, data_as, decode, encode, make_event

INTENT = "0x" + "ab" * 32
WALLET = "0x" + "Cd" * 20
CODE = "q" * 28


def requested() -> dict[str, Any]:
    return {
        "intent_id": INTENT,
        "repository": "acme/widgets",
        "number": 42,
        "kind": "issue",
        "source": "issue_comment",
        "source_id": 1001,
        "match_index": 0,
        "denomination": "USDC",
        "amount": "50",
        "author": {"id": 7, "login": "octocat"},
        "html_url": "https://github.com/acme/widgets/issues/42",
        "source_url": "https://github.com/acme/widgets/issues/42#issuecomment-1001",
        "signing_url": "http://127.0.0.1:1/sign?t=x",
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-02T00:00:00Z",
        "deadline": 1767312000,
    }


def test_round_trip_keeps_id_subject_and_data() -> None:
    """An event encodes to CloudEvents JSON and decodes to the same id, key and data."""
    event = make_event("bounty.requested", key=INTENT, data=requested(), source="github-app")
    raw = encode(event)
    envelope = json.loads(raw)
    assert envelope["specversion"] == "1.0"
    assert envelope["type"] == "dev.kdemo.bounty.requested.v1"
    assert envelope["subject"] == INTENT
    assert envelope["id"] == f"bounty.requested:{INTENT}"
    back = decode(raw, event.nats_subject)
    assert (back.id, back.key, back.data) == (event.id, event.key, event.data)
    assert event.nats_subject == f"kdemo.bounty.requested.{INTENT}"


def test_per_wallet_ids_never_collide() -> None:
    """bounty.signed ids and subjects carry the wallet, so two wallets make two events."""
    data = {
        "intent_id": INTENT,
        "address": WALLET,
        "signature": "0x" + "11" * 65,
        "message": {
            "intentId": INTENT,
            "repository": "acme/widgets",
            "number": "42",
            "source": "issue_comment",
            "sourceId": "1001",
            "denomination": "USDC",
            "amount": "50",
            "deadline": "1767312000",
        },
        "chain_id": "1",
        "author_id": 7,
        "html_url": "https://github.com/acme/widgets/issues/42",
        "signed_at": "2026-01-01T00:00:00Z",
    }
    one = make_event("bounty.signed", key=INTENT, data=data, source="frontend", wallet=WALLET)
    other = make_event(
        "bounty.signed", key=INTENT, data=data, source="frontend", wallet="0x" + "ef" * 20
    )
    assert one.id == f"bounty.signed:{INTENT}:{WALLET.lower()}"
    assert one.id != other.id
    assert one.nats_subject != other.nats_subject
    assert decode(encode(one), one.nats_subject).id == one.id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "050"),
        ("amount", "-5"),
        ("denomination", "usdc"),
        ("number", 0),
        ("intent_id", "0x1234"),
        ("kind", "discussion"),
    ],
)
def test_schema_rejects_bad_data(field: str, value: object) -> None:
    """Data that breaks its schema is refused at publish time, naming the field."""
    data = requested() | {field: value}
    with pytest.raises(EventInvalid, match=field):
        make_event("bounty.requested", key=INTENT, data=data, source="github-app")


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"{}",
        json.dumps(
            {"specversion": "1.0", "id": "x", "source": "/s", "type": "com.example.other"}
        ).encode(),
    ],
)
def test_garbage_on_the_bus_is_poison(raw: bytes) -> None:
    """A message that is not a kdemo CloudEvent raises EventInvalid (it will be dead-lettered)."""
    with pytest.raises(EventInvalid):
        decode(raw, f"kdemo.bounty.requested.{INTENT}")


def test_subject_must_match_the_key() -> None:
    """An event published on another key's subject is refused."""
    event = make_event(
        "identity.link_confirmed",
        key=CODE,
        source="github-app",
        data={
            "code": CODE,
            "github_id": 1,
            "login": "octocat",
            "comment_url": "https://github.com/a/b/issues/1#issuecomment-2",
            "confirmed_at": "2026-01-01T00:00:00Z",
        },
    )
    with pytest.raises(EventInvalid, match="subject"):
        decode(encode(event), "kdemo.identity.link_confirmed." + "z" * 28)


def test_a_model_publishes_the_same_json_and_reads_back() -> None:
    """A producer's model publishes exactly the JSON object it was built from, and a
    consumer reads the decoded data back as that model."""
    model = BountyRequested.model_validate(requested())
    event = make_event("bounty.requested", key=INTENT, data=model, source="github-app")
    assert event.data == requested()
    back = data_as(decode(encode(event), event.nats_subject), BountyRequested)
    assert back == model
    assert back.author.login == "octocat"


def test_a_model_is_published_only_under_its_own_name() -> None:
    """Another event's model, or reading data as another event's model, is refused."""
    model = BountyRequested.model_validate(requested())
    with pytest.raises(EventInvalid, match="BountyRequested"):
        make_event("bounty.signed", key=INTENT, data=model, source="frontend", wallet=WALLET)
    event = make_event("bounty.requested", key=INTENT, data=model, source="github-app")
    with pytest.raises(EventInvalid, match="LinkConfirmed"):
        data_as(event, LinkConfirmed)


@pytest.mark.parametrize(
    "time",
    [
        datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=timezone(timedelta(hours=2))),
    ],
    ids=["utc", "whole-second", "offset"],
)
def test_encode_writes_the_event_the_cloudevents_sdk_writes(time: datetime) -> None:
    """`encode` (orjson) writes the JSON the CloudEvents SDK writes for the same event, time
    and non-ASCII text included, and the SDK reads it back as that event."""
    data = requested() | {"signing_url": "http://127.0.0.1:1/sign?t=é✓"}
    event = dataclasses.replace(
        make_event("bounty.requested", key=INTENT, data=data, source="github-app"), time=time
    )
    attributes = {
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.key,
        "time": event.time,
        "datacontenttype": "application/json",
    }
    sdk = JSONFormat().write(CloudEvent(dict(attributes), event.data))
    ours = encode(event)
    assert json.loads(ours) == json.loads(sdk)
    assert list(json.loads(ours)) == list(json.loads(sdk))
    back = JSONFormat().read(None, ours)
    assert back.get_attributes() == attributes | {"specversion": "1.0"}
    assert back.get_data() == event.data
