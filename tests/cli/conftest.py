"""Fixtures for the CLI tests: a real HTTP server on 127.0.0.1 that plays a service's part."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.cli.support import LocalServer, Request


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A threading HTTP server on a free loopback port, stopped after the test."""
    server_ref: dict[str, LocalServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k: v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            local = server_ref["server"]
            local.requests.append(request)
            handler = local.find(self.command, parts.path)
            status, body = (
                handler(request)
                if handler
                else (
                    404,
                    {
                        "error": {
                            "code": "not_found",
                            "message": f"no route {parts.path}",
                            "field": None,
                            "hint": "",
                        }
                    },
                )
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _handle
        do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output clean."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_ref["server"] = LocalServer(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    # A short poll: shutdown() waits for the loop's next poll (0.5 s by default, per test).
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server_ref["server"]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
