"""Answers from the ledger: reports, explain, metrics."""
