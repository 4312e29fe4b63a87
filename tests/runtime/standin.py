"""A stand-in service for supervisor tests: answers /readyz, /healthz and /metrics.

It listens where a real service would (`KDEMO_METRICS_PORT` for gRPC services,
else `KDEMO_HTTP_PORT`) and checks that the environment it was given is complete.
"""

from __future__ import annotations

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REQUIRED = (
    "KDEMO_HOST",
    "KDEMO_PUBLIC_URL_FRONTEND",
    "KDEMO_PUBLIC_URL_GATEWAY",
    "KDEMO_PUBLIC_URL_GITHUB_APP",
)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/readyz", "/healthz"):
            body = b"ok\n"
        elif self.path == "/metrics":
            body = f'standin_up{{node="{os.environ.get("STANDIN_NAME", "")}"}} 1\n'.encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def main() -> None:
    missing = [k for k in REQUIRED if k not in os.environ]
    if missing:
        sys.exit(f"missing environment: {missing}")
    port = int(os.environ.get("KDEMO_METRICS_PORT") or os.environ["KDEMO_HTTP_PORT"])
    server = ThreadingHTTPServer((os.environ["KDEMO_HOST"], port), Handler)
    print(f"standin listening on {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
