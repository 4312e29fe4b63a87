"""github-app builds the intent token's claims and the bounty.requested event from one source."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from services.common import intent_ids
from services.common.grammar import BountyMatch
from services.github_app.intents import bounty_requested, intent_claims
from services.github_app.webhook import Source

NOW = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=24)
SOURCE = Source(
    event="issue_comment",
    action="created",
    repository="octo/hello",
    full_name="Octo/Hello",
    number=5,
    kind="issue",
    source="issue_comment",
    source_id=99,
    body="$bounty:USDC:10$",
    author_id=583231,
    author_login="octocat",
    html_url="https://github.com/Octo/Hello/issues/5",
    source_url="https://github.com/Octo/Hello/issues/5#issuecomment-99",
    sender_id=583231,
)
MATCH = BountyMatch(denomination="USDC", amount=10, index=0, text="$bounty:USDC:10$")
URL = "https://frontend.example/sign?t=token"
# The claims' fields the event names differently.
_RENAMED = {"author_id": ("author", "id"), "author_login": ("author", "login")}


def _intent_id() -> str:
    return intent_ids.intent_id(
        SOURCE.repository, SOURCE.number, SOURCE.source, SOURCE.source_id, MATCH.index
    )


def test_every_claim_is_carried_by_the_event_with_the_same_value() -> None:
    claims = intent_claims(_intent_id(), SOURCE, MATCH, EXPIRES)
    event = bounty_requested(claims, SOURCE, MATCH, URL, created=NOW, expires=EXPIRES).model_dump()
    for field in dataclasses.fields(claims):
        value = getattr(claims, field.name)
        if field.name in _RENAMED:
            outer, inner = _RENAMED[field.name]
            assert event[outer][inner] == value, field.name
        elif field.name == "expires_at":
            assert event["deadline"] == value
        elif field.name == "amount":
            assert event["amount"] == str(value)
        else:
            assert event[field.name] == value, field.name


def test_the_event_keeps_its_timestamps_and_what_the_token_leaves_out() -> None:
    claims = intent_claims(_intent_id(), SOURCE, MATCH, EXPIRES)
    event = bounty_requested(claims, SOURCE, MATCH, URL, created=NOW, expires=EXPIRES)
    assert event.created_at == "2026-03-04T05:06:07.890123Z"
    assert event.expires_at == "2026-03-05T05:06:07.890123Z"
    assert event.deadline == int(EXPIRES.timestamp())
    assert event.source_url == SOURCE.source_url
    assert event.signing_url == URL
    assert event.match_index == MATCH.index


def test_an_expiry_other_than_the_claims_deadline_is_refused() -> None:
    claims = intent_claims(_intent_id(), SOURCE, MATCH, EXPIRES)
    with pytest.raises(ValueError, match="deadline"):
        bounty_requested(
            claims, SOURCE, MATCH, URL, created=NOW, expires=EXPIRES + timedelta(seconds=1)
        )
