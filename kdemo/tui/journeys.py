"""Each bounty's journey, rebuilt from the CloudEvents on the bus.

comment received → intent (`bounty.requested`) → signed (`bounty.signed`) →
recorded (`bounty.recorded`, state signed) → attributed (the funder's GitHub
account is known: `identity.linked` for a signer's address, or gateway's
`funder.login`). Events may arrive in any order; each stage keeps the earliest
time it was seen. Pure: no I/O, times come from the events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kdemo.runtime.base import TapEvent

__all__ = ["STAGES", "Journey", "JourneyBook", "event_name", "format_duration"]

STAGES = ("received", "intent", "signed", "recorded", "attributed")


def event_name(subject: str) -> str:
    """`kdemo.bounty.signed.<intent>.<wallet>` → `bounty.signed`; dead letters keep `dlq.`."""
    parts = subject.split(".")
    if len(parts) >= 4 and parts[1] == "dlq":
        return f"dlq.{parts[2]}.{parts[3]}"
    return ".".join(parts[1:3]) if len(parts) >= 3 else subject


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def format_duration(seconds: float) -> str:
    """Short and steady-width: 120ms, 4.2s, 3m05s, 2h04m."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds) // 60}m{int(seconds) % 60:02d}s"
    return f"{int(seconds) // 3600}h{(int(seconds) % 3600) // 60:02d}m"


@dataclass
class Journey:
    """One bounty (intent) and when it reached each stage (unix seconds, None: not yet)."""

    intent_id: str
    repository: str = ""
    number: int = 0
    denomination: str = ""
    amount: str = ""
    author: str = ""
    signing_url: str = ""
    signers: set[str] = field(default_factory=set)
    """Lower-case addresses that signed."""
    funder_login: str | None = None
    times: dict[str, float] = field(default_factory=dict)

    def reach(self, stage: str, when: float | None) -> bool:
        """Record the earliest time of `stage`; True when that changed anything."""
        if when is None:
            return False
        known = self.times.get(stage)
        if known is None or when < known:
            self.times[stage] = when
            return True
        return False

    @property
    def pending_signature(self) -> bool:
        return "intent" in self.times and "signed" not in self.times

    @property
    def stage(self) -> str:
        """The furthest stage reached."""
        reached = [s for s in STAGES if s in self.times]
        return reached[-1] if reached else "received"

    def durations(self, now: float) -> list[tuple[str, str]]:
        """(stage, text) per stage after the first: its duration, `…N` while waiting, or ``."""
        out: list[tuple[str, str]] = []
        previous = self.times.get("received")
        waiting = False
        for stage in STAGES[1:]:
            when = self.times.get(stage)
            if when is not None:
                base = previous if previous is not None else when
                out.append((stage, format_duration(max(0.0, when - base))))
                previous = max(when, previous or when)
            elif not waiting and previous is not None:
                out.append((stage, "…" + format_duration(max(0.0, now - previous))))
                waiting = True
            else:
                out.append((stage, ""))
        return out


class JourneyBook:
    """Every journey seen so far, keyed on the intent id."""

    def __init__(self) -> None:
        self.journeys: dict[str, Journey] = {}
        self.logins: dict[str, str] = {}
        """Linked address (lower-case) → GitHub login, from `identity.linked`."""
        self._linked_at: dict[str, float] = {}

    def _journey(self, intent_id: str) -> Journey:
        journey = self.journeys.get(intent_id)
        if journey is None:
            journey = self.journeys[intent_id] = Journey(intent_id)
        return journey

    def apply(self, tap: TapEvent) -> str | None:
        """Fold one bus event in; returns the intent id it changed, if any."""
        if tap.dead_lettered or not isinstance(tap.event, dict):
            return None
        data = tap.event.get("data")
        if not isinstance(data, dict):
            return None
        name = event_name(tap.subject)
        if name == "identity.linked":
            address = str(data.get("address", "")).lower()
            login = str(data.get("login", ""))
            if address and login:
                self.logins[address] = login
                self._linked_at[address] = tap.time
                changed = [j for j in self.journeys.values() if address in j.signers]
                for journey in changed:
                    self._attribute(journey, tap.time)
                return changed[0].intent_id if changed else None
            return None
        intent_id = str(data.get("intent_id", ""))
        if not intent_id:
            return None
        journey = self._journey(intent_id)
        if name == "bounty.requested":
            journey.repository = str(data.get("repository", ""))
            journey.number = int(data.get("number") or 0)
            journey.denomination = str(data.get("denomination", ""))
            journey.amount = str(data.get("amount", ""))
            author = data.get("author")
            journey.author = str(author.get("login", "")) if isinstance(author, dict) else ""
            journey.signing_url = str(data.get("signing_url", ""))
            journey.reach("received", _parse_time(data.get("created_at")) or tap.time)
            journey.reach("intent", tap.time)
        elif name == "bounty.signed":
            journey.signers.add(str(data.get("address", "")).lower())
            journey.reach("signed", tap.time)
        elif name == "bounty.recorded":
            journey.signers.add(str(data.get("address", "")).lower())
            if data.get("state") == "signed":
                journey.reach("recorded", tap.time)
            journey.repository = journey.repository or str(data.get("repository", ""))
            journey.number = journey.number or int(data.get("number") or 0)
            journey.denomination = journey.denomination or str(data.get("denomination", ""))
            journey.amount = journey.amount or str(data.get("amount", ""))
        else:
            return None
        self._attribute(journey, tap.time)
        return intent_id

    def _attribute(self, journey: Journey, when: float) -> None:
        """Attributed once a signer is linked; never before the bounty is recorded."""
        for address in sorted(journey.signers):
            login = self.logins.get(address)
            if login and "recorded" in journey.times:
                journey.funder_login = journey.funder_login or login
                linked = self._linked_at.get(address, when)
                journey.reach("attributed", max(linked, journey.times["recorded"]))
                return

    def apply_funders(self, bounties: Iterable[Mapping[str, Any]], now: float) -> list[str]:
        """Fold gateway's answers in: a bounty whose `funder.login` is known is attributed."""
        changed = []
        for bounty in bounties:
            journey = self.journeys.get(str(bounty.get("intent_id", "")))
            funder = bounty.get("funder")
            if journey is None or not isinstance(funder, dict) or not funder.get("login"):
                continue
            if "attributed" in journey.times or "recorded" not in journey.times:
                continue
            journey.funder_login = str(funder["login"])
            journey.reach("attributed", now)
            changed.append(journey.intent_id)
        return changed

    def newest_pending(self) -> Journey | None:
        """The most recent intent nobody signed yet (what "sign" acts on)."""
        pending = [j for j in self.journeys.values() if j.pending_signature and j.signing_url]
        return max(pending, key=lambda j: j.times["intent"], default=None)

    def ordered(self) -> list[Journey]:
        """Newest first."""
        return sorted(
            self.journeys.values(),
            key=lambda j: max(j.times.values(), default=0.0),
            reverse=True,
        )
