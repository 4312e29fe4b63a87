"""The bus and the database as kdemo's one image runs them on a cluster (not services)."""
