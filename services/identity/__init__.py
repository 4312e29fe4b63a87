"""identity: links wallets to GitHub accounts, proven on both sides (gRPC: Lookup, LinkStatus)."""
