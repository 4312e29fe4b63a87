"""One request to a NATS server over its text protocol, standard library only.

`kdemo status` asks the stream one question (how many dead letters it holds) on every
call. nats-py answers it too, but importing it loads aiohttp for its websocket transport
and costs more than `kubectl --help` takes in all; one request needs four protocol lines
(CONNECT, SUB, PUB, PING). Everything else on the bus goes through nats-py (busadmin).
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from typing import Any

from kdemo.runtime.natsconfig import inbox_prefix

__all__ = ["NatsRequestError", "count_dead_letters", "jetstream_request"]

_PROTOCOL_TIMEOUT_S = 3.0


class NatsRequestError(Exception):
    """The server refused the request or did not answer it."""


def jetstream_request(
    host: str,
    port: int,
    *,
    user: str,
    password: str,
    reply_prefix: str,
    subject: str,
    payload: dict[str, Any],
    timeout: float = _PROTOCOL_TIMEOUT_S,
) -> dict[str, Any]:
    """Publish `payload` (JSON) to `subject` and return the decoded JSON reply.

    The reply comes on `<reply_prefix>.<random>`: users may subscribe only under their
    own inbox prefix (natsconfig.inbox_prefix). A JetStream API error (`{"error": ...}`)
    is returned as it is; no responder, a refused login or silence raise NatsRequestError.
    """
    inbox = f"{reply_prefix}.{secrets.token_hex(8)}"
    body = json.dumps(payload).encode()
    connect = {
        "verbose": False,
        "pedantic": False,
        "user": user,
        "pass": password,
        "name": "kdemo-status",
        "lang": "python",
        "protocol": 1,
        "headers": True,  # a request nobody answers gets a 503 header at once, not silence
        "no_responders": True,
    }
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            reader = sock.makefile("rb")
            _expect_info(reader.readline())
            sock.sendall(
                b"CONNECT "
                + json.dumps(connect).encode()
                + b"\r\n"
                + f"SUB {inbox} 1\r\nPUB {subject} {inbox} {len(body)}\r\n".encode()
                + body
                + b"\r\nPING\r\n"
            )
            return _read_reply(sock, reader, deadline)
    except (OSError, ValueError) as exc:  # ValueError: a reply that is not JSON
        raise NatsRequestError(f"{type(exc).__name__}: {exc}") from exc


def count_dead_letters(
    host: str,
    port: int,
    *,
    user: str,
    password: str,
    stream: str,
    dlq_prefix: str,
    timeout: float = _PROTOCOL_TIMEOUT_S,
) -> int:
    """How many messages of `stream` are under `<dlq_prefix>>`: the stream's own
    per-subject counts, filtered (one request, whatever the number of dead letters)."""
    info = jetstream_request(
        host,
        port,
        user=user,
        password=password,
        reply_prefix=inbox_prefix(user),
        subject=f"$JS.API.STREAM.INFO.{stream}",
        payload={"subjects_filter": f"{dlq_prefix}>"},
        timeout=timeout,
    )
    if "error" in info:
        error = info["error"]
        raise NatsRequestError(f"stream {stream}: {error.get('description', error)}")
    subjects = (info.get("state") or {}).get("subjects") or {}
    return sum(int(n) for n in subjects.values())


def _expect_info(line: bytes) -> None:
    if not line.startswith(b"INFO "):
        raise NatsRequestError(f"not a NATS server: it greeted with {line[:40]!r}")


def _read_reply(sock: socket.socket, reader: Any, deadline: float) -> dict[str, Any]:
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        line = reader.readline()
        if not line:
            raise NatsRequestError("the server closed the connection before it answered")
        op, _, rest = line.rstrip(b"\r\n").partition(b" ")
        if op == b"-ERR":
            raise NatsRequestError(f"the server refused: {rest.decode(errors='replace')}")
        if op == b"PING":
            sock.sendall(b"PONG\r\n")
        elif op == b"MSG":  # MSG <subject> <sid> <size>
            size = int(rest.split()[-1])
            return dict(json.loads(reader.read(size + 2)[:size]))
        elif op == b"HMSG":  # HMSG <subject> <sid> <header size> <total size>
            header_size, total = (int(n) for n in rest.split()[-2:])
            data = reader.read(total + 2)[:total]
            if data[header_size:]:
                return dict(json.loads(data[header_size:]))
            status = data[:header_size].split(b"\r\n", 1)[0].decode(errors="replace")
            raise NatsRequestError(f"no answer to the request ({status})")
        # +OK, PONG, INFO: nothing to do
