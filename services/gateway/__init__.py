"""gateway: the ledger of bounties and the public bounty API."""
