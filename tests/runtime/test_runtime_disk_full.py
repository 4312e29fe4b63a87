"""Full disks under PostgreSQL and under nats: a 503 with the reason, nothing accepted lost,
and everything going again once there is space.

`KDEMO_DATA_DIR` puts the stack's data in a directory of the test's own; PostgreSQL's and
nats' directories in it are two small tmpfs mounts, so each can be filled on its own.
github-app is the real service; the others are stand-ins. Mounting needs root.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import nats.errors
import psycopg
import pytest
from nats.js.errors import NotFoundError

from kdemo import topology
from kdemo.errors import KdemoError
from kdemo.flow.payloads import comment_payload
from kdemo.flow.webhook import build_delivery
from kdemo.runtime import busadmin
from kdemo.runtime.local import LocalRuntime
from kdemo.runtime.local.state import stack_id
from kdemo.runtime.natsconfig import ADMIN_USER

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]

STANDIN = [sys.executable, str(Path(__file__).with_name("standin.py"))]
GITHUB_APP = [sys.executable, "-m", "services.github_app"]
SIZES = {"postgres": "192m", "nats": "16m"}


@pytest.fixture
def disks(tmp_path: Path) -> Iterator[tuple[Path, dict[str, Path]]]:
    """(KDEMO_DATA_DIR, node -> its own tmpfs); in /tmp, where kdemo-postgres may enter."""
    data = Path(tempfile.mkdtemp(prefix="kdemo-data-", dir="/tmp"))
    data.chmod(0o755)
    mounts = {node: data / f"{node}-{stack_id(tmp_path / 'state')}" for node in SIZES}
    mounted: list[Path] = []
    try:
        for node, size in SIZES.items():
            mounts[node].mkdir()
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", mounts[node]],
                check=True,
            )
            mounted.append(mounts[node])
        yield data, mounts
    finally:
        for mount in mounted:
            subprocess.run(["umount", mount], check=True)
        shutil.rmtree(data)


def _fill(path: Path) -> None:
    """Write zeros to `path` until its disk has no block left."""
    chunk = 1 << 20
    with path.open("wb", buffering=0) as fh:
        while chunk:
            try:
                fh.write(bytes(chunk))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2  # the rest is smaller than this: go on in smaller pieces
    assert os.statvfs(path).f_bavail == 0


def _wait_for(what: str, predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.2)


class Webhooks:
    """Signed deliveries to github-app, one new comment each; remembers what it accepted."""

    def __init__(self, client: httpx.Client, url: str, secret: str) -> None:
        self.client, self.url, self.secret = client, url, secret
        self.accepted: dict[str, list[str]] = {}  # delivery id -> intent ids
        self.n = 0

    def deliver(self, bounties: int = 1) -> tuple[str, httpx.Response]:
        self.n += 1
        payload = comment_payload(
            "Funding " + " ".join(f"$USDC:{self.n * 10 + k}$" for k in range(bounties)),
            repo="disk/full",
            number=self.n,
            login="filler",
            comment_id=1000 + self.n,
        )
        delivery = build_delivery(payload, self.secret)
        response = self.client.post(
            f"{self.url}/webhook", content=delivery.body, headers=delivery.headers
        )
        if response.status_code == 200:
            self.accepted[delivery.delivery_id] = [
                i["intent_id"] for i in response.json()["intents"]
            ]
        return delivery.delivery_id, response

    def intents(self) -> set[str]:
        return {i for ids in self.accepted.values() for i in ids}


def _published(rt: LocalRuntime, intents: set[str]) -> set[str]:
    """The intents whose `bounty.requested` is in the stream."""

    async def look() -> set[str]:
        found: set[str] = set()
        try:
            nc = await busadmin.connect(rt._access(ADMIN_USER))
        except KdemoError:  # busadmin's "does not answer": nats is restarting
            return found
        try:
            js = nc.jetstream()
            for intent in intents:
                subject = f"kdemo.bounty.requested.{intent}"
                try:
                    await js.get_last_msg(topology.STREAM_NAME, subject, direct=True)
                except NotFoundError:
                    continue
                except (nats.errors.Error, OSError):
                    break  # a restart under way: ask again later
                found.add(intent)
        finally:
            await nc.close()
        return found

    return asyncio.run(look())


def _nats_restarts(rt: LocalRuntime) -> int:
    return next(row.restarts for row in rt.status() if row.name == "nats")


def test_full_disks_answer_503_with_the_reason_lose_nothing_and_recover(
    tmp_path: Path, disks: tuple[Path, dict[str, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, mounts = disks
    monkeypatch.setenv("KDEMO_DATA_DIR", str(data))
    rt = LocalRuntime(
        tmp_path / "state",
        commands={
            n.name: GITHUB_APP if n.name == "github-app" else STANDIN
            for n in topology.service_nodes()
        },
        ready_timeout=60,
    )
    try:
        rt.up(lambda _msg: None)
        stack = rt._stack()
        assert (stack.postgres_dir, stack.nats_dir) == tuple(map(str, mounts.values()))
        # An answer within 10 s each: a full disk must never hang a delivery.
        with httpx.Client(timeout=10) as client:
            hooks = Webhooks(client, rt.public_urls()["github-app"], rt.webhook_secret())
            _, response = hooks.deliver()
            assert response.status_code == 200, response.text

            # PostgreSQL's disk: pages with room still take rows, then the database must grow.
            filler = mounts["postgres"] / "filler"
            _fill(filler)
            for _ in range(400):
                refused, response = hooks.deliver()
                if response.status_code != 200:
                    break
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "database_full", error
            assert "disk space" in error["message"]
            filler.unlink()
            _, response = hooks.deliver()  # PostgreSQL goes on at once
            assert response.status_code == 200, response.text
            with psycopg.connect(rt.database_url("github_app")) as conn:
                rows = conn.execute("SELECT delivery_id FROM deliveries").fetchall()
            assert set(hooks.accepted) <= {r[0] for r in rows}
            assert refused not in {r[0] for r in rows}  # refused: not recorded, not half

            # nats' disk: github-app still accepts (the outbox keeps the event) ...
            _wait_for(
                "every event published", lambda: _published(rt, hooks.intents()) == hooks.intents()
            )
            restarts = _nats_restarts(rt)
            filler = mounts["nats"] / "filler"
            _fill(filler)
            _, response = hooks.deliver(bounties=5)  # five events: more than a page's room
            assert response.status_code == 200, response.text
            nats_log = rt.state_dir / "logs" / "nats.log"
            _wait_for(
                "nats hitting the full disk",
                lambda: "no space left on device" in nats_log.read_text(errors="replace"),
            )
            with psycopg.connect(rt.database_url("github_app")) as conn:
                waiting = conn.execute("SELECT count(*) FROM outbox").fetchall()
            assert waiting[0][0] >= 1
            # ... and once there is space, nats is restarted and the outbox drains.
            filler.unlink()
            _wait_for(
                "every accepted intent in the stream",
                lambda: _published(rt, hooks.intents()) == hooks.intents(),
            )
            assert _nats_restarts(rt) == restarts + 1
            _, response = hooks.deliver()
            assert response.status_code == 200, response.text
    finally:
        rt.down(purge=True)
    assert rt.owned_processes() == []
