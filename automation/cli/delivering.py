"""Handing new deliveries to the workers from a command (retries, test sends aside)."""

from __future__ import annotations

from collections.abc import Sequence

from automation.advance.send import Queued
from automation.cli.app import console
from automation.config import Settings
from automation.processes.runtime import Runtime, drain, enqueue_deliveries


def enqueue_new(settings: Settings, runtime: Runtime, queued: Sequence[Queued]) -> None:
    """Enqueue committed deliveries; without REDIS_URL nothing else runs, so deliver them here."""
    from automation.processes.worker import broker, build_deliverer, install

    enqueue_deliveries(broker, queued, settings.email_batch_size)
    if settings.embedded_broker:
        install(build_deliverer(settings))
        drain(broker)
        console.print("delivered in-process (no REDIS_URL set)")
    else:
        console.print("queued for the workers")
