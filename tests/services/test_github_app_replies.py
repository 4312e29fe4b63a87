"""Reply comments through a fake GitHub API on 127.0.0.1: posted once, never twice, never echoed.

The GitHub REST API is the one external service these tests replace: a small real
HTTP server records what github-app asks of it and can fail on purpose.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from kdemo.flow.payloads import comment_payload
from services.common.failpoints import CRASH_STATUS
from services.common.grammar import find_bounties
from tests.conftest import RunningService, Stack
from tests.services.test_github_app import deliver, query, unique_repo

pytestmark = pytest.mark.stack

TOKEN = "ghp_test_token_0123456789"
OWN = {"login": "kdemo-replies", "id": 4242}


@dataclass
class FakeGitHub:
    """Issue comments in memory; `post_failures` fail the next POSTs ("lost" or "refused")."""

    user_status: int = 200
    post_failures: list[str] = field(default_factory=list)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    """(method, path, Authorization header) of every request."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def posts(self, path: str) -> int:
        return sum(1 for method, p, _ in self.requests if method == "POST" and p == path)

    def lists(self, path: str) -> int:
        return sum(1 for method, p, _ in self.requests if method == "GET" and p == path)

    def bodies(self, path: str) -> list[str]:
        with self.lock:
            return [c["body"] for c in self.comments.get(path, [])]

    def settled_comments(
        self, stack: Stack, repo: str, number: int, within_s: float = 15.0
    ) -> list[str]:
        """The thread's comments once github-app marked every reply it queued for the thread
        posted. It marks a reply only after GitHub took it and never claims a marked one again,
        so from then on nothing more can be posted there."""
        deadline = time.monotonic() + within_s
        while True:
            rows = query(
                stack,
                "SELECT posted_at FROM github_replies WHERE repository = %s AND number = %s",
                (repo, number),
            )
            if rows and all(r["posted_at"] is not None for r in rows):
                return self.bodies(_comments_path(repo, number))
            assert time.monotonic() < deadline, f"replies never all posted: {self.requests}"
            time.sleep(0.05)


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> str:
            path = self.path.split("?", 1)[0]
            with fake.lock:
                fake.requests.append((self.command, path, self.headers.get("Authorization", "")))
            return path

        def do_GET(self) -> None:
            path = self._record()
            if path == "/user":
                if fake.user_status != 200:
                    self._answer(fake.user_status, {"message": "unavailable"})
                else:
                    self._answer(200, OWN)
                return
            with fake.lock:
                self._answer(200, list(fake.comments.get(path, [])))

        def do_POST(self) -> None:
            path = self._record()
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))["body"]
            with fake.lock:
                mode = fake.post_failures.pop(0) if fake.post_failures else "ok"
                if mode in ("ok", "lost"):
                    thread = fake.comments.setdefault(path, [])
                    thread.append({"id": len(thread) + 1, "body": body})
            if mode == "ok":
                self._answer(201, {"id": 1, "body": body})
            else:  # "lost": created but the answer fails; "refused": nothing created
                self._answer(502 if mode == "lost" else 500, {"message": mode})

    return Handler


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def app(github: FakeGitHub, start_service: Callable[..., RunningService]) -> RunningService:
    return start_service(
        "github-app", {"KDEMO_GITHUB_TOKEN": TOKEN, "KDEMO_GITHUB_API_URL": github.url}
    )


def _comments_path(repo: str, number: int) -> str:
    return f"/repos/{repo}/issues/{number}/comments"


def _own_account_known(app: RunningService) -> bool:
    metrics = httpx.get(f"{app.url}/metrics").text
    return "kdemo_github_app_own_account_known 1.0" in metrics


def test_reply_is_posted_once_with_a_hidden_marker(
    app: RunningService, github: FakeGitHub, stack: Stack
) -> None:
    """A bounty gets one reply with its signing URL and marker, and the reply never matches."""
    repo = unique_repo()
    payload = comment_payload("$USDC:50$", repo=repo, number=3, login="mona")
    [intent] = deliver(app.url, stack.secrets.webhook_secret, payload).json()["intents"]

    path = _comments_path(repo, 3)
    [reply] = github.settled_comments(stack, repo, 3)
    assert reply.startswith(f"Sign this bounty of 50 USDC: {intent['signing_url']}")
    assert f"<!-- kdemo:intent:{intent['intent_id']} -->" in reply
    parsed = find_bounties(reply)
    assert (parsed.matches, parsed.links, parsed.rejected) == ([], [], [])
    assert github.posts(path) == 1
    assert {auth for _, _, auth in github.requests} == {f"Bearer {TOKEN}"}
    [row] = query(
        stack, "SELECT posted_at FROM github_replies WHERE id = %s", (intent["intent_id"],)
    )
    assert row["posted_at"] is not None
    assert (
        'from="github-app",protocol="HTTPS",to="github-api"' in httpx.get(f"{app.url}/metrics").text
    )


def test_lost_answer_is_not_posted_twice(
    app: RunningService, github: FakeGitHub, stack: Stack
) -> None:
    """When GitHub created the comment but the answer was lost, the retry finds the marker."""
    github.post_failures.append("lost")
    repo = unique_repo()
    payload = comment_payload("$ETH:2$", repo=repo, number=4, login="nico")
    [intent] = deliver(app.url, stack.secrets.webhook_secret, payload).json()["intents"]

    path = _comments_path(repo, 4)
    assert len(github.settled_comments(stack, repo, 4)) == 1
    assert github.posts(path) == 1
    assert github.lists(path) >= 1
    [row] = query(
        stack,
        "SELECT attempts, posted_at FROM github_replies WHERE id = %s",
        (intent["intent_id"],),
    )
    assert row["posted_at"] is not None
    assert row["attempts"] == 2


def test_refused_post_is_retried(app: RunningService, github: FakeGitHub, stack: Stack) -> None:
    """A post GitHub refused is tried again after a delay and then posted once."""
    github.post_failures.append("refused")
    repo = unique_repo()
    deliver(
        app.url,
        stack.secrets.webhook_secret,
        comment_payload("$DAI:8$", repo=repo, number=5, login="olga"),
    )

    path = _comments_path(repo, 5)
    assert len(github.settled_comments(stack, repo, 5)) == 1
    assert github.posts(path) == 2


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("$ABC:5$", "Not a bounty: ` $ABC:5$ `: unknown denomination ABC; supported: DAI, ETH"),
        ("$link:qwertyuiopasdfghjklzxcvbnmqw$", "Link code received from pia"),
    ],
)
def test_rejections_and_links_get_replies_that_never_match(
    app: RunningService, github: FakeGitHub, stack: Stack, body: str, words: str
) -> None:
    """Rejected text is explained (naming the supported denominations) and links acknowledged."""
    repo = unique_repo()
    deliver(
        app.url,
        stack.secrets.webhook_secret,
        comment_payload(body, repo=repo, number=6, login="pia"),
    )

    [reply] = github.settled_comments(stack, repo, 6)
    assert words in reply
    parsed = find_bounties(reply)
    assert (parsed.matches, parsed.links, parsed.rejected) == ([], [], [])


def test_comments_by_the_apps_own_account_are_ignored(
    app: RunningService, github: FakeGitHub, stack: Stack
) -> None:
    """After `GET /user`, a comment written with the app's own token is not a bounty."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _own_account_known(app):
        time.sleep(0.05)
    repo = unique_repo()
    payload = comment_payload(
        "$USDC:50$", repo=repo, number=1, login=OWN["login"], user_id=OWN["id"]
    )
    response = deliver(app.url, stack.secrets.webhook_secret, payload)

    assert response.status_code == 202
    assert "own account kdemo-replies" in response.json()["ignored"]
    assert query(stack, "SELECT 1 FROM intents WHERE repository = %s", (repo.lower(),)) == []


def test_github_outage_does_not_block_readiness(
    github: FakeGitHub, stack: Stack, start_service: Callable[..., RunningService]
) -> None:
    """With `GET /user` failing the service is ready and records bounties; it learns later."""
    github.user_status = 503
    app = start_service(
        "github-app", {"KDEMO_GITHUB_TOKEN": TOKEN, "KDEMO_GITHUB_API_URL": github.url}
    )
    response = deliver(
        app.url,
        stack.secrets.webhook_secret,
        comment_payload("$USDC:1$", repo=unique_repo(), number=1, login="quinn"),
    )
    assert response.status_code == 200
    assert not _own_account_known(app)

    github.user_status = 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _own_account_known(app):
        time.sleep(0.1)
    assert _own_account_known(app)


def test_crash_after_the_post_is_not_posted_twice(
    github: FakeGitHub, stack: Stack, start_service: Callable[..., RunningService]
) -> None:
    """github-app dies after GitHub took the reply but before marking it posted: restarted,
    it finds its marker on the thread and posts nothing more."""
    settings = {"KDEMO_GITHUB_TOKEN": TOKEN, "KDEMO_GITHUB_API_URL": github.url}
    app = start_service("github-app", settings | {"KDEMO_FAILPOINTS": "replies.after_post"})
    repo = unique_repo()
    payload = comment_payload("$USDC:9$", repo=repo, number=2, login="rosa")
    [intent] = deliver(app.url, stack.secrets.webhook_secret, payload).json()["intents"]
    app.proc.wait(timeout=15)
    assert app.proc.returncode == CRASH_STATUS
    assert "failpoint replies.after_post: crash" in app.log()
    path = _comments_path(repo, 2)
    assert github.posts(path) == 1
    posted = "SELECT 1 FROM github_replies WHERE id = %s AND posted_at IS NOT NULL"
    assert query(stack, posted, (intent["intent_id"],)) == []

    start_service("github-app", settings)
    deadline = time.monotonic() + 15
    while not query(stack, posted, (intent["intent_id"],)):
        assert time.monotonic() < deadline, f"the reply was never marked posted: {github.requests}"
        time.sleep(0.05)
    assert github.lists(path) >= 1  # looked for its marker first
    assert github.posts(path) == 1
    with github.lock:
        assert len(github.comments[path]) == 1
