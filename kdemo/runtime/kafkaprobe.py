"""Is a Kafka broker serving? One ApiVersions request, answered before SASL authentication.

Standard library only, and a script too: the cluster's Kafka image copies this file and
runs it as the pod's readiness probe (`python3 kafkaprobe.py 127.0.0.1 9092`), so the local
runtime and the cluster ask the same question the same way.
"""

from __future__ import annotations

import socket
import struct
import sys

__all__ = ["api_versions_ok"]


def api_versions_ok(host: str, port: int, timeout: float = 2.0) -> bool:
    """Send ApiVersions v0 (answered before SASL authentication) and check error_code 0."""
    correlation = 7
    client_id = b"kdemo-probe"
    body = struct.pack(">hhih", 18, 0, correlation, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exactly(sock, 10)  # size, correlation id, error code
    except OSError:
        return False
    _size, got_correlation, error_code = struct.unpack(">iih", head)
    return bool(got_correlation == correlation and error_code == 0)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed before the response")
        data += chunk
    return data


def main(argv: list[str]) -> int:
    host, port = argv[1], int(argv[2])
    return 0 if api_versions_ok(host, port) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
