"""Broadcast fan-out: walk the audience in chunks, write one message per user in bulk, and hand
each chunk's deliveries to the push lanes as batch tasks.

Each chunk is one transaction that also advances the broadcast's cursor, with the broadcast
row locked: a fan-out that dies mid-way resumes after the last committed chunk, and two
fan-outs of the same broadcast take turns instead of writing a user twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import get_settings
from notifier.domain import states
from notifier.domain.policy import MessageClass, lane
from notifier.domain.segments import Segment, parse_segment
from notifier.metrics import FAN_OUT_WAITED
from notifier.pipeline import publish
from notifier.queue_depth import depths_if_known
from notifier.store import audience, fan_out_rows, repo
from notifier.store.audience import Target
from notifier.store.db import is_postgres, transaction
from notifier.store.ids import new_id
from notifier.store.models import Broadcast, Delivery, Message
from notifier.waiting import wait_while

# Recipients per fan-out transaction. Every chunk pays a fixed cost whatever its size (the
# broadcast row locked and its cursor written, the audience queries, the writes, a commit):
# ~7 ms of the broadcast worker's CPU per chunk in the bench, 7 µs a recipient at 1,000.
CHUNK = 5000
# One task fans out this long, then hands the rest to a fresh task (short tasks survive
# redelivery and visibility timeouts better than one hour-long task).
SLICE_SECONDS = 10.0

FANNING_OUT, ENQUEUED = "fanning_out", "enqueued"


@dataclass(frozen=True)
class Chunk:
    """A chunk's ids as text: what the push tasks carry."""

    deliveries: list[str]
    messages: list[str]
    bulk: bool
    finished: bool


def _lock(session: Session, broadcast_id: uuid.UUID) -> Broadcast | None:
    stmt = select(Broadcast).where(Broadcast.id == broadcast_id)
    return session.scalars(repo.locked(session, stmt)).one_or_none()


@dataclass(frozen=True)
class _Rows:
    """Rows of one table as values in `names` order (repo.insert_values)."""

    names: tuple[str, ...]
    values: list[list[Any]]


def _shared(b: Broadcast, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """What every message and every delivery of a chunk share, read off the broadcast once:
    each attribute read of an ORM object goes through its instrumentation (~9 reads a user,
    ~2 µs)."""
    message = {
        "policy": "push_only",
        "message_class": b.message_class,
        "confirm_trigger": "not_received",
        "step": 0,
        "state": states.ACCEPTED,
        "push_title": b.push_title,
        "push_body": b.push_body,
        "push_data": b.push_data,
        "push_options": b.push_options,
        "sms_params": {},  # shared: bulk.copy_values encodes a shared value once
        "receipt_deadline_s": b.receipt_deadline_s,
        # Set when the push goes out (push.send_push): a million messages are written far
        # faster than they are sent, and a clock started here would run out in the queue.
        "receipt_due_at": None,
        "expires_at": b.expires_at,
        "broadcast_id": b.id,
        "created_at": now,
        "updated_at": now,
    }
    delivery = {
        "channel": states.PUSH,
        "lane": MessageClass(b.message_class).lane(states.PUSH),
        "state": states.QUEUED,
        "step": 0,
        "attempts": 0,
        "replays": 0,
        "created_at": now,
        "updated_at": now,
    }
    return message, delivery


def _rows(
    shared: tuple[dict[str, Any], dict[str, Any]], by_user: dict[str, list[Target]]
) -> tuple[_Rows, _Rows]:
    """A chunk's messages and deliveries; each row's own values first (its id first), then
    what every row of the chunk shares."""
    shared_message, shared_delivery = shared
    message_shared, delivery_shared = list(shared_message.values()), list(shared_delivery.values())
    messages: list[list[Any]] = []
    deliveries: list[list[Any]] = []
    for user, devices in by_user.items():
        message_id = new_id()
        messages.append([message_id, user, *message_shared])
        deliveries += [
            [new_id(), message_id, d.id, d.platform, d.token, *delivery_shared] for d in devices
        ]
    own_delivery = ("id", "message_id", "device_id", "platform", "target")
    return (
        _Rows(("id", "user_id", *shared_message), messages),
        _Rows((*own_delivery, *shared_delivery), deliveries),
    )


def _write(
    session: Session, b: Broadcast, segment: Segment, users: list[str], now: datetime
) -> tuple[list[str], list[str]]:
    """Write the chunk's messages and deliveries (the segment's users from the first of
    `users` to the last); returns the deliveries' and the messages' ids, as text.

    No "accepted" event rows: a broadcast message's row records its acceptance (its created_at
    and broadcast_id), and the timeline shows it from there (views.message_view). The row cost
    ~5 µs of the database per recipient."""
    shared = _shared(b, now)
    first, last = users[0], users[-1]
    if is_postgres(session) and segment.app_version_min is None:
        return fan_out_rows.insert_chunk(session, segment, first, last, *shared)
    targets = audience.devices_of(session, segment, first, last)
    messages, deliveries = _rows(shared, targets)
    if messages.values:
        repo.insert_values(session, Message, messages.names, messages.values)
        repo.insert_values(session, Delivery, deliveries.names, deliveries.values)
    return [str(d[0]) for d in deliveries.values], [str(m[0]) for m in messages.values]


def fan_out_chunk(broadcast_id: uuid.UUID, size: int = CHUNK) -> Chunk:
    """Write the next chunk of the audience; publishing is the caller's, after commit."""
    with transaction() as session:
        b = _lock(session, broadcast_id)
        if b is None or b.state != FANNING_OUT:
            return Chunk([], [], False, True)
        segment = parse_segment(b.segment)
        if b.cursor is None:
            # The first chunk is one push batch: the pushes start once it commits, while the
            # rest of the audience is still being written (a chunk of 5,000 took 0.1-0.4 s
            # under load, and the push workers idled through all of it).
            size = min(size, batch_size())
        users = audience.next_users(session, segment, b.cursor, size)
        now = repo.utcnow()
        if not users:
            b.state, b.completed_at, b.updated_at = ENQUEUED, now, now
            return Chunk([], [], False, True)
        deliveries, messages = _write(session, b, segment, users, now)
        b.cursor, b.enqueued, b.updated_at = users[-1], b.enqueued + len(messages), now
        return Chunk(deliveries, messages, MessageClass(b.message_class).bulk, False)


# Deliveries per push_bulk task: NOTIFIER_PUSH_CONCURRENCY, the streams a push process keeps
# in flight, so a batch waits for the provider once. Every batch also pays a fixed cost (a
# Celery task, transactions, an HTTP/2 window opening and draining): at 1,000 instead of 500
# notifier's CPU per delivery fell ~18 % (bench C, means of alternating runs: 178.9 -> 147.5
# µs). Beyond the streams a process keeps, a batch would wait for the provider twice.
def batch_size() -> int:
    """Deliveries per push batch task: NOTIFIER_PUSH_CONCURRENCY (at least one)."""
    return max(1, get_settings().push_concurrency)


def publish_chunk(chunk: Chunk) -> None:
    """The chunk's deliveries as push batch tasks of up to NOTIFIER_PUSH_CONCURRENCY each; if
    a publish is lost, the sweep re-publishes those deliveries once the bulk lane's queue has
    drained."""
    size = batch_size()
    for start in range(0, len(chunk.deliveries), size):
        publish.push(chunk.deliveries[start : start + size], bulk=chunk.bulk)


def fan_out(broadcast_id: uuid.UUID, budget: float = SLICE_SECONDS, size: int = CHUNK) -> bool:
    """Fan out chunks of `size` for about `budget` seconds, each once the lane has room for it
    (lane_has_room); True when the whole audience is enqueued."""
    started = time.monotonic()
    while True:
        chunk = fan_out_chunk(broadcast_id, size)
        publish_chunk(chunk)
        if chunk.finished:
            return True
        left = budget - (time.monotonic() - started)
        if left <= 0 or not lane_has_room(lane("push", chunk.bulk), left):
            return False


# How often a fan-out waiting for room looks at its lane again: a bulk lane drains a batch of
# 1,000 in a fraction of a second, and one look is one Redis round trip.
ROOM_STEP_SECONDS = 0.05


def lane_has_room(queue: str, within: float) -> bool:
    """Wait, at most `within` seconds, until the lane's waiting deliveries (its tasks in the
    broker, each counted as a full batch) are fewer than NOTIFIER_BROADCAST_AHEAD_MAX; True once
    they are. A broker whose depth cannot be read is taken to have room: pacing is for the
    database's cache, and a fan-out that stopped for it would stop the broadcast."""
    ahead_max = get_settings().broadcast_ahead_max
    if ahead_max <= 0:
        return True

    def full() -> bool:
        depths = depths_if_known([queue])
        return depths is not None and depths.get(queue, 0) * batch_size() >= ahead_max

    waited, room = wait_while(full, within, ROOM_STEP_SECONDS)
    if waited:
        FAN_OUT_WAITED.labels(queue).inc(waited)
    return room


def continue_later(broadcast_ids: Sequence[uuid.UUID]) -> None:
    for broadcast_id in broadcast_ids:
        publish.fanout(broadcast_id)
