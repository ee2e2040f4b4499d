"""Trigger kind `manual`: nobody enters at a tick, only through `automation campaign send`.

A campaign is its occurrence: the campaign id is the occurrence key and
templates get `campaign` (its `id`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from automation.core.journeys import Journey, ManualTrigger
from automation.enroll.kind import Found, Scope, TriggerKind
from automation.store.models import Customer


def context(campaign_id: str) -> dict[str, Any]:
    return {"campaign": {"id": campaign_id}}


class ManualKind(TriggerKind[ManualTrigger]):
    name = "manual"
    model = ManualTrigger
    defaults: ClassVar[dict[str, Any]] = {"campaign": {"id": None}}
    enrolls_at_tick = False

    def latest(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> Found:
        return Found(None, "manual journey: nobody enters at a tick, only through `automation campaign send`")

    def preview_context(
        self, session: Session, journey: Journey, customer: Customer, now: dt.datetime, scope: Scope
    ) -> dict[str, Any]:
        return context("preview")


KIND = ManualKind()
