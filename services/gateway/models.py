"""The public bounty API's answers, as documented in its OpenAPI.

The routes return these models (`api.py` builds the rows as dicts and validates
the answer into its model), so an answer cannot carry a key the OpenAPI does not
document; the OpenAPI conformance tests (tests/services/test_openapi_fuzz.py) check
every answer against them as well.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from services.common.httpapp import Strict

__all__ = ["BountyAnswer", "BountyList"]

UintText = Annotated[str, Field(pattern=r"^[0-9]+$", description="an integer, as decimal text")]


class Quote(Strict):
    """calc's figures for one bounty, in the denomination's base units."""

    base_units: UintText
    fee: UintText
    fee_bps: int
    payout: UintText
    decimals: int


class Total(Strict):
    """The signed bounties of one denomination, summed."""

    denomination: str
    count: int
    amount: UintText
    base_units: UintText
    fee: UintText
    payout: UintText
    decimals: int


class Party(Strict):
    """A signing wallet and, once identity knows it, its GitHub account."""

    address: str
    github_id: int | None
    login: str | None
    verified: bool = Field(description="the wallet is linked to the comment author's account")


class Offer(Party):
    signed_at: str


class Author(Strict):
    github_id: int
    login: str | None = Field(description="null until bounty.requested arrives")


class Bounty(Strict):
    intent_id: str
    repository: str
    number: int
    kind: Literal["issue", "pull_request"]
    html_url: str
    source: Literal["issue_comment", "issue", "pull_request", "review_comment"]
    source_id: int
    # A signature can arrive before its bounty.requested: until then the ledger knows the
    # intent from the signed typed data only, which carries neither URL.
    source_url: str | None = Field(description="null until bounty.requested arrives")
    signing_url: str | None = Field(description="null until bounty.requested arrives")
    author: Author
    denomination: str
    amount: UintText
    deadline: int
    expires_at: str
    created_at: str
    requested: bool = Field(description="bounty.requested arrived (false: only a signature so far)")
    state: Literal["pending", "signed"]
    quote: Quote | None = Field(description="null when calc refuses the denomination")
    funder: Party | None
    offers: list[Offer]


class BountyList(Strict):
    bounties: list[Bounty]
    totals: list[Total]
    warnings: list[str]


class BountyAnswer(Strict):
    bounty: Bounty
    warnings: list[str]
