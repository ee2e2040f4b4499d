"""The worker's side: claim, judge, render, send, record."""
