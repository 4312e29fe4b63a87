"""Reading the ledger from gateway's public bounty API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from kdemo.errors import KdemoError
from kdemo.flow.http import json_answer
from kdemo.flow.payloads import parse_repo

__all__ = ["BountyList", "fetch_bounties", "fetch_issue_bounties", "total_for"]


@dataclass(frozen=True)
class BountyList:
    bounties: list[dict[str, Any]]
    totals: Any = field(default=None)
    """Totals as calc summarised them (gateway's shape), None when the answer has none."""
    warnings: list[str] = field(default_factory=list)
    """What gateway could not tell (e.g. identity unreachable: funders unknown)."""

    def to_json(self) -> dict[str, Any]:
        return {"bounties": self.bounties, "totals": self.totals, "warnings": self.warnings}


def _bounty_list(answer: Any, what: str) -> BountyList:
    if isinstance(answer, list):
        return BountyList(bounties=[b for b in answer if isinstance(b, dict)])
    if isinstance(answer, dict) and isinstance(answer.get("bounties"), list):
        return BountyList(
            bounties=[b for b in answer["bounties"] if isinstance(b, dict)],
            totals=answer.get("totals"),
            warnings=[str(w) for w in answer.get("warnings") or ()],
        )
    raise KdemoError(f"gateway's {what} answer is neither a list nor {{bounties: [...]}}")


def fetch_bounties(
    client: httpx.Client, gateway_url: str, *, repo: str | None = None, state: str | None = None
) -> BountyList:
    """`GET /api/bounties?repo=&state=` — every bounty, or one repository's, or one state's."""
    params: dict[str, str] = {}
    if repo:
        parse_repo(repo)
        params["repo"] = repo
    if state:
        params["state"] = state
    response = client.get(f"{gateway_url.rstrip('/')}/api/bounties", params=params)
    return _bounty_list(json_answer(response, "gateway GET /api/bounties"), "GET /api/bounties")


def fetch_issue_bounties(
    client: httpx.Client, gateway_url: str, repo: str, number: int
) -> BountyList:
    """`GET /api/repos/{owner}/{repo}/issues/{number}/bounties` — the list and calc's totals."""
    owner, name = parse_repo(repo)
    path = f"/api/repos/{quote(owner)}/{quote(name)}/issues/{number}/bounties"
    response = client.get(gateway_url.rstrip("/") + path)
    return _bounty_list(json_answer(response, f"gateway GET {path}"), f"GET {path}")


def total_for(totals: Any, denomination: str) -> Any:
    """The totals entry of one denomination, whether gateway lists or maps them; else None."""
    wanted = denomination.upper()
    if isinstance(totals, dict):
        if wanted in totals:
            return totals[wanted]
        inner = totals.get("by_denomination") or totals.get("denominations")
        if inner is not None:
            return total_for(inner, wanted)
        return None
    if isinstance(totals, list):
        for entry in totals:
            if isinstance(entry, dict) and str(entry.get("denomination", "")).upper() == wanted:
                return entry
    return None
