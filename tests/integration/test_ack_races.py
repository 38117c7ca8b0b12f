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


def test_a_batch_record_writes_only_the_rows_still_being_sent(migrated):
    """One of a batch was acked before the record: it stays acked, the other is recorded."""
    ids = []
    for user in ("bo", "cy"):
        producer.bind_device(user, "apns", uuid.uuid4().hex * 2)
        message_id = producer.send(user, policy="push_only", push={"body": "hi"})
        with transaction() as s:
            ids.append(
                s.scalars(select(Delivery.id).where(Delivery.message_id == message_id)).one()
            )
    with transaction() as s:
        claimed, _ = claims.claim_pushes(s, ids)
    assert ingest.record_acks([(str(ids[0]), "received")]).accepted == 1
    outcomes = [Outcome.sent(200, f"apns-{d.id}") for d in claimed]
    with transaction() as s:
        result = record_outcomes(s, claimed, outcomes, states.SENT)
    assert [d.id for d in result.sent] == [ids[1]]
    with transaction() as s:
        found = {d.id: d for d in s.scalars(select(Delivery).where(Delivery.id.in_(ids)))}
        sent_events = list(s.scalars(select(Event.delivery_id).where(Event.kind == "push_sent")))
        attempts = s.scalar(select(func.count()).where(Attempt.delivery_id.in_(ids)))
    assert found[ids[0]].state == states.ACKED and found[ids[0]].provider_ref is None
    assert found[ids[1]].state == states.SENT and found[ids[1]].provider_ref == f"apns-{ids[1]}"
    assert sent_events == [ids[1]] and attempts == 2
