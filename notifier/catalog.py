"""The SMS catalogue: templates and signatures, and their review (pending → approved/rejected)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from notifier.domain import templates
from notifier.domain.errors import Conflict, InvalidInput, NotFound
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import SmsSignature, SmsTemplate


def add_template(code: str, kind: str, content: str) -> None:
    templates.check_template_definition(code, kind, content)
    now = repo.utcnow()
    with transaction() as session:
        if repo.get_template(session, code) is not None:
            raise Conflict(f"template {code} exists")
        session.add(
            SmsTemplate(
                code=code,
                kind=kind,
                content=content,
                status=templates.PENDING,
                created_at=now,
                updated_at=now,
            )
        )


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


def list_templates() -> list[dict[str, Any]]:
    with transaction() as session:
        rows = session.scalars(select(SmsTemplate).order_by(SmsTemplate.code))
        return [
            {
                "code": r.code,
                "kind": r.kind,
                "status": r.status,
                "content": r.content,
                "reject_reason": r.reject_reason,
            }
            for r in rows
        ]


def list_signatures() -> list[dict[str, Any]]:
    with transaction() as session:
        rows = session.scalars(select(SmsSignature).order_by(SmsSignature.name))
        return [
            {"name": r.name, "status": r.status, "reject_reason": r.reject_reason} for r in rows
        ]
