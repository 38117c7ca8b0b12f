"""What flows in from outside: device receipts (acks) and carrier delivery reports (DLRs)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from notifier.domain import states
from notifier.domain.errors import InvalidInput
from notifier.domain.requests import parse_acks
from notifier.metrics import ACKS
from notifier.pipeline.advance import advance_messages
from notifier.store import decision_rows, repo
from notifier.store.db import transaction
from notifier.store.decision_rows import DeliveryRow, MessageRow
from notifier.store.repo import EventRow

# An ack may overtake the worker's own "sent" record; a late one still counts after the deadline.
ACKABLE = (states.SENDING, states.SENT, states.UNCONFIRMED)
REPORTABLE = (states.SENDING, states.SUBMITTED)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicate_or_unknown: int


def _uuid(raw: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(field, f"{raw!r} is not a delivery id (UUID)") from None


def parsed_acks(acks: Sequence[tuple[str, str]]) -> list[tuple[uuid.UUID, str]]:
    """Receipts `(delivery_id, kind)` with their ids parsed; a bad id is named by its index."""
    return [(_uuid(raw, f"acks[{i}].delivery_id"), kind) for i, (raw, kind) in enumerate(acks)]


def receipts(items: Sequence[Mapping[str, Any]]) -> list[tuple[uuid.UUID, str]]:
    """The receipts of an acks request's items, checked and with their ids parsed, ready to
    record: what every way in (the API's fast route, its FastAPI route, the producer) reads.
    Raises InvalidInput naming the item and its field."""
    return parsed_acks(parse_acks(items))


def record_acks(acks: Sequence[tuple[str, str]], only_user: str | None = None) -> IngestResult:
    """Record device receipts `(delivery_id, kind)`; repeats and unknown ids are harmless.

    `received` moves a push to acked, `opened` to opened (also straight from sent: an app may
    report the open without the arrival). The moves and the decision they lead to (the
    message delivered, a fallback withdrawn) are one transaction: every device posts its own
    acks, so this is the API's busiest path.
    """
    return record_ack_groups([(parsed_acks(acks), only_user)])[0]


def record_receipts(items: Sequence[Mapping[str, Any]], only_user: str | None) -> IngestResult:
    """Check and record an acks request's items (see `receipts`)."""
    return record_ack_groups([(receipts(items), only_user)])[0]


# One request's receipts, parsed, and the user they may acknowledge for (None: any user).
AckGroup = tuple[Sequence[tuple[uuid.UUID, str]], str | None]


def record_ack_groups(groups: Sequence[AckGroup]) -> list[IngestResult]:
    """Several requests' receipts in one transaction (the API coalesces concurrent requests:
    a transaction costs ~2 ms of CPU whether it records one ack or a hundred); one result per
    group. Each group's receipts count only for deliveries of its own user's messages; a
    delivery several groups acknowledge counts for the first."""
    items = [(i, kind, g) for g, (acks, _) in enumerate(groups) for i, kind in acks]
    accepted = [0] * len(groups)
    owners: dict[uuid.UUID, str] = {}

    def find(session: Session) -> list[MessageRow]:
        """The messages of the acknowledged deliveries, found as the advance locks them."""
        only = groups[0][1] if len(groups) == 1 else None
        found = decision_rows.lock_messages_of_deliveries(session, [i for i, _, _ in items], only)
        owners.update((m.id, m.user_id) for m in found)
        return found

    def move(session: Session, by_message: dict[uuid.UUID, list[DeliveryRow]]) -> list[EventRow]:
        # Every delivery of the found messages: an id not among them is unknown, and one of
        # another user's message is not the group's to acknowledge; both are ignored.
        rows = {d.id: d for ds in by_message.values() for d in ds}
        events: list[EventRow] = []
        for kind, expected, new_state in (
            ("received", ACKABLE, states.ACKED),
            ("opened", (*ACKABLE, states.ACKED), states.OPENED),
        ):
            first: dict[uuid.UUID, int] = {}  # delivery -> the first group acknowledging it
            for i, k, g in items:
                if k == kind and i in rows and i not in first:
                    user = groups[g][1]
                    if user is None or owners[rows[i].message_id] == user:
                        first[i] = g
            moved = repo.transition_of_messages(session, list(first), expected, new_state)
            for delivery_id, message_id in moved:
                rows[delivery_id].state = new_state  # what the decision reads next
                events.append(EventRow(message_id, new_state, kind, delivery_id))
                accepted[first[delivery_id]] += 1
            ACKS.labels(kind).inc(len(moved))
        return events

    if items:
        advance_messages(find, first=move)
    return [IngestResult(n, len(acks) - n) for n, (acks, _) in zip(accepted, groups, strict=True)]


def _find_delivery(session: Any, report: Mapping[str, Any]) -> Any:
    out_id = report.get("out_id")
    if out_id:
        try:
            found = repo.load_deliveries(session, [uuid.UUID(str(out_id))])
        except ValueError:
            found = []
        if found:
            return found[0]
    biz_id = report.get("biz_id")
    return repo.sms_by_provider_ref(session, str(biz_id)) if biz_id else None


def record_dlrs(reports: Iterable[Mapping[str, Any]]) -> IngestResult:
    """Record carrier delivery reports; the carrier may send the same report more than once."""
    reports = list(reports)
    accepted = ignored = 0
    touched: set[uuid.UUID] = set()
    with transaction() as session:
        events: list[EventRow] = []
        for i, report in enumerate(reports):
            if not isinstance(report, Mapping) or "success" not in report:
                raise InvalidInput(f"[{i}].success", "each report needs a boolean `success`")
        found = [_find_delivery(session, report) for report in reports]
        repo.lock_deliveries(session, [d.id for d in found if d is not None])
        for report, delivery in zip(reports, found, strict=True):
            if delivery is None:
                ignored += 1
                continue
            ok = bool(report["success"])
            code = str(report.get("err_code") or ("DELIVERED" if ok else "UNDELIVERED"))
            new_state = states.DELIVERED if ok else states.UNDELIVERED
            values: dict[str, Any] = (
                {} if ok else {"error_code": code, "error_detail": report.get("err_msg")}
            )
            if report.get("biz_id") and not delivery.provider_ref:
                values["provider_ref"] = str(report["biz_id"])
            if repo.transition(session, [delivery.id], REPORTABLE, new_state, **values):
                accepted += 1
                touched.add(delivery.message_id)
                events.append(EventRow(delivery.message_id, f"sms_{new_state}", code, delivery.id))
            else:
                ignored += 1
        repo.add_events(session, events)
    advance_messages(sorted(touched))
    return IngestResult(accepted, ignored)
