"""The long-running processes and their wiring: worker, scheduler, tick, enqueue."""
