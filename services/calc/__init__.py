"""calc: exact integer arithmetic on bounty amounts over gRPC (`python -m services.calc`)."""
