"""The track_responses flow on the shared Prefect test server."""

from __future__ import annotations

import json

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    TaskRunFilter,
)
from prefect.client.schemas.sorting import ArtifactSort
from sqlalchemy import Engine
from tracking_support import seed, sg_event, stripe_event

from dunning.db import session_scope
from dunning.db.models import Reminder
from dunning.flows.track_responses import track_responses
from dunning.webhooks import store_records
from dunning.webhooks.verify import InboxRecord


@pytest.mark.prefect
def test_flow_applies_inbox_and_publishes_summary(prefect_server: None, engine: Engine) -> None:
    ids = seed(engine, reminders=[("due", "email", "sent"), ("overdue_1", "email", None)])
    paid = stripe_event(
        "evt_p",
        "invoice.paid",
        {"number": "INV-1", "amount_paid": 10000, "currency": "eur", "payment_intent": "pi_9"},
    )
    store_records(
        engine,
        [
            InboxRecord(
                "sendgrid",
                "e1",
                "delivered",
                json.dumps(sg_event("delivered", "e1", ids["due/email"])),
            ),
            InboxRecord("stripe", "evt_p", "invoice.paid", json.dumps(paid)),
        ],
    )
    counts = track_responses(poll_twilio=True)
    assert counts["delivered"] == 1 and counts["invoice_paid"] == 1
    assert counts["poll_skipped"] == 1  # no Twilio credentials in the test environment
    with session_scope(engine) as s:
        assert s.get_one(Reminder, ids["overdue_1/email"]).status == "skipped"
    with get_client(sync_client=True) as client:
        # Every filter spelled out: this client/server pair rejects the defaults (None).
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["tracking-run-summary"])),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
            offset=0,
        )
    assert artifacts and "| delivered | 1 |" in str(artifacts[0].data)
    summary = str(artifacts[0].data)
    # Stage x channel with percentages, not 21 columns of fractions.
    assert "| stage | channel | sent | delivered % | opened % | bounced % | paid 7d % |" in summary
    assert "| due | email | 1 | 100.0% | 0.0% | 0.0% | 100.0% (n=1) |" in summary
    assert "| sendgrid | 1 | 100.0% | 0.0% |" in summary  # by provider
    assert "| due | EUR | 1 |" in summary and "DSO (days)" in summary  # money
