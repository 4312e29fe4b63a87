"""The audit of a chaos run: what the services stored and published, against what they said.

Everything here is read from the stack itself — the services' own tables (read-only, through
`Runtime.query`) and the stream (through the read-only tap) — never from the driver's
bookkeeping, except for the list of answers the services gave, which is what is checked:

- every comment answered 200 has exactly one intent, one `bounty.requested` and a ledger row
  that saw it;
- every signature answered 2xx has exactly one valid ledger row, one `bounty.signed` and one
  `bounty.recorded`;
- every link seen `linked` is linked once, to that login, with one `identity.linked`;
- nothing refused was recorded (a forged signature, a refused comment);
- no dead letters for the run's events.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from kdemo.chaos.driver import FlowRecord
from kdemo.errors import KdemoError
from kdemo.runtime import busadmin
from kdemo.runtime.base import Runtime

__all__ = ["Audit", "Finding", "audit_run", "wait_settled"]

TAP_IDLE_S: Final = 10.0
"""The tap waits this long for a first message: an empty stream sends none."""


@dataclass(frozen=True)
class Finding:
    """One broken promise: `kind` is lost, doubled or recorded-refused."""

    kind: str
    what: str
    """The check, e.g. `bounty.requested`, `ledger row`, `intent`."""
    key: str
    found: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Audit:
    findings: list[Finding] = field(default_factory=list)
    dead_letters: list[dict[str, str]] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)
    """How many keys each check looked at (so a report can show it checked something)."""
    unanswered_intents: int = 0
    """Intents stored for comments whose answer never reached the driver (not a loss: GitHub
    would show the delivery as failed, and a redelivery returns the same intent)."""
    record_s: list[float] = field(default_factory=list)
    """Per signature: from its accepted answer to the ledger's recorded_at."""

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    @property
    def ok(self) -> bool:
        return not self.findings and not self.dead_letters


def ledger_bounties(runtime: Runtime, repo: str) -> dict[str, bool]:
    """The ledger's bounties of the run's repository: intent id → whether it was requested."""
    sql = "SELECT intent_id, requested FROM bounties WHERE repository = lower(%s)"
    return {row[0]: row[1] for row in runtime.query("ledger", sql, [repo])}


def ledger_signatures(runtime: Runtime, repo: str) -> dict[tuple[str, str], tuple[bool, Any]]:
    """The ledger's signatures of the run's repository: (intent id, address) → (valid,
    recorded_at)."""
    sql = (
        "SELECT s.intent_id, s.address, s.valid, s.recorded_at FROM signatures s "
        "JOIN bounties b USING (intent_id) WHERE b.repository = lower(%s)"
    )
    return {(row[0], row[1]): (row[2], row[3]) for row in runtime.query("ledger", sql, [repo])}


def link_outcomes(runtime: Runtime, codes: list[str]) -> dict[str, str]:
    """identity's decision per link code: code → state."""
    sql = "SELECT code, state FROM link_outcomes WHERE code = ANY(%s)"
    return {row[0]: row[1] for row in runtime.query("identity", sql, [codes])}


def read_stream(runtime: Runtime) -> tuple[Counter[str], list[dict[str, str]]]:
    """How many messages the stream holds per subject, and its dead letters."""

    async def collect() -> tuple[Counter[str], list[dict[str, str]]]:
        counts: Counter[str] = Counter()
        dead: list[dict[str, str]] = []
        events = aiter(runtime.bus_tap(deliver_all=True))
        try:
            while True:
                try:
                    event = await asyncio.wait_for(anext(events), TAP_IDLE_S)
                except (TimeoutError, StopAsyncIteration):
                    break
                counts[event.subject] += 1
                if event.dead_lettered:
                    dead.append(
                        {
                            "subject": event.subject,
                            "original_subject": event.headers.get("Kdemo-Original-Subject", ""),
                            "reason": event.headers.get("Kdemo-Dlq-Reason", ""),
                        }
                    )
                if event.pending == 0:
                    break
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        return counts, dead

    return busadmin.run_sync(collect())


def _accepted(records: Iterable[FlowRecord]) -> list[FlowRecord]:
    return [r for r in records if r.comment == "accepted"]


def missing_in_ledger(runtime: Runtime, repo: str, records: list[FlowRecord]) -> int:
    """What the ledger and identity still lack of what was accepted (0 once settled)."""
    accepted = _accepted(records)
    requested = {intent for intent, was in ledger_bounties(runtime, repo).items() if was}
    signed = ledger_signatures(runtime, repo)
    codes = [r.link_code for r in records if r.link == "linked"]
    decided = link_outcomes(runtime, codes)
    return (
        sum(1 for r in accepted if r.intent_id not in requested)
        + sum(
            1
            for r in accepted
            if r.signed == "accepted" and (r.intent_id, r.wallet.lower()) not in signed
        )
        + sum(1 for code in codes if code not in decided)
    )


def wait_settled(
    runtime: Runtime,
    repo: str,
    records: list[FlowRecord],
    *,
    timeout_s: float,
    progress: Callable[[str], None] = lambda _: None,
) -> float:
    """Wait until the ledger holds everything accepted (or `timeout_s` passes); returns the
    seconds waited. Redeliveries after a stop land up to the ack wait later."""
    begun = time.monotonic()
    said = 0
    while True:
        try:
            missing = missing_in_ledger(runtime, repo, records)
        except KdemoError:
            missing = said  # the database is still coming back
        if missing == 0 or time.monotonic() - begun > timeout_s:
            return time.monotonic() - begun
        if missing != said:
            progress(f"waiting for {missing} accepted items to reach the ledger")
            said = missing
        time.sleep(1.0)


def audit_run(runtime: Runtime, repo: str, records: list[FlowRecord]) -> Audit:
    """Check every promise the stack made during the run (see the module's docstring)."""
    audit = Audit()
    found = audit.findings
    stream, dead = read_stream(runtime)
    accepted = _accepted(records)
    keys = {r.intent_id for r in accepted} | {r.link_code for r in records if r.link_code}
    audit.dead_letters = [d for d in dead if set(d["original_subject"].split(".")) & keys]

    intent_rows = runtime.query(
        "github_app",
        "SELECT intent_id, number FROM intents WHERE lower(repository) = lower(%s)",
        [repo],
    )
    intents = Counter(row[0] for row in intent_rows)
    per_comment = Counter(row[1] for row in intent_rows).items()
    bounties = ledger_bounties(runtime, repo)
    signatures = ledger_signatures(runtime, repo)

    def expect_one(what: str, key: str, n: int) -> None:
        audit.checked[what] += 1
        if n != 1:
            found.append(Finding("lost" if n == 0 else "doubled", what, key, n))

    for number, n in per_comment:
        audit.checked["intents per comment"] += 1
        if n > 1:
            found.append(Finding("doubled", "intents per comment", f"#{number}", int(n)))
    answered = {r.intent_id for r in accepted}
    audit.unanswered_intents = len(set(intents) - answered)
    refused_numbers = {r.number for r in records if r.comment == "refused"}
    for number, n in per_comment:
        if number in refused_numbers:
            found.append(Finding("recorded-refused", "intent", f"#{number}", int(n)))

    for r in accepted:
        intent = r.intent_id
        expect_one("intent", intent, intents[intent])
        expect_one("bounty.requested", intent, stream[f"kdemo.bounty.requested.{intent}"])
        expect_one("ledger row requested", intent, 1 if bounties.get(intent) else 0)
        if r.signed == "accepted":
            wallet = r.wallet.lower()
            key = f"{intent}.{wallet}"
            row = signatures.get((intent, wallet))
            expect_one("ledger signature", key, 1 if row and row[0] else 0)
            expect_one("bounty.signed", key, stream[f"kdemo.bounty.signed.{key}"])
            expect_one("bounty.recorded", key, stream[f"kdemo.bounty.recorded.{key}"])
            if row:
                audit.record_s.append(max(0.0, row[1].timestamp() - r.signed_at))
        if r.forged_wallet:
            key = f"{intent}.{r.forged_wallet.lower()}"
            audit.checked["forged signature"] += 1
            stored = int((intent, r.forged_wallet.lower()) in signatures)
            published = stream[f"kdemo.bounty.signed.{key}"]
            if r.forged == "accepted" or stored or published:
                found.append(
                    Finding("recorded-refused", "forged signature", key, stored + published)
                )

    linked = [r for r in records if r.link == "linked"]
    links = {
        row[0]: (row[1], row[2])
        for row in runtime.query(
            "identity",
            "SELECT address, login, code FROM links WHERE address = ANY(%s)",
            [[r.wallet.lower() for r in linked]],
        )
    }
    outcomes = link_outcomes(runtime, [r.link_code for r in linked])
    for r in linked:
        link = links.get(r.wallet.lower())
        expect_one("link", r.link_code, 1 if link and link[0] == r.login else 0)
        expect_one("link outcome", r.link_code, 1 if outcomes.get(r.link_code) == "linked" else 0)
        expect_one("identity.linked", r.link_code, stream[f"kdemo.identity.linked.{r.link_code}"])
    return audit
