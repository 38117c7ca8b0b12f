"""Several requests' receipts in one transaction (the API's group commit): each request's
receipts count only for its own user's pushes, and each gets its own counts."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from notifier import producer
from notifier.domain import states
from notifier.pipeline import ingest
from notifier.store import claims
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message


def _claimed_push(user: str) -> uuid.UUID:
    """A push of `user` claimed by a worker (as if on its way to the provider)."""
    producer.bind_device(user, "apns", uuid.uuid4().hex * 2)
    message_id = producer.send(user, policy="push_only", push={"body": "hi"})
    with transaction() as s:
        delivery_id = s.scalars(select(Delivery.id).where(Delivery.message_id == message_id)).one()
        claims.claim_pushes(s, [delivery_id])
    return delivery_id


def _states(ids: list[uuid.UUID]) -> list[tuple[str, str]]:
    with transaction() as s:
        rows = s.execute(
            select(Delivery.id, Delivery.state, Message.state).join(
                Message, Message.id == Delivery.message_id
            )
        ).all()
    found = {r[0]: (r[1], r[2]) for r in rows}
    return [found[i] for i in ids]


def test_each_group_acknowledges_only_its_own_users_pushes(migrated):
    ann, bo, cy = _claimed_push("ann"), _claimed_push("bo"), _claimed_push("cy")
    unknown = uuid.uuid4()
    results = ingest.record_ack_groups(
        [
            ([(ann, "received"), (bo, "received"), (unknown, "received")], "ann"),
            ([(bo, "opened")], "cy"),  # cy's key naming bo's push: ignored
            ([(cy, "received"), (cy, "received")], "cy"),  # a repeat counts once
        ]
    )
    assert [(r.accepted, r.duplicate_or_unknown) for r in results] == [(1, 2), (0, 1), (1, 1)]
    assert _states([ann, bo, cy]) == [
        (states.ACKED, states.DELIVERED),
        (states.SENDING, states.ACCEPTED),
        (states.ACKED, states.DELIVERED),
    ]


def test_a_push_acknowledged_by_two_groups_counts_for_the_first(migrated):
    ann = _claimed_push("ann")
    results = ingest.record_ack_groups([([(ann, "received")], None), ([(ann, "received")], "ann")])
    assert [r.accepted for r in results] == [1, 0]
    assert ingest.record_acks([(str(ann), "opened")], only_user="ann").accepted == 1
    assert _states([ann]) == [(states.OPENED, states.DELIVERED)]
