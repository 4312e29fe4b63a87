"""The client side of the demo flow: webhook payloads, wallet signatures, linking, smoke.

These modules talk to the stack only over HTTP (public URLs) and never import
the services, Typer or Rich, so CI and tests can drive the flow directly.
"""

LINK_TIMEOUT = 30.0
"""Seconds to wait for identity's verdict on a link code (here, not in link.py: `--help`
shows it without loading the HTTP client and the wallet)."""
