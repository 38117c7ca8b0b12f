"""SMS stage: claim queued SMS deliveries, check and render, submit to the carrier, record."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from notifier.domain import states, templates
from notifier.domain.errors import InvalidInput
from notifier.domain.outcomes import EXPIRED, Outcome
from notifier.pipeline import publish
from notifier.pipeline.advance import advance_messages
from notifier.pipeline.record import record_outcomes
from notifier.providers.carrier import CarrierClient, SmsSubmit, process_carrier
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message

log = logging.getLogger(__name__)


def _prepare(session: Session, delivery: Delivery, message: Message) -> SmsSubmit | Outcome:
    """Re-check expiry and approval at send time: a stale or withdrawn SMS must not go out.

    The rendered text is set on the attached row, so it is stored with the claim."""
    if message.expires_at <= repo.utcnow():
        return EXPIRED
    template = repo.get_template(session, message.sms_template or "")
    signature = repo.get_signature(session, message.sms_signature or "")
    if template is None or signature is None:
        return Outcome.rejected(None, "catalogue_missing", "template or signature was deleted")
    tpl = templates.Template(template.code, template.kind, template.content, template.status)
    sig = templates.Signature(signature.name, signature.status)
    try:
        templates.check_signature(sig, "sms.signature")
        params = templates.check_params(tpl, message.sms_params, "sms")
    except InvalidInput as exc:
        return Outcome.rejected(None, "catalogue_rule", str(exc))
    delivery.sms_text = templates.render(tpl, sig, params)
    return SmsSubmit(delivery.target, sig.name, tpl.code, params, str(delivery.id))


def _submit(carrier: CarrierClient, delivery: Delivery, sms: SmsSubmit) -> Outcome:
    if delivery.attempts > 1:
        # Carriers have no idempotency key: an earlier attempt may have gone through unseen.
        try:
            biz_id = carrier.find_by_out_id(sms.out_id)
        except Exception as exc:  # cannot tell what happened: do not risk a second SMS now
            return Outcome.retry(None, "status_query", str(exc))
        if biz_id:
            return Outcome.sent(None, biz_id)
    return carrier.submit(sms)


def send_sms(delivery_ids: Sequence[uuid.UUID], carrier: CarrierClient | None = None) -> int:
    """Submit a batch of SMS deliveries; returns how many this call claimed."""
    carrier = carrier or process_carrier()
    with transaction() as session:
        claimed, messages = repo.claim_queued(session, delivery_ids)
        prepared = {d.id: _prepare(session, d, messages[d.message_id]) for d in claimed}
    if not claimed:
        return 0
    outcomes = []
    for delivery in claimed:
        item = prepared[delivery.id]
        outcomes.append(item if isinstance(item, Outcome) else _submit(carrier, delivery, item))
    with transaction() as session:
        result = record_outcomes(session, claimed, outcomes, states.SUBMITTED)
    for delivery_id, delay in result.retries:
        publish.sms([delivery_id], countdown=delay)
    advance_messages(sorted(result.messages))
    return len(claimed)
