"""A full SendGrid batch (1,000 events) is verified, recorded and applied once; a replay changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.config import load_settings
from automation.store.models import Customer, Delivery, Enrollment, ProviderEvent
from automation.web.app import create_app
from tests.harness import utc
from tests.webhooks import PUBLIC_URL, SendGridSigner, batch, sendgrid_event

NOW = utc("2026-11-22T12:00:00Z")
N = 1000


def seed(sessions: sessionmaker[Session]) -> list[int]:
    with sessions.begin() as s:
        s.add(Customer(id="c1", email="ada@example.com", created_at=NOW, updated_at=NOW))
        s.flush()
        enrollment_ids = s.scalars(
            insert(Enrollment).returning(Enrollment.id),
            [
                {
                    "journey_id": "j",
                    "customer_id": "c1",
                    "occurrence_key": str(i),
                    "occurred_at": NOW,
                    "entered_at": NOW,
                    "context": {},
                }
                for i in range(N)
            ],
        ).all()
        common = {"step_id": "s", "journey_id": "j", "customer_id": "c1", "channel": "email", "template": "t"}
        return list(
            s.scalars(
                insert(Delivery).returning(Delivery.id),
                [
                    {
                        **common,
                        "enrollment_id": e,
                        "status": "sent",
                        "due_at": NOW,
                        "address": f"p{e}@example.com",
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for e in enrollment_ids
                ],
            ).all()
        )


def test_a_batch_of_1000_events(
    env: dict[str, str], sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = SendGridSigner()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    monkeypatch.setenv("AUTOMATION_PUBLIC_URL", PUBLIC_URL)
    ids = seed(sessions)
    body = batch(*(sendgrid_event("delivered", f"e{i}", NOW, i) for i in ids))
    with TestClient(create_app(load_settings(), sessions, clock=lambda: NOW)) as client:
        for _ in range(2):
            reply = client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body, NOW))
            assert reply.status_code == 200
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(ProviderEvent)) == N
        delivered = s.scalar(select(func.count()).where(Delivery.provider_status == "delivered"))
        assert delivered == N
