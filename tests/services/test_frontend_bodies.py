"""frontend's doors against hostile bodies: size limits enforced while the body streams in,
the content type checked before a byte is read, bad encodings named. Nothing is published."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from nats.js import JetStreamContext

from services.frontend.state import MAX_BODY
from tests.conftest import RunningService
from tests.services.test_frontend import (  # shared fixtures and helpers
    JSON,
    STREAM,
    admin_js,
    client,
    error_of,
    frontend,
)

__all__ = ["admin_js", "client", "frontend"]  # fixtures re-exported for pytest

pytestmark = pytest.mark.stack

POSTS = ["/api/signatures", "/api/links"]


@pytest.fixture
async def unchanged_stream(admin_js: JetStreamContext) -> AsyncIterator[None]:
    """The test's requests publish nothing: the stream's last sequence is the same after them
    (each handler publishes before it answers, so no wait is needed)."""
    before = (await admin_js.stream_info(STREAM)).state.last_seq
    yield
    assert (await admin_js.stream_info(STREAM)).state.last_seq == before


def _status_line(service: RunningService, path: str, framing: str, body: bytes) -> str:
    """POST a JSON request's head (`framing`: its length header) and part of its body over a
    plain socket, then read the status line without ever finishing the body: a server that
    buffers the whole body first never answers, and the read times out."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: frontend\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n"
    )
    url = urlsplit(service.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        return sock.recv(4096).decode(errors="replace").split("\r\n", 1)[0]


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.usefixtures("unchanged_stream")
async def test_declared_gigabyte_is_413_before_the_body_is_sent(
    frontend: RunningService, path: str
) -> None:
    """A Content-Length of 1 GB is refused at once, with no byte of the body sent."""
    status = _status_line(frontend, path, f"Content-Length: {1024**3}", b"")
    assert status == "HTTP/1.1 413 Request Entity Too Large"


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.usefixtures("unchanged_stream")
async def test_streamed_body_is_413_once_past_the_limit(
    frontend: RunningService, path: str
) -> None:
    """A chunked body with no end in sight is refused as soon as it passes the limit."""
    chunk = b" " * 4096
    body = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * (MAX_BODY // len(chunk) + 2)
    status = _status_line(frontend, path, "Transfer-Encoding: chunked", body)
    assert status == "HTTP/1.1 413 Request Entity Too Large"


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.usefixtures("unchanged_stream")
async def test_wrong_content_type_is_415(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(
        path, headers={**JSON, "Content-Type": "text/plain"}, content=b'{"token": "x"}'
    )
    assert response.status_code == 415
    assert error_of(response)["field"] == "content-type"
    assert "application/json" in error_of(response)["hint"]


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("application/json", b'{"token": "\xff\xfe"}', "not UTF-8"),
        ("application/json", '{"token": "x"}'.encode("utf-16"), "not UTF-8"),
        ("application/x-www-form-urlencoded", b"token=%ff&address=\xff", "not UTF-8"),
        ("application/json", b"[1, 2]", "expected a JSON object, got list"),
        ("application/json", b'"text"', "expected a JSON object, got str"),
        ("application/json", b"{", "not valid JSON"),
    ],
    ids=["json-latin1", "json-utf16", "form-latin1", "array", "string", "truncated"],
)
@pytest.mark.usefixtures("unchanged_stream")
async def test_undecodable_bodies_are_400_naming_the_body(
    client: httpx.AsyncClient, path: str, content_type: str, body: bytes, reason: str
) -> None:
    response = await client.post(path, headers={**JSON, "Content-Type": content_type}, content=body)
    assert response.status_code == 400
    assert error_of(response)["field"] == "body"
    assert reason in error_of(response)["message"]
