"""gateway as a real process: the ledger consumes events from a real bus into a real
PostgreSQL, asks a real calc (and identity) at read time, and answers the public API."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import psycopg
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from nats.js.errors import NotFoundError

from services.common import eip712, siwe
from services.common.events import Event, encode, make_event
from services.gateway.models import Bounty

pytestmark = [pytest.mark.stack, pytest.mark.timeout(120)]

FUNDER_KEY = "0x" + "a1" * 32
OTHER_KEY = "0x" + "b2" * 32
AUTHOR_ID = 424242
WAIT_S = 15.0


def _now_text(delta_s: float = 0.0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=delta_s)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def new_intent(
    *,
    repository: str | None = None,
    number: int = 7,
    denomination: str = "USDC",
    amount: int = 50,
    ttl_s: int = 3600,
    source: str = "issue_comment",
) -> dict[str, Any]:
    """The `data` of a fresh `bounty.requested`, in a repository no other test uses."""
    repository = repository or f"kdemo-test/r{secrets.token_hex(6)}"
    source_id = secrets.randbelow(10**9) + 1
    deadline = int(time.time()) + ttl_s
    intent = eip712.intent_id(repository, number, source, source_id, 0)
    return {
        "intent_id": intent,
        "repository": repository,
        "number": number,
        "kind": "issue",
        "source": source,
        "source_id": source_id,
        "match_index": 0,
        "denomination": denomination,
        "amount": str(amount),
        "author": {"id": AUTHOR_ID, "login": "octo-author"},
        "html_url": f"https://github.com/{repository}/issues/{number}",
        "source_url": f"https://github.com/{repository}/issues/{number}#issuecomment-{source_id}",
        "signing_url": f"http://127.0.0.1:1/sign?t={intent}",
        "created_at": _now_text(),
        "expires_at": datetime.fromtimestamp(deadline, UTC).isoformat().replace("+00:00", "Z"),
        "deadline": deadline,
    }


def requested(intent: dict[str, Any]) -> Event:
    return make_event("bounty.requested", key=intent["intent_id"], data=intent, source="github-app")


def signed(
    intent: dict[str, Any],
    salt: str,
    *,
    key: str = FUNDER_KEY,
    claimed: str | None = None,
    signed_at: str | None = None,
    **changes: Any,
) -> Event:
    """A `bounty.signed` as frontend publishes it; `changes` alter the signed typed data."""
    fields = {
        "intent_id": intent["intent_id"],
        "repository": intent["repository"],
        "number": intent["number"],
        "source": intent["source"],
        "source_id": intent["source_id"],
        "denomination": intent["denomination"],
        "amount": int(intent["amount"]),
        "deadline": intent["deadline"],
    } | changes
    typed = eip712.bounty_typed_data(**fields, chain_id=1, salt=salt)
    address = claimed or Account.from_key(key).address
    data = {
        "intent_id": intent["intent_id"],
        "address": address,
        "signature": eip712.sign_typed_data(typed, key),
        "message": typed["message"],
        "chain_id": "1",
        "author_id": AUTHOR_ID,
        "html_url": intent["html_url"],
        "signed_at": signed_at or _now_text(),
    }
    return make_event(
        "bounty.signed", key=intent["intent_id"], wallet=address, data=data, source="frontend"
    )


def wallet(key: str) -> str:
    return str(Account.from_key(key).address).lower()


class Harness:
    """Publishes as the runtime's admin user and reads the gateway's API and the stream."""

    def __init__(self, js: Any, api: httpx.AsyncClient, salt: str, database_url: str) -> None:
        self.js = js
        self.api = api
        self.salt = salt
        self.database_url = database_url

    async def publish(self, event: Event, *, msg_id: str | None = None) -> None:
        await self.js.publish(
            event.nats_subject, encode(event), headers={"Nats-Msg-Id": msg_id or event.id}
        )

    async def bounty_when(
        self, intent_id: str, ok: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """The bounty once `ok(bounty)` holds (fails after WAIT_S)."""
        deadline = time.monotonic() + WAIT_S
        last: Any = None
        while time.monotonic() < deadline:
            resp = await self.api.get(f"/api/bounties/{intent_id}")
            last = resp.json()
            if resp.status_code == 200 and ok(last["bounty"]):
                return dict(last["bounty"])
            await asyncio.sleep(0.1)
        raise AssertionError(f"bounty {intent_id} never got there; last answer: {last}")

    async def count(self, subject: str) -> int:
        info = await self.js.stream_info("KDEMO", subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))

    async def dead_letter(self, event: Event) -> Any:
        """The dead-lettered copy of `event` (fails after WAIT_S)."""
        subject = "kdemo.dlq." + event.nats_subject.removeprefix("kdemo.")
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                return await self.js.get_last_msg("KDEMO", subject)
            except NotFoundError:
                await asyncio.sleep(0.1)
        raise AssertionError(f"nothing dead-lettered on {subject}")

    async def settle(self) -> None:
        """Wait until gateway's durable consumer has taken and acked everything on the stream
        for it (it acks after its transaction committed): what it wrote is in the ledger."""
        deadline = time.monotonic() + WAIT_S
        while True:
            info = await self.js.consumer_info("KDEMO", "gateway")
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return
            assert time.monotonic() < deadline, f"gateway did not take its events: {info}"
            await asyncio.sleep(0.05)

    async def drained(self) -> None:
        """`settle()`, then wait until the ledger's outbox is empty: the events gateway's
        handlers enqueued (in the transactions they committed before acking) are all on the
        stream, since the relay deletes a row only on the bus's PubAck."""
        await self.settle()
        deadline = time.monotonic() + WAIT_S
        while True:
            async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
                rows = await (await conn.execute("SELECT id FROM outbox")).fetchall()
            if not rows:
                return
            assert time.monotonic() < deadline, f"still in the ledger's outbox: {rows}"
            await asyncio.sleep(0.05)


@pytest.fixture
def calc(start_service: Callable[..., Any]) -> Any:
    return start_service("calc")


@pytest.fixture
def gateway(start_service: Callable[..., Any], calc: Any) -> Any:
    return start_service("gateway")


@pytest.fixture
async def harness(stack: Any, gateway: Any) -> AsyncIterator[Harness]:
    nc = await nats.connect(**stack.connect_kwargs("admin"))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as api:
        yield Harness(nc.jetstream(), api, stack.secrets.eip712_salt, stack.database_url("ledger"))
    await nc.close()


# -- the ledger ---------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["requested-first", "signed-first"])
async def test_both_orders_end_in_one_signed_bounty(harness: Harness, order: str) -> None:
    """Whichever event comes first, the ledger ends with one signed bounty, recorded once."""
    intent = new_intent()
    first, second = requested(intent), signed(intent, harness.salt)
    if order == "signed-first":
        first, second = second, first
    await harness.publish(first)
    await harness.bounty_when(intent["intent_id"], lambda b: True)
    await harness.publish(second)
    bounty = await harness.bounty_when(
        intent["intent_id"], lambda b: b["requested"] and b["state"] == "signed"
    )
    assert bounty["author"] == {"github_id": AUTHOR_ID, "login": "octo-author"}
    assert bounty["signing_url"] == intent["signing_url"]
    assert bounty["funder"]["address"] == wallet(FUNDER_KEY)
    assert bounty["offers"] == []
    recorded = f"kdemo.bounty.recorded.{intent['intent_id']}.{wallet(FUNDER_KEY)}"
    await harness.drained()
    assert await harness.count(recorded) == 1


async def test_signature_alone_shows_as_signed_before_its_intent(harness: Harness) -> None:
    """A signature that arrives first is recorded at once from its own typed data."""
    intent = new_intent(amount=75)
    await harness.publish(signed(intent, harness.salt))
    bounty = await harness.bounty_when(intent["intent_id"], lambda b: b["state"] == "signed")
    assert (bounty["requested"], bounty["amount"], bounty["author"]["login"]) == (False, "75", None)
    # ... and answered as documented: the URLs and the login are null until the request comes.
    documented = Bounty.model_validate(bounty)
    assert (documented.source_url, documented.signing_url) == (None, None)


async def test_late_or_repeated_request_never_downgrades(harness: Harness) -> None:
    """bounty.requested after the signature, delivered twice, leaves the bounty signed."""
    intent = new_intent()
    await harness.publish(signed(intent, harness.salt))
    await harness.bounty_when(intent["intent_id"], lambda b: b["state"] == "signed")
    await harness.publish(requested(intent))
    await harness.publish(requested(intent), msg_id="again-" + intent["intent_id"])
    await harness.settle()
    bounty = await harness.bounty_when(intent["intent_id"], lambda b: b["requested"])
    assert bounty["state"] == "signed"


@pytest.mark.parametrize("name", ["bounty.requested", "bounty.signed"])
async def test_a_redelivered_event_changes_nothing(harness: Harness, name: str) -> None:
    """The same event stored twice on the stream (a second message id gets past JetStream's
    deduplication) yields one row, one signature and one `bounty.recorded`."""
    intent = new_intent()
    request = requested(intent)
    await harness.publish(request)
    event = request if name == "bounty.requested" else signed(intent, harness.salt)
    if event is not request:
        await harness.publish(event)
    await harness.publish(event, msg_id="copy-" + event.id)
    await harness.drained()
    listing = (await harness.api.get("/api/bounties", params={"repo": intent["repository"]})).json()
    assert len(listing["bounties"]) == 1
    assert len(listing["bounties"][0]["offers"]) == 0
    expected = "signed" if name == "bounty.signed" else "pending"
    assert listing["bounties"][0]["state"] == expected
    if name == "bounty.signed":
        recorded = f"kdemo.bounty.recorded.{intent['intent_id']}.{wallet(FUNDER_KEY)}"
        assert await harness.count(recorded) == 1


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong-signer", "recovers to"),
        ("wrong-salt", "recovers to"),
        ("field-mismatch", "message.amount"),
        ("expired", "expired"),
    ],
)
async def test_an_unrecordable_signature_is_dead_lettered(
    harness: Harness, case: str, reason: str
) -> None:
    """A bad signature, a contradicting message or an expired intent goes to the DLQ, unwritten."""
    intent = new_intent(ttl_s=-60 if case == "expired" else 3600)
    await harness.publish(requested(intent))
    await harness.bounty_when(intent["intent_id"], lambda b: b["requested"])
    if case == "wrong-signer":
        event = signed(intent, harness.salt, claimed=Account.from_key(OTHER_KEY).address)
    elif case == "wrong-salt":
        event = signed(intent, "0x" + "77" * 32)
    elif case == "field-mismatch":
        event = signed(intent, harness.salt, amount=5000)
    else:
        event = signed(intent, harness.salt)
    await harness.publish(event)
    letter = await harness.dead_letter(event)
    assert reason in letter.headers["Kdemo-Dlq-Reason"]
    assert letter.headers["Kdemo-Dlq-Consumer"] == "gateway"
    bounty = (await harness.api.get(f"/api/bounties/{intent['intent_id']}")).json()["bounty"]
    assert (bounty["state"], bounty["funder"]) == ("pending", None)


async def test_a_signature_made_in_time_counts_even_when_delivered_late(harness: Harness) -> None:
    """A signature accepted before the deadline is recorded though it arrives after it."""
    intent = new_intent(ttl_s=-60)
    made = datetime.fromtimestamp(intent["deadline"] - 30, UTC).isoformat()
    await harness.publish(requested(intent))
    await harness.publish(signed(intent, harness.salt, signed_at=made.replace("+00:00", "Z")))
    bounty = await harness.bounty_when(intent["intent_id"], lambda b: b["state"] == "signed")
    assert bounty["funder"]["address"] == wallet(FUNDER_KEY)


async def test_a_message_breaking_its_schema_is_dead_lettered_by_the_consumer(
    harness: Harness,
) -> None:
    """Data that breaks its schema goes to the DLQ through the real consumer, unwritten."""
    intent = new_intent()
    event = signed(intent, harness.salt)
    envelope = json.loads(encode(event))
    envelope["data"]["message"]["amount"] = "050"  # leading zero: invalid by the schema
    await harness.js.publish(
        event.nats_subject, json.dumps(envelope).encode(), headers={"Nats-Msg-Id": event.id}
    )
    letter = await harness.dead_letter(event)
    assert "message.amount" in letter.headers["Kdemo-Dlq-Reason"]
    answer = await harness.api.get(f"/api/bounties/{intent['intent_id']}")
    assert answer.status_code == 404


async def test_a_signature_contradicting_a_later_intent_stops_counting(harness: Harness) -> None:
    """A signature recorded first whose message the intent contradicts is invalidated."""
    intent = new_intent(amount=50)
    await harness.publish(signed(intent, harness.salt, amount=5000))
    await harness.bounty_when(intent["intent_id"], lambda b: b["state"] == "signed")
    await harness.publish(requested(intent))
    bounty = await harness.bounty_when(intent["intent_id"], lambda b: b["requested"])
    assert (bounty["state"], bounty["amount"], bounty["funder"]) == ("pending", "50", None)


async def test_a_second_wallet_is_an_offer(harness: Harness) -> None:
    """Another wallet's signature is an offer; the first signer stays the funder."""
    intent = new_intent()
    await harness.publish(requested(intent))
    await harness.publish(signed(intent, harness.salt))
    await harness.bounty_when(intent["intent_id"], lambda b: b["funder"] is not None)
    await harness.publish(signed(intent, harness.salt, key=OTHER_KEY))
    bounty = await harness.bounty_when(intent["intent_id"], lambda b: len(b["offers"]) == 1)
    assert bounty["funder"]["address"] == wallet(FUNDER_KEY)
    assert [(o["address"], o["verified"]) for o in bounty["offers"]] == [(wallet(OTHER_KEY), False)]


# -- the API ------------------------------------------------------------------------------


async def test_filters_and_totals_come_from_the_ledger_and_calc(harness: Harness) -> None:
    """repo and state filter the list; totals sum the signed bounties through calc."""
    repository = f"Kdemo-Test/R{secrets.token_hex(6)}"
    paid, open_ = (
        new_intent(repository=repository.lower()),
        new_intent(repository=repository.lower(), number=8, denomination="DAI", amount=3),
    )
    for event in (requested(paid), requested(open_), signed(paid, harness.salt)):
        await harness.publish(event)
    await harness.bounty_when(paid["intent_id"], lambda b: b["state"] == "signed")
    await harness.bounty_when(open_["intent_id"], lambda b: b["requested"])

    async def ids(**params: str) -> list[str]:
        answer = await harness.api.get("/api/bounties", params={"repo": repository, **params})
        return sorted(b["intent_id"] for b in answer.json()["bounties"])

    assert await ids() == sorted([paid["intent_id"], open_["intent_id"]])
    assert await ids(state="signed") == [paid["intent_id"]]
    assert await ids(state="pending") == [open_["intent_id"]]
    answer = (await harness.api.get("/api/bounties", params={"repo": repository})).json()
    [total] = answer["totals"]
    assert (total["denomination"], total["count"], total["amount"], total["base_units"]) == (
        "USDC",
        1,
        "50",
        "50000000",
    )
    assert int(total["fee"]) + int(total["payout"]) == 50_000_000
    quote = next(b for b in answer["bounties"] if b["intent_id"] == paid["intent_id"])["quote"]
    assert (quote["base_units"], quote["decimals"]) == ("50000000", 6)
    issue = (await harness.api.get(f"/api/repos/{repository}/issues/8/bounties")).json()
    assert [b["intent_id"] for b in issue["bounties"]] == [open_["intent_id"]]
    assert issue["totals"] == []


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/api/bounties", {"state": "paid"}, 400, "state"),
        ("/api/bounties", {"repo": "no-slash"}, 400, "repo"),
        ("/api/bounties", {"repo": "a/b/c"}, 400, "repo"),
        ("/api/bounties", {"limit": "0"}, 400, "limit"),
        ("/api/bounties/0x1234", {}, 400, "intent_id"),
        ("/api/bounties/0x" + "ab" * 32, {}, 404, "intent_id"),
        ("/api/repos/o/r/issues/zero/bounties", {}, 400, "number"),
        ("/api/repos/o/r/issues/0/bounties", {}, 400, "number"),
        ("/api/repos/o/r!/issues/1/bounties", {}, 400, "repo"),
    ],
)
async def test_bad_requests_name_the_field(
    harness: Harness, path: str, params: dict[str, str], status: int, field: str
) -> None:
    """Every malformed or unknown request gets the documented status and names its field."""
    resp = await harness.api.get(path, params=params)
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["field"] == field
    assert error["hint"]


async def test_identity_down_degrades_to_unknown_accounts(harness: Harness) -> None:
    """Without identity the answer still comes, with null logins and a warning."""
    intent = new_intent()
    await harness.publish(signed(intent, harness.salt))
    await harness.bounty_when(intent["intent_id"], lambda b: b["funder"] is not None)
    answer = (await harness.api.get(f"/api/bounties/{intent['intent_id']}")).json()
    assert answer["bounty"]["funder"] == {
        "address": wallet(FUNDER_KEY),
        "github_id": None,
        "login": None,
        "verified": False,
    }
    assert any("identity" in warning for warning in answer["warnings"])


async def test_calc_down_is_a_503(stack: Any, start_service: Callable[..., Any], calc: Any) -> None:
    """Without calc the bounty API answers 503 and says which service is missing."""
    gateway = start_service("gateway", {"KDEMO_CALC_ADDR": "127.0.0.1:9"})
    nc = await nats.connect(**stack.connect_kwargs("admin"))
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as api:
            harness = Harness(
                nc.jetstream(), api, stack.secrets.eip712_salt, stack.database_url("ledger")
            )
            intent = new_intent()
            await harness.publish(requested(intent))
            deadline = time.monotonic() + WAIT_S
            resp = await api.get(f"/api/bounties/{intent['intent_id']}")
            while resp.status_code == 404 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                resp = await api.get(f"/api/bounties/{intent['intent_id']}")
    finally:
        await nc.close()
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "calc_unavailable"


async def test_edges_are_counted(harness: Harness) -> None:
    """API calls count as browser → gateway unless frontend says it called; the client edges too."""

    def browser_calls(text: str) -> float:
        for line in text.splitlines():
            if line.startswith("kdemo_edge_requests_total{") and 'from="browser"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    intent = new_intent()
    await harness.publish(signed(intent, harness.salt))
    await harness.bounty_when(intent["intent_id"], lambda b: b["state"] == "signed")
    before = browser_calls((await harness.api.get("/metrics")).text)
    await harness.api.get("/api/bounties", headers={"X-Kdemo-Client": "frontend"})
    await harness.api.get("/api/bounties")
    text = (await harness.api.get("/metrics")).text
    assert browser_calls(text) == before + 1
    for target, protocol in (
        ("postgres", "SQL"),
        ("nats", "NATS"),
        ("calc", "gRPC"),
        ("identity", "gRPC"),
    ):
        assert (
            f'kdemo_edge_requests_total{{from="gateway",protocol="{protocol}",to="{target}"}}'
        ) in text


# -- with identity ------------------------------------------------------------------------


@pytest.fixture
def identity(start_service: Callable[..., Any]) -> Any:
    return start_service("identity")


async def link_wallet(harness: Harness, stack: Any, key: str, github_id: int, login: str) -> None:
    """Link a wallet to a GitHub account the way frontend and github-app do, over the bus."""
    address = Account.from_key(key).address
    frontend = f"127.0.0.1:{stack.ports['frontend']}"
    now = datetime.now(UTC)
    nonce = siwe.issue_nonce(stack.secrets.link_nonce_secret, ttl_s=900)
    message = siwe.build_link_message(
        domain=frontend,
        uri=f"http://{frontend}/link",
        address=address,
        login=login,
        chain_id=1,
        nonce=nonce,
        issued_at=now,
        expires_at=now + timedelta(minutes=15),
    )
    signature = Account.sign_message(encode_defunct(text=message), key).signature
    code = siwe.new_link_code()
    await harness.publish(
        make_event(
            "identity.link_requested",
            key=code,
            source="frontend",
            data={
                "code": code,
                "address": address,
                "login": login,
                "message": message,
                "signature": "0x" + bytes(signature).hex(),
                "nonce": nonce,
                "expires_at": _now_text(900),
            },
        )
    )
    await harness.publish(
        make_event(
            "identity.link_confirmed",
            key=code,
            source="github-app",
            data={
                "code": code,
                "github_id": github_id,
                "login": login,
                "comment_url": "https://github.com/o/r/issues/1",
                "confirmed_at": _now_text(),
            },
        )
    )


async def test_the_authors_linked_wallet_is_the_verified_funder(
    harness: Harness, stack: Any, identity: Any
) -> None:
    """A signer linked to the comment's author is the funder, verified, even if it signed last."""
    author_key = "0x" + secrets.token_hex(32)
    intent = new_intent()
    await harness.publish(requested(intent))
    await harness.publish(signed(intent, harness.salt, key=OTHER_KEY))
    await harness.publish(signed(intent, harness.salt, key=author_key))
    await link_wallet(harness, stack, author_key, AUTHOR_ID, "octo-author")
    bounty = await harness.bounty_when(
        intent["intent_id"], lambda b: b["funder"] is not None and b["funder"]["verified"]
    )
    assert bounty["funder"] == {
        "address": wallet(author_key),
        "github_id": AUTHOR_ID,
        "login": "octo-author",
        "verified": True,
    }
    assert [(o["address"], o["login"], o["verified"]) for o in bounty["offers"]] == [
        (wallet(OTHER_KEY), None, False)
    ]
