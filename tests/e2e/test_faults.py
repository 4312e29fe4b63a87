"""Faults: any node killed with SIGKILL mid-flow comes back, and the ledger stays exact."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from kdemo.errors import KdemoError
from kdemo.flow.bounties import fetch_bounties
from kdemo.flow.wallet import Wallet, sign_intent
from kdemo.flow.webhook import simulate_comment
from kdemo.runtime import get_runtime
from kdemo.runtime.base import Runtime

pytestmark = pytest.mark.stack

T = TypeVar("T")
VICTIMS = ["gateway", "nats", "postgres", "github-app", "frontend", "identity", "calc"]


def retry(action: Callable[[], T], *, within_s: float = 60.0) -> T:
    """Run `action` until it succeeds: a killed node is back within seconds."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return action()
        except (KdemoError, httpx.HTTPError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def wait_all_ready(runtime: Runtime, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if all(node.ready for node in runtime.status()):
            return
        time.sleep(0.25)
    raise AssertionError(f"not all ready: {[n.to_json() for n in runtime.status()]}")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    state_dir: Path = tmp_path_factory.mktemp("faults-state")
    saved = os.environ.get("KDEMO_STATE_DIR")
    os.environ["KDEMO_STATE_DIR"] = str(state_dir)
    rt = get_runtime(state_dir)
    rt.up(lambda _: None)
    try:
        yield rt
    finally:
        rt.down(purge=True)
        if saved is None:
            os.environ.pop("KDEMO_STATE_DIR", None)
        else:
            os.environ["KDEMO_STATE_DIR"] = saved


def test_killed_nodes_come_back_and_every_signed_bounty_is_recorded_once(runtime: Runtime) -> None:
    """Kill each node between a comment and its signature: all bounties end signed, once each."""
    urls = runtime.public_urls()
    secret = runtime.webhook_secret()
    wallet = Wallet.from_key("0x" + secrets.token_hex(32))
    repo = f"faults/run-{uuid.uuid4().hex[:8]}"
    restarts_before = {n.name: n.restarts for n in runtime.status()}
    intents: list[str] = []

    with httpx.Client(timeout=5) as client:
        for number, victim in enumerate(VICTIMS, start=1):
            delivered = retry(
                lambda number=number: simulate_comment(  # type: ignore[misc]
                    client,
                    urls["github-app"],
                    secret,
                    "Funding $USDC:" + str(number) + "$",
                    repo=repo,
                    number=number,
                    login="faulty",
                )
            )
            assert len(delivered.intents) == 1
            runtime.kill(victim)  # mid-flow: the intent is recorded, not yet signed
            url = str(delivered.intents[0]["signing_url"])
            retry(lambda url=url: sign_intent(client, url, wallet))  # type: ignore[misc]
            intents.append(str(delivered.intents[0]["intent_id"]))

        wait_all_ready(runtime)

        def all_signed() -> list[dict[str, object]]:
            bounties = fetch_bounties(client, urls["gateway"], repo=repo).bounties
            if sorted(b["intent_id"] for b in bounties) != sorted(intents) or any(
                b["state"] != "signed" for b in bounties
            ):
                raise KdemoError("ledger not complete yet")
            return bounties

        bounties = retry(all_signed)

    assert len(bounties) == len(VICTIMS)
    for bounty in bounties:
        assert bounty["funder"]["address"].lower() == wallet.address.lower()  # type: ignore[index]
        assert bounty["offers"] == []  # one signature per wallet, recorded once
    restarts_after = {n.name: n.restarts for n in runtime.status()}
    for victim in VICTIMS:
        assert restarts_after[victim] > restarts_before[victim], victim
