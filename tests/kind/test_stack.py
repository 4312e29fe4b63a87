"""Everything a user does with `--runtime kind`, through the CLI, on a real kind cluster."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from typing import Any

import httpx
import nats
import pytest

from kdemo import topology
from kdemo.runtime.kube.conventions import NAMESPACE, container_ports
from kdemo.runtime.natsconfig import ADMIN_USER, inbox_prefix
from kdemo.testing import KindStack
from tests.kind.conftest import all_ready, nodes, status, wait_for

pytestmark = [pytest.mark.kind, pytest.mark.timeout(1800)]

RUNTIME_NODES = [n.name for n in topology.runtime_nodes()]
PUBLIC = sorted(n.name for n in topology.NODES if n.exposed)


def _pods(stack: KindStack) -> dict[str, str]:
    """pod uid -> pod name, for every pod of the stack (a replaced pod has a new uid)."""
    pods = stack.runtime.core().list_namespaced_pod(NAMESPACE).items
    return {p.metadata.uid: p.metadata.name for p in pods}


def _ok(done: Any) -> str:
    assert done.returncode == 0, f"{done.args}:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


def test_up_from_nothing_deploys_every_node(kind_stack: KindStack) -> None:
    """`kdemo up --runtime kind` creates the cluster, says what it waits for, and answers the
    three public URLs on 127.0.0.1."""
    answer = json.loads(kind_stack.up.stdout)
    assert answer["runtime"] == "kind"
    assert sorted(answer["urls"]) == PUBLIC
    assert all(re.fullmatch(r"http://127\.0\.0\.1:\d+", u) for u in answer["urls"].values())
    progress = kind_stack.up.stderr
    if kind_stack.cluster.created:
        assert f"creating the kind cluster {kind_stack.cluster.name}" in progress
    for said in ("loading kdemo:", "applying bus and database", "creating the stream"):
        assert said in progress, progress
    assert all_ready(kind_stack)


def test_second_up_changes_nothing(kind_stack: KindStack) -> None:
    """`up` again reuses the cluster and the image; no pod is replaced, the Secret stays."""
    pods = _pods(kind_stack)
    secret = kind_stack.runtime.webhook_secret()
    done = kind_stack.kdemo("up", "--runtime", "kind", "-o", "json")
    _ok(done)
    assert "reusing the kind cluster" in done.stderr
    assert "is already built" in done.stderr
    assert json.loads(done.stdout)["urls"] == json.loads(kind_stack.up.stdout)["urls"]
    assert _pods(kind_stack) == pods
    assert kind_stack.runtime.webhook_secret() == secret


def test_status_shows_pods_restarts_and_urls(kind_stack: KindStack) -> None:
    """`status -o json`: every node of the topology ready, with its pods, restarts and URL."""
    report = status(kind_stack)
    assert report["runtime"] == "kind"
    assert report["dlq"] == 0
    rows = nodes(report)
    assert list(rows) == RUNTIME_NODES
    urls = json.loads(kind_stack.up.stdout)["urls"]
    for name, row in rows.items():
        assert row["ready"] is True, row
        assert row["state"] == "ready"
        assert isinstance(row["restarts"], int)
        pods = row["pods"]
        assert isinstance(pods, list)
        assert pods
        assert pods[0]["name"].startswith(name)
        wanted = urls.get(name) or f"{name}.{NAMESPACE}.svc:{container_ports(name)[0].port}"
        assert row["url"] == wanted
    table = _ok(kind_stack.kdemo("status"))
    assert "kdemo stack (kind)" in table
    assert "1 pods" in table


def test_the_readme_sequence(kind_stack: KindStack) -> None:
    """simulate-comment → sign → bounties → link-identity → bounties (funder login) → smoke."""
    repo, number, login = f"kind/{secrets.token_hex(3)}", 7, f"kind-{secrets.token_hex(3)}"
    out = _ok(
        kind_stack.kdemo(
            "simulate-comment", "Funding: $USDC:50$", "--repo", repo, "--number", str(number),
            "--user", login,
        )
    )  # fmt: skip
    urls = [line for line in out.splitlines() if "/sign?t=" in line]
    assert len(urls) == 1, out
    page = httpx.get(urls[0], timeout=10)  # what the funder's browser opens
    assert page.status_code == 200
    assert "USDC" in page.text

    assert _ok(kind_stack.kdemo("sign", urls[0])).strip() == (
        f"https://github.com/{repo}/issues/{number}"
    )
    listing = json.loads(_ok(kind_stack.kdemo("bounties", "--repo", repo, "-o", "json")))
    [bounty] = listing["bounties"]
    assert (bounty["state"], bounty["amount"], bounty["denomination"]) == ("signed", "50", "USDC")
    assert bounty["funder"]["login"] is None
    assert listing["totals"][0]["base_units"] == str(50 * 10**6)  # from calc

    linked = kind_stack.kdemo("link-identity", "--github", login)
    assert re.search(r"linked", _ok(linked) + linked.stderr, re.IGNORECASE)
    listing = json.loads(_ok(kind_stack.kdemo("bounties", "--repo", repo, "-o", "json")))
    assert listing["bounties"][0]["funder"]["login"] == login
    assert listing["bounties"][0]["funder"]["verified"] is True

    smoke = kind_stack.kdemo("smoke")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ("gateway", r'"level"'),
        ("postgres", "ready to accept connections"),
        ("nats", "Server is ready"),
    ],
)
def test_logs_of_a_node(kind_stack: KindStack, node: str, expected: str) -> None:
    """`kdemo logs NODE` prints the node's pod log: JSON lines for services."""
    out = _ok(kind_stack.kdemo("logs", node, "--lines", "500"))
    assert re.search(expected, out), out[-2000:]
    if node == "gateway":
        assert all(json.loads(line) for line in out.splitlines() if line.startswith("{"))


@pytest.mark.parametrize("node", RUNTIME_NODES)
def test_kill_replaces_the_pod_and_the_flow_still_works(kind_stack: KindStack, node: str) -> None:
    """`kdemo kill NODE` deletes its pod, prints which; a new pod becomes ready; smoke passes."""
    before = {uid for uid, name in _pods(kind_stack).items() if name.startswith(f"{node}-")}
    done = kind_stack.kdemo("kill", node)
    assert re.fullmatch(rf"killed {node} \(pod {node}-[\w-]+\)\n", _ok(done)), done.stdout

    def replaced() -> bool:
        row = nodes(status(kind_stack))[node]
        pods = (
            kind_stack.runtime.core()
            .list_namespaced_pod(NAMESPACE, label_selector=f"app.kubernetes.io/name={node}")
            .items
        )
        return row["ready"] is True and all(p.metadata.uid not in before for p in pods)

    wait_for(replaced, f"a new ready pod for {node}")
    wait_for(lambda: all_ready(kind_stack), "every node ready")
    smoke = kind_stack.kdemo("smoke")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr


def test_dead_letters_are_listed_and_replayed(kind_stack: KindStack) -> None:
    """A poison event is dead-lettered by gateway; `dlq list` shows it, `status` counts it,
    `dlq replay` sends it back (and, still poison, it is dead-lettered again)."""
    key = "0x" + secrets.token_hex(32)
    event_id = f"bounty.requested:{key}"
    asyncio.run(_publish_poison(kind_stack, key))

    def letters() -> list[dict[str, Any]]:
        found = json.loads(_ok(kind_stack.kdemo("dlq", "list", "-o", "json")))
        return [d for d in found if d["event_id"] == event_id]

    wait_for(lambda: len(letters()) == 1, "the poison event in the dead-letter queue", 60)
    [first] = letters()
    assert first["consumer"] == "gateway"
    assert first["original_subject"] == f"kdemo.bounty.requested.{key}"
    assert status(kind_stack)["dlq"] >= 1
    assert json.loads(_ok(kind_stack.kdemo("dlq", "replay", str(first["seq"]), "-o", "json"))) == {
        "replayed": 1
    }
    wait_for(
        lambda: [d["seq"] for d in letters()] not in ([], [first["seq"]]),
        "the replayed event dead-lettered again",
        60,
    )
    asyncio.run(_delete_letters(kind_stack, [d["seq"] for d in letters()]))
    assert letters() == []


async def _admin(stack: KindStack) -> nats.NATS:
    access = await asyncio.to_thread(stack.runtime._bus_access, ADMIN_USER)
    return await nats.connect(
        servers=[access.url],
        user=access.user,
        password=access.password,
        inbox_prefix=inbox_prefix(ADMIN_USER).encode(),
    )


async def _publish_poison(stack: KindStack, key: str) -> None:
    """A `bounty.requested` whose data breaks its schema: it can never succeed."""
    nc = await _admin(stack)
    try:
        body = {
            "specversion": "1.0",
            "id": f"bounty.requested:{key}",
            "type": "dev.kdemo.bounty.requested.v1",
            "source": "/kdemo/tests/kind",
            "subject": key,
            "datacontenttype": "application/json",
            "data": {"intent_id": "not an intent"},
        }
        await nc.jetstream().publish(
            f"kdemo.bounty.requested.{key}",
            json.dumps(body).encode(),
            headers={"Nats-Msg-Id": f"bounty.requested:{key}"},
        )
    finally:
        await nc.close()


async def _delete_letters(stack: KindStack, seqs: list[int]) -> None:
    nc = await _admin(stack)
    try:
        for seq in seqs:
            await nc.jetstream().delete_msg(topology.STREAM_NAME, seq)
    finally:
        await nc.close()
