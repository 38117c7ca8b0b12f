"""The SMS catalogue: templates and signatures under review, previews, and opt-outs.

Only approved templates and signatures can be used; editing an approved (or rejected)
template sends it back to `pending`, as carriers re-review any change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from config.settings import get_settings
from notifier.domain import templates
from notifier.domain.encoding import PriceTable, Segments
from notifier.domain.errors import Conflict, InvalidInput, NotFound
from notifier.domain.requests import phone_e164
from notifier.store import repo
from notifier.store import sms as sms_store
from notifier.store.db import transaction
from notifier.store.models import SmsOptout, SmsSignature, SmsTemplate

# Inbound replies that mean "stop sending me this" (the common carrier / AWS SNS list).
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "TD", "UNSUBSCRIBE", "QUIT", "END", "CANCEL", "OPTOUT", "REMOVE", "ARRET", "退订"}
)
MAX_PARAM_LENGTH_CAP = 200


def _max_param_length(value: int | None) -> int:
    if value is None:
        return templates.MAX_PARAM_LENGTH
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_PARAM_LENGTH_CAP
    ):
        raise InvalidInput("max_param_length", f"an integer from 1 to {MAX_PARAM_LENGTH_CAP}")
    return value


def template_dict(r: SmsTemplate) -> dict[str, Any]:
    return {
        "code": r.code,
        "kind": r.kind,
        "content": r.content,
        "status": r.status,
        "reject_reason": r.reject_reason,
        "max_param_length": r.max_param_length,
        "variables": templates.placeholders(r.content),
        "updated_at": r.updated_at.isoformat(),
    }


def signature_dict(r: SmsSignature) -> dict[str, Any]:
    return {"name": r.name, "status": r.status, "reject_reason": r.reject_reason}


def add_template(code: str, kind: str, content: str, max_param_length: int | None = None) -> None:
    templates.check_template_definition(code, kind, content)
    limit = _max_param_length(max_param_length)
    now = repo.utcnow()
    with transaction() as session:
        if repo.get_template(session, code) is not None:
            raise Conflict(f"template {code} exists")
        session.add(
            SmsTemplate(
                code=code,
                kind=kind,
                content=content,
                max_param_length=limit,
                status=templates.PENDING,
                created_at=now,
                updated_at=now,
            )
        )


def edit_template(
    code: str,
    content: str | None = None,
    kind: str | None = None,
    max_param_length: int | None = None,
) -> dict[str, Any]:
    """Change a template; any change puts it back to `pending` review."""
    with transaction() as session:
        row = repo.get_template(session, code)
        if row is None:
            raise NotFound("template", code)
        new_content, new_kind = content or row.content, kind or row.kind
        templates.check_template_definition(code, new_kind, new_content)
        row.content, row.kind = new_content, new_kind
        if max_param_length is not None:
            row.max_param_length = _max_param_length(max_param_length)
        row.status, row.reject_reason = templates.PENDING, None
        row.updated_at = repo.utcnow()
        return template_dict(row)


def add_signature(name: str) -> None:
    templates.check_signature_definition(name)
    now = repo.utcnow()
    with transaction() as session:
        if repo.get_signature(session, name) is not None:
            raise Conflict(f"signature {name} exists")
        session.add(
            SmsSignature(name=name, status=templates.PENDING, created_at=now, updated_at=now)
        )


def review(kind: str, key: str, approve: bool, reason: str | None = None) -> None:
    """Approve or reject a template (kind='template') or signature (kind='signature')."""
    if not approve and not reason:
        raise InvalidInput("reason", "a rejection needs a reason")
    with transaction() as session:
        row = (repo.get_template if kind == "template" else repo.get_signature)(session, key)
        if row is None:
            raise NotFound(kind, key)
        row.status = templates.APPROVED if approve else templates.REJECTED
        row.reject_reason = None if approve else reason
        row.updated_at = repo.utcnow()


def show_template(code: str) -> dict[str, Any]:
    with transaction() as session:
        row = repo.get_template(session, code)
        if row is None:
            raise NotFound("template", code)
        return template_dict(row)


def show_signature(name: str) -> dict[str, Any]:
    with transaction() as session:
        row = repo.get_signature(session, name)
        if row is None:
            raise NotFound("signature", name)
        return signature_dict(row)


def list_templates() -> list[dict[str, Any]]:
    with transaction() as session:
        return [
            template_dict(r)
            for r in session.scalars(select(SmsTemplate).order_by(SmsTemplate.code))
        ]


def list_signatures() -> list[dict[str, Any]]:
    with transaction() as session:
        rows = session.scalars(select(SmsSignature).order_by(SmsSignature.name))
        return [signature_dict(r) for r in rows]


def prices() -> PriceTable:
    return PriceTable.parse(get_settings().sms_prices)


@dataclass(frozen=True)
class Composed:
    """An SMS as the carrier rules allow it: checked params, rendered text, parts, cost."""

    template: templates.Template
    signature: templates.Signature
    params: dict[str, str]
    text: str
    segments: Segments
    cost: Decimal | None


def compose(
    template: templates.Template,
    signature: templates.Signature,
    params: Mapping[str, Any],
    phone: str | None,
    require_approved: bool = True,
) -> Composed:
    """The one place the SMS rules are applied: at send time, at submit time, in previews."""
    if require_approved:
        templates.check_signature(signature, "sms.signature")
    clean = templates.check_params(template, params, "sms", require_approved)
    text = templates.render(template, signature, clean)
    segments = templates.check_length(text, get_settings().sms_max_parts)
    cost = prices().cost(phone, segments.count) if phone else None
    return Composed(template, signature, clean, text, segments, cost)


def preview(
    code: str, params: Mapping[str, Any], signature: str, phone: str | None = None
) -> dict[str, Any]:
    """What an SMS from this template would be: text, encoding, parts and cost."""
    with transaction() as session:
        row = repo.get_template(session, code)
        sig = repo.get_signature(session, signature)
        if row is None:
            raise InvalidInput("template", f"unknown template {code}")
        if sig is None:
            raise InvalidInput("signature", f"unknown signature {signature}")
        template, sign = to_template(row), to_signature(sig)
    sms = compose(template, sign, params, phone_e164(phone) if phone else None, False)
    return {
        "text": sms.text,
        "encoding": sms.segments.encoding,
        "units": sms.segments.units,
        "parts": sms.segments.count,
        "cost": str(sms.cost) if sms.cost is not None else None,
        "template_status": template.status,
        "signature_status": sign.status,
    }


def to_template(row: SmsTemplate) -> templates.Template:
    return templates.Template(row.code, row.kind, row.content, row.status, row.max_param_length)


def to_signature(row: SmsSignature) -> templates.Signature:
    return templates.Signature(row.name, row.status)


# --- opt-outs -----------------------------------------------------------------------------


def opt_out(phone: str, source: str, detail: str | None = None) -> str:
    number = phone_e164(phone)
    with transaction() as session:
        if session.get(SmsOptout, number) is None:
            session.add(
                SmsOptout(phone=number, source=source, detail=detail, created_at=repo.utcnow())
            )
    return number


def opt_in(phone: str) -> bool:
    number = phone_e164(phone)
    with transaction() as session:
        row = session.get(SmsOptout, number)
        if row is None:
            return False
        session.delete(row)
        return True


def is_opted_out(phone: str) -> bool:
    with transaction() as session:
        return sms_store.is_opted_out(session, phone)


def record_inbound(messages: Sequence[Mapping[str, Any]]) -> int:
    """Inbound SMS from the carrier: an opt-out keyword reply opts the number out."""
    count = 0
    for i, item in enumerate(messages):
        phone, content = item.get("phone_number"), item.get("content")
        if not isinstance(phone, str) or not isinstance(content, str):
            raise InvalidInput(f"[{i}]", "each inbound message needs phone_number and content")
        if content.strip().upper() in OPT_OUT_KEYWORDS:
            opt_out(phone if phone.startswith("+") else f"+{phone}", "inbound", content.strip())
            count += 1
    return count
