"""The pure core: journey models, filters, decisions, judging and arithmetic; no I/O, no clock."""
