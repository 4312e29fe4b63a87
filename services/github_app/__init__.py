"""github-app: verifies GitHub webhooks, finds bounties and link codes, records intents."""
