"""Ask the carrier for delivery reports that never came by webhook (the carrier gives up
pushing after a few retries; its status query keeps answering for 30 days)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from notifier.pipeline.ingest import IngestResult, record_dlrs
from notifier.providers.carrier import CarrierClient, process_carrier
from notifier.store import repo
from notifier.store.db import transaction

log = logging.getLogger(__name__)


def poll_reports(
    delivery_ids: Sequence[uuid.UUID], carrier: CarrierClient | None = None
) -> IngestResult:
    carrier = carrier or process_carrier()
    with transaction() as session:
        waiting = [
            (d.id, d.provider_ref)
            for d in repo.load_deliveries(session, delivery_ids)
            if d.state == "submitted" and d.provider_ref
        ]
    reports, still_waiting = [], []
    for delivery_id, biz_id in waiting:
        try:
            report = carrier.report(str(biz_id), str(delivery_id))
        except Exception:  # the carrier is down: the next sweep asks again
            log.warning("status query for %s failed", delivery_id, exc_info=True)
            report = None
        if report is None:
            still_waiting.append(delivery_id)
        else:
            reports.append(report)
    with transaction() as session:
        repo.touch(session, still_waiting)  # ask again only after another interval
    return record_dlrs(reports)
