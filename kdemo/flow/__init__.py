"""The client side of the demo flow: webhook payloads, wallet signatures, linking, smoke.

These modules talk to the stack only over HTTP (public URLs) and never import
the services, Typer or Rich, so CI and tests can drive the flow directly.
"""
