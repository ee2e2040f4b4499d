"""Advancing enrollments at `now`: each due enrollment runs its steps until one lies in the future.

One module per step kind (`send`, `wait`), the registry that finds them
(`kinds`), the pure walk over a journey's steps (`plan`) and the batched,
set-based pass the tick runs (`batch`).
"""
