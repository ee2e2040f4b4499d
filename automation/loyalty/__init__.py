"""The loyalty programme around the store: the points ledger, tiers, and their part of ingest and the tick."""
