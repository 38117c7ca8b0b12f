"""A device's ack may arrive before the worker has recorded that the push went out."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from notifier import producer
from notifier.domain import states
from notifier.domain.outcomes import Outcome
from notifier.pipeline import ingest
from notifier.pipeline.record import record_outcomes
from notifier.store import claims
from notifier.store.db import transaction
from notifier.store.models import Attempt, Delivery, Event, Message


def test_an_ack_that_overtakes_the_sent_record_keeps_the_push_acked(migrated):
    producer.bind_device("ann", "apns", uuid.uuid4().hex * 2)
    message_id = producer.send("ann", policy="push_only", push={"body": "hi"})
    with transaction() as s:
        delivery_id = s.scalars(select(Delivery.id).where(Delivery.message_id == message_id)).one()
        claimed, _ = claims.claim_pushes(s, [delivery_id])
    # the provider took it and the app acked it before the worker wrote its record
    assert ingest.record_acks([(str(delivery_id), "received")]).accepted == 1
    with transaction() as s:
        result = record_outcomes(s, claimed, [Outcome.sent(200, "apns-1")], states.SENT)
    assert result.sent == [] and result.settled == set()
    with transaction() as s:
        delivery = s.get(Delivery, delivery_id)
        message = s.get(Message, message_id)
        attempts = s.scalar(select(func.count()).where(Attempt.delivery_id == delivery_id))
        kinds = list(s.scalars(select(Event.kind).where(Event.message_id == message_id)))
    assert delivery is not None and delivery.state == states.ACKED
    assert message is not None and message.state == states.DELIVERED
    assert attempts == 1  # the attempt is history either way
    assert "push_sent" not in kinds and states.ACKED in kinds
