"""One typed model per event's `data`: the source of the JSON Schemas in `schemas/`.

Producers build the model and publish `model.model_dump(mode="json")` (or pass the
model to `events.make_event`); consumers read `Model.model_validate(event.data)`
and use attributes. `scripts/gen_event_schemas.py` writes `schemas/<name>.json`
from these models, and a test fails when the committed files drift from them.

The wire format is the contract, so the field types follow it rather than Python's
convenience: every uint256 and amount is a decimal string (as EIP-712 signs it), and
timestamps stay the RFC 3339 text the producer wrote. Models are frozen and forbid
unknown fields, like the schemas (`additionalProperties: false`). Patterns are
matched by Python's `re`, as jsonschema matches them.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MODELS",
    "Author",
    "BountyMessage",
    "BountyRecorded",
    "BountyRequested",
    "BountySigned",
    "EventData",
    "LinkConfirmed",
    "LinkRefused",
    "LinkRequested",
    "Linked",
]

IntentId = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]
Signature = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{130}$")]
Repository = Annotated[str, Field(pattern=r"^[a-z0-9_.-]+/[a-z0-9_.-]+$")]
Denomination = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{1,9}$")]
Amount = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,18}$")]
"""A positive amount as a decimal string (fits an int64)."""
Uint256 = Annotated[str, Field(pattern=r"^(0|[1-9][0-9]{0,77})$")]
"""A uint256 as a decimal string."""
Login = Annotated[str, Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")]
LinkCode = Annotated[str, Field(pattern=r"^[a-z]{28}$")]
Url = Annotated[str, Field(min_length=1)]
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
"""RFC 3339 text, kept as written (the producers write UTC with a `Z`)."""
PositiveInt = Annotated[int, Field(ge=1)]
Source = Literal["issue_comment", "issue", "pull_request", "review_comment"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", regex_engine="python-re")


class EventData(_Model):
    """The `data` of one event; `event_name` is the `<name>` in `dev.kdemo.<name>.v1`."""

    event_name: ClassVar[str]
    description: ClassVar[str]


class Author(_Model):
    """The comment's author."""

    id: PositiveInt
    login: Login


class BountyRequested(EventData):
    event_name = "bounty.requested"
    description = "github-app recorded an intent; the whole intent, signing URL included"

    intent_id: IntentId
    repository: Repository
    number: PositiveInt
    kind: Literal["issue", "pull_request"]
    source: Source
    source_id: PositiveInt
    match_index: Annotated[int, Field(ge=0, le=4)]
    denomination: Denomination
    amount: Amount
    author: Author
    html_url: Url
    source_url: Url
    signing_url: Url
    created_at: Timestamp
    expires_at: Timestamp
    deadline: Annotated[int, Field(ge=0)]


class BountyMessage(_Model):
    """The EIP-712 Bounty message, uint256 as decimal strings."""

    model_config = ConfigDict(title="Bounty")

    intentId: IntentId  # the EIP-712 field names are the wire names
    repository: Repository
    number: Uint256
    source: Source
    sourceId: Uint256
    denomination: Denomination
    amount: Amount
    deadline: Uint256


class BountySigned(EventData):
    event_name = "bounty.signed"
    description = "frontend verified a wallet's EIP-712 signature of an intent"

    intent_id: IntentId
    address: Address
    signature: Signature
    message: BountyMessage
    chain_id: Uint256
    author_id: PositiveInt
    html_url: Url
    signed_at: Timestamp


class BountyRecorded(EventData):
    event_name = "bounty.recorded"
    description = "gateway wrote a signature to the ledger"

    intent_id: IntentId
    address: Address
    state: Literal["pending", "signed"]
    repository: Repository
    number: PositiveInt
    denomination: Denomination
    amount: Amount
    recorded_at: Timestamp


class LinkRequested(EventData):
    event_name = "identity.link_requested"
    description = "a wallet signed a SIWE message naming a GitHub login"

    code: LinkCode
    address: Address
    login: Login
    message: Annotated[str, Field(min_length=1, max_length=4096)]
    signature: Signature
    nonce: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{8,}$")]
    expires_at: Timestamp


class LinkConfirmed(EventData):
    event_name = "identity.link_confirmed"
    description = "a GitHub account commented $link:<code>$"

    code: LinkCode
    github_id: PositiveInt
    login: Login
    comment_url: Url
    confirmed_at: Timestamp


class Linked(EventData):
    event_name = "identity.linked"
    description = "identity linked a wallet to a GitHub account"

    code: LinkCode
    address: Address
    github_id: PositiveInt
    login: Login
    linked_at: Timestamp


class LinkRefused(EventData):
    event_name = "identity.link_refused"
    description = "identity refused a link, with the reason"

    code: LinkCode
    reason: Annotated[str, Field(min_length=1)]
    address: Address | None
    login: Login | None
    refused_at: Timestamp


MODELS: Final[dict[str, type[EventData]]] = {
    model.event_name: model
    for model in (
        BountyRequested,
        BountySigned,
        BountyRecorded,
        LinkRequested,
        LinkConfirmed,
        Linked,
        LinkRefused,
    )
}
"""Each event name's data model, in the order of `events.EVENT_NAMES`."""
