"""frontend: the signing and identity-link pages, and the JSON routes the CLI uses."""
