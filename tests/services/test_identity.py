"""identity as a real process: link events in, outcomes out, Lookup and LinkStatus over gRPC.

Each test publishes the two halves of a link with the admin bus connection (the
SIWE message signed with a fresh eth-account key), then reads the outcome from
the stream and asks the running identity over gRPC. Wallets, logins, GitHub ids
and codes are fresh per test, so tests share the database and the bus safely.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import nats
import psycopg
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY

from services.common.events import Event, decode, encode, make_event
from services.common.grpc_service import MAX_LOOKUP_ADDRESSES, MAX_RECEIVE_BYTES, grpc_channel
from services.common.siwe import build_link_message, new_link_code
from services.gateway.clients import IdentityClient
from services.protos import identity_pb2, identity_pb2_grpc
from tests.conftest import RunningService

pytestmark = pytest.mark.stack

STREAM = "KDEMO"
DOMAIN = "127.0.0.1:8080"
FRONTEND_AT_DOMAIN = {"KDEMO_PUBLIC_URL_FRONTEND": f"http://{DOMAIN}"}
WAIT_S = 15.0


@dataclass
class Wallet:
    key: str
    address: str


def new_wallet() -> Wallet:
    key = "0x" + secrets.token_hex(32)
    return Wallet(key, Account.from_key(key).address)


def new_login(prefix: str = "dev") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_github_id() -> int:
    return secrets.randbelow(10**9) + 1000


def link_requested(
    wallet: Wallet,
    login: str,
    code: str,
    *,
    nonce: str | None = None,
    code_ttl_s: float = 900,
    signer: Wallet | None = None,
    chain_id: int = 1,
    domain: str = DOMAIN,
) -> Event:
    """The wallet's half, as frontend publishes it; `signer` forges the signature."""
    now = datetime.now(UTC)
    nonce = nonce or secrets.token_hex(20)
    message = build_link_message(
        domain=domain,
        uri=f"http://{domain}/link",
        address=wallet.address,
        login=login,
        chain_id=chain_id,
        nonce=nonce,
        issued_at=now,
        expires_at=now + timedelta(minutes=15),
    )
    signed = Account.sign_message(encode_defunct(text=message), (signer or wallet).key)
    expires = now + timedelta(seconds=code_ttl_s)
    data = {
        "code": code,
        "address": wallet.address,
        "login": login,
        "message": message,
        "signature": signed.signature.to_0x_hex(),
        "nonce": nonce,
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
    }
    return make_event("identity.link_requested", key=code, data=data, source="frontend")


def link_confirmed(code: str, github_id: int, login: str) -> Event:
    """GitHub's half, as github-app publishes it."""
    data = {
        "code": code,
        "github_id": github_id,
        "login": login,
        "comment_url": f"https://github.com/acme/widgets/issues/1#issuecomment-{github_id}",
        "confirmed_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    return make_event("identity.link_confirmed", key=code, data=data, source="github-app")


class Harness:
    """The admin bus connection, identity's database and a gRPC stub to the running identity."""

    def __init__(
        self,
        js: JetStreamContext,
        stub: identity_pb2_grpc.IdentityAsyncStub,
        database_url: str,
    ) -> None:
        self.js = js
        self.stub = stub
        self.database_url = database_url
        self.published_seq = 0
        """The stream sequence of the last message this harness published."""

    async def publish(self, event: Event) -> None:
        ack = await self.js.publish(
            event.nats_subject, encode(event), stream=STREAM, headers={"Nats-Msg-Id": event.id}
        )
        self.published_seq = max(self.published_seq, ack.seq)

    async def settled(self, code: str) -> None:
        """Wait until identity has acked everything this harness published (it acks after its
        transaction committed) and its outbox holds no outcome for `code` (the relay deletes a
        row only on the bus's PubAck): all identity made of those events is on the stream."""
        outcomes = [f"{name}:{code}" for name in ("identity.linked", "identity.link_refused")]
        deadline = time.monotonic() + WAIT_S
        while True:
            info = await self.js.consumer_info(STREAM, "identity")
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            if (floor or 0) >= self.published_seq:
                async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
                    cur = await conn.execute(
                        "SELECT id FROM outbox WHERE id = ANY(%s)", (outcomes,)
                    )
                    queued = await cur.fetchall()
                if not queued:
                    return
            assert time.monotonic() < deadline, (
                f"identity did not finish with seq {self.published_seq} within {WAIT_S} s: {info}"
            )
            await asyncio.sleep(0.05)

    async def outcome(self, code: str) -> Event:
        """The first `identity.linked` or `identity.link_refused` for `code` (waits for it)."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for name in ("identity.linked", "identity.link_refused"):
                subject = f"kdemo.{name}.{code}"
                try:
                    msg = await self.js.get_last_msg(STREAM, subject)
                except NotFoundError:
                    continue
                assert msg.data is not None
                return decode(msg.data, subject)
            await asyncio.sleep(0.1)
        raise AssertionError(f"no outcome for {code} within {WAIT_S} s")

    async def count(self, subject: str) -> int:
        info = await self.js.stream_info(STREAM, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)

    async def dead_letter(self, subject: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The dead-lettered copy of the message published on `subject` (waits for it)."""
        dlq = "kdemo.dlq." + subject.removeprefix("kdemo.")
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                msg = await self.js.get_last_msg(STREAM, dlq)
            except NotFoundError:
                await asyncio.sleep(0.1)
                continue
            assert msg.data is not None
            return json.loads(msg.data), dict(msg.headers or {})
        raise AssertionError(f"nothing dead-lettered on {dlq} within {WAIT_S} s")

    async def status(self, code: str) -> identity_pb2.LinkStatusReply:
        return await self.stub.LinkStatus(identity_pb2.LinkStatusRequest(code=code))

    async def known_status(self, code: str) -> identity_pb2.LinkStatusReply:
        """LinkStatus once identity has consumed an event for `code` (NOT_FOUND until then)."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                return await self.status(code)
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.NOT_FOUND:
                    raise
            await asyncio.sleep(0.1)
        raise AssertionError(f"identity never learnt of {code} within {WAIT_S} s")

    async def link(self, wallet: Wallet, github_id: int, login: str) -> Event:
        """Both halves for a fresh code; the outcome."""
        code = new_link_code()
        await self.publish(link_requested(wallet, login, code))
        await self.publish(link_confirmed(code, github_id, login))
        return await self.outcome(code)


@pytest.fixture
def identity(stack: Any, start_service: Callable[..., Any]) -> Any:
    """A running identity process (the default pairing grace)."""
    return start_service("identity", FRONTEND_AT_DOMAIN)


@pytest.fixture
async def harness(stack: Any, identity: Any) -> AsyncIterator[Harness]:
    nc = await nats.connect(**stack.connect_kwargs("admin"))
    try:
        async with grpc.aio.insecure_channel(identity.grpc_addr) as channel:
            yield Harness(
                nc.jetstream(),
                identity_pb2_grpc.IdentityStub(channel),
                stack.database_url("identity"),
            )
    finally:
        await nc.drain()


async def test_request_then_confirmation_links_the_wallet(harness: Harness) -> None:
    """A request followed by its confirmation links the wallet, once, and Lookup finds it."""
    wallet, login, github_id = new_wallet(), new_login(), new_github_id()
    code = new_link_code()
    await harness.publish(link_requested(wallet, login, code))
    await harness.publish(link_confirmed(code, github_id, login))
    outcome = await harness.outcome(code)

    assert outcome.name == "identity.linked"
    assert outcome.data["address"] == wallet.address.lower()
    assert (outcome.data["github_id"], outcome.data["login"]) == (github_id, login)
    reply = await harness.stub.Lookup(identity_pb2.LookupRequest(addresses=[wallet.address]))
    assert [(a.address, a.github_id, a.login) for a in reply.accounts] == [
        (wallet.address.lower(), github_id, login)
    ]
    assert reply.accounts[0].linked_at == outcome.data["linked_at"]
    status = await harness.status(code)
    assert status.state == identity_pb2.LINK_STATE_LINKED
    assert (status.address, status.github_id, status.reason) == (
        wallet.address.lower(),
        github_id,
        "",
    )
    await harness.settled(code)
    assert await harness.count(f"kdemo.identity.linked.{code}") == 1
    assert await harness.count(f"kdemo.identity.link_refused.{code}") == 0


async def test_confirmation_before_request_waits_and_links(harness: Harness) -> None:
    """A confirmation that arrives first is kept (pending) until its request comes."""
    wallet, login, github_id = new_wallet(), new_login(), new_github_id()
    code = new_link_code()
    await harness.publish(link_confirmed(code, github_id, login))
    status = await harness.known_status(code)
    assert (status.state, status.github_id) == (identity_pb2.LINK_STATE_PENDING, github_id)

    await harness.publish(link_requested(wallet, login, code))
    outcome = await harness.outcome(code)

    assert outcome.name == "identity.linked"
    assert outcome.data["github_id"] == github_id


async def test_login_is_compared_case_insensitively(harness: Harness) -> None:
    """GitHub logins are case-insensitive: `Alice` commenting for `alice` links."""
    wallet, login, github_id = new_wallet(), new_login("alice"), new_github_id()
    code = new_link_code()
    await harness.publish(link_requested(wallet, login, code))
    await harness.publish(link_confirmed(code, github_id, login.upper()))

    outcome = await harness.outcome(code)

    assert outcome.name == "identity.linked"
    assert outcome.data["login"] == login.upper()


async def test_comment_by_another_account_is_refused(harness: Harness) -> None:
    """The commenter must be the login the wallet signed for; otherwise refused, with both."""
    wallet, signed_for, commenter = new_wallet(), new_login("alice"), new_login("mallory")
    code = new_link_code()
    await harness.publish(link_requested(wallet, signed_for, code))
    await harness.publish(link_confirmed(code, new_github_id(), commenter))

    outcome = await harness.outcome(code)

    assert outcome.name == "identity.link_refused"
    assert outcome.data["reason"] == (
        f"the comment was made by @{commenter} but the wallet signed for @{signed_for}"
    )
    assert outcome.data["address"] == wallet.address.lower()
    reply = await harness.stub.Lookup(identity_pb2.LookupRequest(addresses=[wallet.address]))
    assert list(reply.accounts) == []
    status = await harness.status(code)
    assert (status.state, status.reason) == (
        identity_pb2.LINK_STATE_REFUSED,
        outcome.data["reason"],
    )


async def test_wallet_linked_to_another_account_is_refused(harness: Harness) -> None:
    """One wallet belongs to one GitHub account: a second account cannot take it over."""
    wallet = new_wallet()
    first_login, first_id = new_login("first"), new_github_id()
    assert (await harness.link(wallet, first_id, first_login)).name == "identity.linked"

    second = await harness.link(wallet, new_github_id(), new_login("second"))

    assert second.name == "identity.link_refused"
    assert second.data["reason"] == f"wallet already linked to @{first_login}"
    reply = await harness.stub.Lookup(identity_pb2.LookupRequest(addresses=[wallet.address]))
    assert [(a.github_id, a.login) for a in reply.accounts] == [(first_id, first_login)]


async def test_relinking_the_same_wallet_and_account_succeeds(harness: Harness) -> None:
    """Linking a wallet again to the account it already belongs to is a success."""
    wallet, login, github_id = new_wallet(), new_login(), new_github_id()
    first = await harness.link(wallet, github_id, login)

    again = await harness.link(wallet, github_id, login)

    assert (first.name, again.name) == ("identity.linked", "identity.linked")
    reply = await harness.stub.Lookup(identity_pb2.LookupRequest(addresses=[wallet.address]))
    assert [(a.github_id, a.linked_at) for a in reply.accounts] == [
        (github_id, again.data["linked_at"])
    ]


async def test_one_account_may_link_many_wallets(harness: Harness) -> None:
    """One GitHub account may own several wallets; Lookup answers for all of them."""
    login, github_id = new_login(), new_github_id()
    wallets = [new_wallet(), new_wallet()]
    for wallet in wallets:
        assert (await harness.link(wallet, github_id, login)).name == "identity.linked"

    reply = await harness.stub.Lookup(
        identity_pb2.LookupRequest(
            addresses=[w.address.upper().replace("0X", "0x") for w in wallets]
        )
    )

    assert sorted(a.address for a in reply.accounts) == sorted(w.address.lower() for w in wallets)
    assert {a.github_id for a in reply.accounts} == {github_id}


async def test_reused_nonce_is_refused(harness: Harness) -> None:
    """A SIWE nonce is single-use: a second request with it is refused for its own code."""
    nonce = secrets.token_hex(20)
    login = new_login()
    first_code, second_code = new_link_code(), new_link_code()
    await harness.publish(link_requested(new_wallet(), login, first_code, nonce=nonce))
    await harness.publish(link_requested(new_wallet(), login, second_code, nonce=nonce))

    outcome = await harness.outcome(second_code)

    assert outcome.name == "identity.link_refused"
    assert outcome.data["reason"] == "nonce already used"
    assert (await harness.status(first_code)).state == identity_pb2.LINK_STATE_PENDING


async def test_expired_code_is_refused(harness: Harness) -> None:
    """A code that expired before its confirmation is refused; a late comment changes nothing."""
    wallet, login, github_id = new_wallet(), new_login(), new_github_id()
    code = new_link_code()
    await harness.publish(link_requested(wallet, login, code, code_ttl_s=1))
    await asyncio.sleep(1.5)
    await harness.publish(link_confirmed(code, github_id, login))

    outcome = await harness.outcome(code)

    assert outcome.name == "identity.link_refused"
    assert outcome.data["reason"] == "code expired"
    await harness.settled(code)  # the late confirmation included
    assert await harness.count(f"kdemo.identity.linked.{code}") == 0
    assert await harness.count(f"kdemo.identity.link_refused.{code}") == 1
    status = await harness.status(code)
    assert (status.state, status.reason) == (identity_pb2.LINK_STATE_REFUSED, "code expired")


@pytest.mark.parametrize(
    ("case", "make"),
    [
        (
            "signed by another wallet",
            lambda w, login, code: link_requested(w, login, code, signer=new_wallet()),
        ),
        (
            "signed for another chain",
            lambda w, login, code: link_requested(w, login, code, chain_id=5),
        ),
        (
            "made for another site",
            lambda w, login, code: link_requested(w, login, code, domain="evil.example:443"),
        ),
    ],
)
async def test_request_with_a_bad_signature_is_dead_lettered(
    harness: Harness, case: str, make: Callable[[Wallet, str, str], Event]
) -> None:
    """A link request whose SIWE signature does not verify is dead-lettered, never stored."""
    code = new_link_code()
    event = make(new_wallet(), new_login(), code)
    await harness.publish(event)

    body, headers = await harness.dead_letter(event.nats_subject)

    assert body["id"] == event.id, case
    assert headers["Kdemo-Dlq-Consumer"] == "identity"
    reason = headers["Kdemo-Dlq-Reason"]
    assert any(words in reason for words in ("signature", "Chain ID", "domain")), reason
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.status(code)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND


async def test_lookup_of_an_unknown_address_is_empty(harness: Harness) -> None:
    """Addresses identity does not know are simply absent from the reply."""
    reply = await harness.stub.Lookup(identity_pb2.LookupRequest(addresses=[new_wallet().address]))
    assert list(reply.accounts) == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.Lookup(identity_pb2.LookupRequest(addresses=["0x1234"])), "addresses[0]"),
        (
            lambda s: s.Lookup(
                identity_pb2.LookupRequest(addresses=[new_wallet().address, "alice"])
            ),
            "addresses[1]",
        ),
        (lambda s: s.LinkStatus(identity_pb2.LinkStatusRequest(code="ABC123")), "code"),
        (lambda s: s.LinkStatus(identity_pb2.LinkStatusRequest(code="")), "code"),
    ],
)
async def test_malformed_arguments_are_invalid_argument(
    harness: Harness, call: Callable[[Any], Any], field: str
) -> None:
    """A malformed address or code is INVALID_ARGUMENT, and the message names the field."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(harness.stub)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith(f"{field}: ")


async def test_unknown_code_is_not_found(harness: Harness) -> None:
    """LinkStatus of a code identity has never seen is NOT_FOUND."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.status(new_link_code())
    assert err.value.code() is grpc.StatusCode.NOT_FOUND


async def test_unpaired_confirmation_is_refused_after_the_grace(
    stack: Any, start_service: Callable[..., Any]
) -> None:
    """A confirmation whose request never comes is refused as an unknown code after the grace,
    and a request arriving later does not revive it."""
    svc = start_service("identity", {"KDEMO_LINK_PAIR_GRACE": "1"} | FRONTEND_AT_DOMAIN)
    nc = await nats.connect(**stack.connect_kwargs("admin"))
    try:
        async with grpc.aio.insecure_channel(svc.grpc_addr) as channel:
            harness = Harness(
                nc.jetstream(),
                identity_pb2_grpc.IdentityStub(channel),
                stack.database_url("identity"),
            )
            wallet, login, code = new_wallet(), new_login(), new_link_code()
            await harness.publish(link_confirmed(code, new_github_id(), login))

            outcome = await harness.outcome(code)
            await harness.publish(link_requested(wallet, login, code))
            await harness.settled(code)  # the late request included

            assert outcome.name == "identity.link_refused"
            assert (outcome.data["reason"], outcome.data["address"]) == ("unknown link code", None)
            assert await harness.count(f"kdemo.identity.linked.{code}") == 0
            assert await harness.count(f"kdemo.identity.link_refused.{code}") == 1
            assert (await harness.status(code)).reason == "unknown link code"
    finally:
        await nc.drain()


async def test_metrics_record_the_edges(harness: Harness, identity: RunningService) -> None:
    """A link counts identity's edges to postgres (SQL) and nats (NATS) in /metrics."""
    before = await asyncio.to_thread(identity.edge_requests)
    await harness.link(new_wallet(), new_github_id(), new_login())
    # the handlers' two transactions; two deliveries taken and one publish
    grown = {("identity", "postgres"): 2, ("identity", "nats"): 3}
    await asyncio.to_thread(identity.wait_edges_grown, before, grown)
    async with httpx.AsyncClient(base_url=identity.url) as client:
        assert (await client.get("/readyz")).status_code == 200


def _addresses(count: int) -> list[str]:
    return [new_wallet().address for _ in range(count)]


async def test_lookup_takes_at_most_the_address_limit(harness: Harness) -> None:
    """A full batch of addresses is answered; one more is INVALID_ARGUMENT naming the field,
    the count, the limit and the fix."""
    wallet, login, github_id = new_wallet(), new_login(), new_github_id()
    assert (await harness.link(wallet, github_id, login)).name == "identity.linked"
    full = [*_addresses(MAX_LOOKUP_ADDRESSES - 1), wallet.address]

    reply = await harness.stub.Lookup(identity_pb2.LookupRequest(addresses=full))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.stub.Lookup(identity_pb2.LookupRequest(addresses=[*full, wallet.address]))

    assert [(a.address, a.github_id) for a in reply.accounts] == [
        (wallet.address.lower(), github_id)
    ]
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == (
        f"addresses: {MAX_LOOKUP_ADDRESSES + 1} given, at most {MAX_LOOKUP_ADDRESSES} per call; "
        "split the addresses into batches"
    )


HOSTILE_BYTES = [
    ("bad wire type", b"\xff\xff\xff\xff", "INVALID_ARGUMENT", "Wire format"),
    ("truncated", b"\x0a\x05ab", "INVALID_ARGUMENT", "Wire format"),
    ("bad UTF-8", b"\x0a\x02\xff\xfe", "INVALID_ARGUMENT", "UTF-8"),
    ("oversized", b"\x0a" * (MAX_RECEIVE_BYTES + 1), "RESOURCE_EXHAUSTED", "larger than max"),
]


async def test_hostile_bytes_are_refused_and_identity_keeps_serving(
    harness: Harness, identity: RunningService
) -> None:
    """Bytes that are not the method's request, or more than the server reads, are refused
    with the caller's status (never UNKNOWN); identity lives on and answers the next call."""
    assert identity.grpc_addr is not None
    replies: dict[str, Callable[[bytes], Any]] = {
        "Lookup": identity_pb2.LookupReply.FromString,
        "LinkStatus": identity_pb2.LinkStatusReply.FromString,
    }
    async with grpc.aio.insecure_channel(identity.grpc_addr) as channel:
        for method, parse_reply in replies.items():
            path = f"/kdemo.identity.v1.Identity/{method}"
            call = channel.unary_unary(  # the bytes go out as they are
                path, request_serializer=None, response_deserializer=parse_reply
            )
            for case, raw, code, words in HOSTILE_BYTES:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call(raw, timeout=10)
                details = err.value.details() or ""
                assert err.value.code() is getattr(grpc.StatusCode, code), (method, case, details)
                assert words in details, (method, case)
                if code == "INVALID_ARGUMENT":
                    assert details.startswith(f"request: the {len(raw)} bytes sent to {path} ")

    reply = await harness.stub.Lookup(identity_pb2.LookupRequest(addresses=_addresses(1)))
    assert list(reply.accounts) == []
    assert identity.proc.poll() is None


def _wallet_between(low: str, high: str) -> Wallet:
    """A fresh wallet whose lower-case address sorts within [low, high)."""
    while not low <= (wallet := new_wallet()).address.lower() < high:
        pass
    return wallet


async def test_gateway_looks_up_more_than_one_batch(
    harness: Harness, identity: RunningService
) -> None:
    """gateway's client splits more addresses than identity takes per call into batches
    (three calls here), so a ledger page with many signers still learns every account."""
    assert identity.grpc_addr is not None
    login, github_id = new_login(), new_github_id()
    # sorted, one linked wallet opens the first batch and the other is the third batch
    first, last = _wallet_between("0x0", "0x4"), _wallet_between("0xc", "0xg")
    for wallet in (first, last):
        assert (await harness.link(wallet, github_id, login)).name == "identity.linked"
    strangers = ["0x8" + secrets.token_hex(20)[1:] for _ in range(2 * MAX_LOOKUP_ADDRESSES - 1)]
    labels = {"from": "gateway", "to": "identity", "protocol": "gRPC"}
    before = REGISTRY.get_sample_value("kdemo_edge_requests_total", labels) or 0.0

    async with grpc_channel("gateway", "identity", identity.grpc_addr) as channel:
        accounts, warnings = await IdentityClient(channel).lookup(
            [last.address, *strangers, first.address]
        )

    assert warnings == []
    assert REGISTRY.get_sample_value("kdemo_edge_requests_total", labels) == before + 3
    assert {address: (a.github_id, a.login) for address, a in accounts.items()} == {
        first.address.lower(): (github_id, login),
        last.address.lower(): (github_id, login),
    }
