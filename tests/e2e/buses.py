"""The buses the end-to-end tests run on: NATS always, Kafka where a broker can run here."""

from __future__ import annotations

import pytest

from kdemo.testing.servers import missing_kafka_tools

__all__ = ["BUSES", "needs_kafka"]

needs_kafka = pytest.mark.skipif(
    missing_kafka_tools() is not None, reason=missing_kafka_tools() or ""
)
"""Skips a Kafka run, saying which tool is missing, where no broker can run."""

BUSES = [pytest.param("nats", id="nats"), pytest.param("kafka", id="kafka", marks=needs_kafka)]
"""`params` of a fixture (or a test) that runs once per bus."""
