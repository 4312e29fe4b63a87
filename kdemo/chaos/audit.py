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

The stream is read the same way on either bus: events by name and key (from the event id,
`<name>:<key>[:<wallet>]`, which NATS subjects and Kafka records carry alike), dead
letters through `Runtime.dlq_list`. What differs is what the bus promises of a repeated
publish (`drops_repeats`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from kdemo import topology
from kdemo.chaos.driver import FlowRecord
from kdemo.errors import KdemoError
from kdemo.runtime import busadmin
from kdemo.runtime.base import DeadLetter, Runtime

__all__ = ["Audit", "Finding", "audit_run", "drops_repeats", "event_key", "wait_settled"]

TAP_FIRST_S: Final = 30.0
"""The tap waits this long for a first message (an empty stream sends none; Kafka's tap
first reads every partition's offsets)."""
TAP_IDLE_S: Final = 10.0
"""Then this long for each next one."""


def drops_repeats(bus: str) -> bool:
    """Whether the bus keeps one copy of an event published twice. NATS does (the stream's
    duplicate window on the event id), so a second copy is a defect. Kafka keeps every
    publish: an acknowledgement lost to a frozen broker, or an outbox row sent again after
    a crash, leaves a copy with the same id, which the consumers skip by that id; on Kafka
    copies are counted (`Audit.copies`) and the tables show they were consumed once."""
    return bus != "kafka"


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
    bus: str = "nats"
    copies: Counter[str] = field(default_factory=Counter)
    """Extra copies of one event on a bus that keeps them (Kafka), per check."""

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


def event_key(event: dict[str, Any] | None) -> tuple[str, str] | None:
    """(event name, key) of a CloudEvent from its id, the same on both buses:
    `bounty.signed:<intent>:<wallet>` → ("bounty.signed", "<intent>.<wallet>"); None for
    a payload that is not a kdemo event."""
    event_id = (event or {}).get("id")
    if not isinstance(event_id, str):
        return None
    name, _, key = event_id.partition(":")
    if name not in topology.EVENT_NAMES or not key:
        return None
    return name, key.replace(":", ".")


def read_stream(runtime: Runtime) -> Counter[tuple[str, str]]:
    """How many records the bus holds per (event name, key), dead letters left out."""

    async def collect() -> Counter[tuple[str, str]]:
        counts: Counter[tuple[str, str]] = Counter()
        events = aiter(runtime.bus_tap(deliver_all=True))
        wait_s = TAP_FIRST_S
        try:
            while True:
                try:
                    event = await asyncio.wait_for(anext(events), wait_s)
                except (TimeoutError, StopAsyncIteration):
                    break
                wait_s = TAP_IDLE_S
                key = event_key(event.event)
                if key is not None and not event.dead_lettered:
                    counts[key] += 1
                if event.pending == 0:
                    break
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        return counts

    return busadmin.run_sync(collect())


def letter_keys(letter: DeadLetter) -> set[str]:
    """The keys a dead letter names: its event id's, else its NATS subject's tokens (a
    payload too broken to carry an id still has its key in the subject there)."""
    return set(letter.event_id.split(":")[1:]) | set(letter.original_subject.split("."))


def run_dead_letters(runtime: Runtime, keys: set[str]) -> list[dict[str, str]]:
    """The dead letters of the run's intents and links, as `kdemo dlq list` shows them."""
    return [
        {
            "subject": letter.subject,
            "original_subject": letter.original_subject,
            "event_id": letter.event_id,
            "consumer": letter.consumer,
            "reason": letter.reason,
        }
        for letter in runtime.dlq_list()
        if letter_keys(letter) & keys
    ]


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
    seconds waited. Redeliveries after a stop land up to the bus's redelivery timeout later."""
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
    audit = Audit(bus=runtime.bus())
    found = audit.findings
    stream = read_stream(runtime)
    accepted = _accepted(records)
    keys = {r.intent_id for r in accepted} | {r.link_code for r in records if r.link_code}
    audit.dead_letters = run_dead_letters(runtime, keys)

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

    def expect_on_bus(event: str, key: str) -> None:
        """One event on the bus; on a bus that keeps repeats, copies of it are counted."""
        n = stream[(event, key)]
        if n > 1 and not drops_repeats(audit.bus):
            audit.copies[event] += n - 1
            n = 1
        expect_one(event, key, n)

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
        expect_on_bus("bounty.requested", intent)
        expect_one("ledger row requested", intent, 1 if bounties.get(intent) else 0)
        if r.signed == "accepted":
            wallet = r.wallet.lower()
            key = f"{intent}.{wallet}"
            row = signatures.get((intent, wallet))
            expect_one("ledger signature", key, 1 if row and row[0] else 0)
            expect_on_bus("bounty.signed", key)
            expect_on_bus("bounty.recorded", key)
            if row:
                audit.record_s.append(max(0.0, row[1].timestamp() - r.signed_at))
        if r.forged_wallet:
            key = f"{intent}.{r.forged_wallet.lower()}"
            audit.checked["forged signature"] += 1
            stored = int((intent, r.forged_wallet.lower()) in signatures)
            published = stream[("bounty.signed", key)]
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
        expect_on_bus("identity.linked", r.link_code)
    return audit
