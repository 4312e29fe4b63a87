"""The public bounty API (read side of the ledger).

- `GET /api/bounties?repo=OWNER/NAME&state=pending|signed&limit=N`
  → `{"bounties": [...], "totals": [...], "warnings": [...]}`
- `GET /api/bounties/{intent_id}` → `{"bounty": {...}, "warnings": [...]}`
- `GET /api/repos/{owner}/{repo}/issues/{number}/bounties` → same shape as the list

Amounts, base units, fees and totals come from calc at read time; funders'
GitHub accounts from identity (one batched `Lookup` per answer). calc unreachable
→ 503; identity unreachable → accounts unknown and a line in `warnings`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request
from psycopg_pool import AsyncConnectionPool

from services.common.httpapp import ApiError, error_responses
from services.common.timefmt import rfc3339

from .clients import Account, CalcClient, IdentityClient
from .ledger import transaction
from .models import BountyAnswer, BountyList

__all__ = ["ApiDeps", "router"]

_REPO: Final = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_INTENT: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_NAME: Final = re.compile(r"[A-Za-z0-9_.-]+")
_NUMBER: Final = re.compile(r"0*[1-9][0-9]{0,17}")  # what `issue_bounties` accepts
_STATES: Final = ("pending", "signed")
MAX_LIMIT: Final = 500

_SELECT: Final = """
SELECT b.*, EXISTS (SELECT 1 FROM signatures s WHERE s.intent_id = b.intent_id AND s.valid)
       AS signed
FROM bounties b
"""
_STATE_FILTER: Final = (
    "(EXISTS (SELECT 1 FROM signatures s WHERE s.intent_id = b.intent_id AND s.valid)) = %s"
)


@dataclass(frozen=True)
class ApiDeps:
    """What the routes use; built in the app's lifespan."""

    pool: AsyncConnectionPool[Any]
    calc: CalcClient
    identity: IdentityClient


async def _deps(request: Request) -> ApiDeps:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
    # for every request
    deps: ApiDeps | None = getattr(request.app.state, "deps", None)
    if deps is None:
        raise ApiError(503, "starting", "gateway is starting", hint="retry in a moment")
    return deps


Deps = Annotated[ApiDeps, Depends(_deps)]
router = APIRouter(prefix="/api", tags=["bounties"])


def _repository(value: str, field: str = "repo") -> str:
    if not _REPO.fullmatch(value):
        raise ApiError(
            400,
            "invalid_repo",
            f"{field}: {value!r} is not a repository",
            field=field,
            hint="pass it as OWNER/NAME, e.g. octo-org/octo-repo",
        )
    return value.lower()


def _state(value: str | None) -> bool | None:
    if value is None:
        return None
    if value not in _STATES:
        raise ApiError(
            400,
            "invalid_state",
            f"state: {value!r} is not a bounty state",
            field="state",
            hint="use state=pending or state=signed, or leave it out",
        )
    return value == "signed"


def _rule(pattern: re.Pattern[str], **more: Any) -> dict[str, Any]:
    """The OpenAPI states a rule the handler enforces itself, with a clearer error than
    FastAPI's own validation would give."""
    return {"json_schema_extra": {"pattern": f"^{pattern.pattern}$", **more}}


_LIST_ERRORS: Final = error_responses(400, 503)


@router.get("/bounties", responses=_LIST_ERRORS)
async def list_bounties(
    deps: Deps,
    repo: Annotated[str | None, Query(description="OWNER/NAME, any case", **_rule(_REPO))] = None,
    state: Annotated[
        str | None,
        Query(description="pending or signed", json_schema_extra={"enum": list(_STATES)}),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="newest first")] = 100,
) -> BountyList:
    """Bounties, newest first, optionally of one repository and in one state."""
    clauses: list[str] = []
    params: list[Any] = []
    if repo is not None:
        clauses.append("b.repository = %s")
        params.append(_repository(repo))
    signed = _state(state)
    if signed is not None:
        clauses.append(_STATE_FILTER)
        params.append(signed)
    where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
    query = f"{_SELECT}{where}ORDER BY b.created_at DESC, b.intent_id LIMIT %s"
    return BountyList.model_validate(await _answer(deps, query, [*params, limit]))


@router.get("/bounties/{intent_id}", responses=error_responses(400, 404, 503))
async def get_bounty(
    deps: Deps, intent_id: Annotated[str, Path(description="0x + 64 hex digits", **_rule(_INTENT))]
) -> BountyAnswer:
    """One bounty by its intent id."""
    if not _INTENT.fullmatch(intent_id):
        raise ApiError(
            400,
            "invalid_intent_id",
            f"intent_id: {intent_id!r} is not an intent id",
            field="intent_id",
            hint="an intent id is 0x followed by 64 hex digits",
        )
    answer = await _answer(
        deps, f"{_SELECT}WHERE b.intent_id = %s", [intent_id.lower()], totals=False
    )
    if not answer["bounties"]:
        raise ApiError(
            404,
            "not_found",
            f"no bounty with intent id {intent_id.lower()}",
            field="intent_id",
            hint="the intent may not have reached the ledger yet; retry in a moment",
        )
    return BountyAnswer.model_validate(
        {"bounty": answer["bounties"][0], "warnings": answer["warnings"]}
    )


@router.get("/repos/{owner}/{repo}/issues/{number}/bounties", responses=_LIST_ERRORS)
async def issue_bounties(
    deps: Deps,
    owner: Annotated[str, Path(**_rule(_NAME))],
    repo: Annotated[str, Path(**_rule(_NAME))],
    number: Annotated[
        str, Path(description="the issue or pull request", **_rule(_NUMBER, maxLength=18))
    ],
) -> BountyList:
    """The bounties of one issue or pull request, oldest first, with totals of the signed ones."""
    repository = _repository(f"{owner}/{repo}", field="repo")
    if not (number.isascii() and number.isdigit()) or len(number) > 18 or int(number) < 1:
        raise ApiError(
            400,
            "invalid_number",
            f"number: {number!r} is not an issue or pull request number",
            field="number",
            hint="pass the positive number shown on GitHub, e.g. 42",
        )
    query = f"{_SELECT}WHERE b.repository = %s AND b.number = %s ORDER BY b.created_at, b.intent_id"
    return BountyList.model_validate(await _answer(deps, query, [repository, int(number)]))


async def _answer(
    deps: ApiDeps, query: str, params: list[Any], *, totals: bool = True
) -> dict[str, Any]:
    async with transaction(deps.pool) as conn:
        cur = await conn.execute(query, params)
        rows = await cur.fetchall()
        ids = [row["intent_id"] for row in rows]
        cur = await conn.execute(
            "SELECT intent_id, address, signed_at FROM signatures "
            "WHERE intent_id = ANY(%s) AND valid ORDER BY signed_at, recorded_at, address",
            (ids,),
        )
        signatures = await cur.fetchall()
    by_intent: dict[str, list[dict[str, Any]]] = {}
    for sig in signatures:
        by_intent.setdefault(sig["intent_id"], []).append(sig)
    accounts, warnings = await deps.identity.lookup([s["address"] for s in signatures])
    items = [(row["denomination"], int(row["amount"])) for row in rows]
    quotes = await deps.calc.quotes(items)
    bounties = []
    for row, item in zip(rows, items, strict=True):
        quote = quotes[item]
        if quote is None:
            warnings.append(
                f"calc has no quote for {row['denomination']} {item[1]} "
                f"(intent {row['intent_id']}); it is left out of the totals"
            )
        bounties.append(_bounty(row, quote, by_intent.get(row["intent_id"], []), accounts))
    summed = [
        item
        for bounty, item in zip(bounties, items, strict=True)
        if bounty["state"] == "signed" and bounty["quote"] is not None
    ]
    answer: dict[str, Any] = {"bounties": bounties}
    if totals:
        answer["totals"] = await deps.calc.summarize(summed)
    answer["warnings"] = warnings
    return answer


def _party(address: str, author_id: int, accounts: dict[str, Account]) -> dict[str, Any]:
    account = accounts.get(address)
    return {
        "address": address,
        "github_id": account.github_id if account else None,
        "login": account.login if account else None,
        "verified": account is not None and account.github_id == author_id,
    }


def _bounty(
    row: dict[str, Any],
    quote: dict[str, Any] | None,
    signatures: list[dict[str, Any]],
    accounts: dict[str, Account],
) -> dict[str, Any]:
    author_id = int(row["author_id"])
    parties = [
        {
            **_party(sig["address"], author_id, accounts),
            "signed_at": rfc3339(sig["signed_at"], "auto"),
        }
        for sig in signatures
    ]
    # the author's own (verified) wallet funds the bounty; otherwise the first signer does
    funder_index = next((i for i, p in enumerate(parties) if p["verified"]), 0)
    funder = None
    if parties:
        funder = {k: v for k, v in parties[funder_index].items() if k != "signed_at"}
    offers = [p for i, p in enumerate(parties) if i != funder_index]
    return {
        "intent_id": row["intent_id"],
        "repository": row["repository"],
        "number": int(row["number"]),
        "kind": row["kind"],
        "html_url": row["html_url"],
        "source": row["source"],
        "source_id": int(row["source_id"]),
        "source_url": row["source_url"],
        "signing_url": row["signing_url"],
        "author": {"github_id": author_id, "login": row["author_login"]},
        "denomination": row["denomination"],
        "amount": str(int(row["amount"])),
        "deadline": int(row["deadline"]),
        "expires_at": rfc3339(row["expires_at"], "auto"),
        "created_at": rfc3339(row["created_at"], "auto"),
        "requested": bool(row["requested"]),
        "state": "signed" if row["signed"] else "pending",
        "quote": quote,
        "funder": funder,
        "offers": offers,
    }
