"""API keys: stored as SHA-256 hashes only; the plain key is shown once, at creation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from notifier.domain.errors import InvalidInput
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import ApiKey

SCOPES = ("device", "send", "carrier", "admin")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    scopes: frozenset[str]
    user_id: str | None  # a device key bound to one user acts for that user only


def create_key(name: str, scopes: list[str], user_id: str | None = None) -> str:
    """A new key; with `user_id`, a device key that binds and acks for that user only."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InvalidInput("scopes", f"one or more of {', '.join(SCOPES)}; got {scopes}")
    if user_id is not None and set(scopes) != {"device"}:
        raise InvalidInput("user", "only a key with scope device alone can be bound to a user")
    prefix = secrets.token_hex(4)
    key = f"nk_{prefix}_{secrets.token_urlsafe(24)}"
    with transaction() as session:
        session.add(
            ApiKey(
                name=name,
                prefix=prefix,
                key_hash=_hash(key),
                scopes=",".join(sorted(set(scopes))),
                user_id=user_id,
                created_at=repo.utcnow(),
            )
        )
    return key


def caller_of(key: str) -> Caller | None:
    """Who a live key speaks for, or None for an unknown or revoked one."""
    with transaction() as session:
        row = session.scalars(
            select(ApiKey).where(ApiKey.key_hash == _hash(key), ApiKey.revoked_at.is_(None))
        ).one_or_none()
        return Caller(frozenset(row.scopes.split(",")), row.user_id) if row else None


def revoke(prefix: str) -> int:
    with transaction() as session:
        result = session.execute(
            update(ApiKey)
            .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
            .values(revoked_at=repo.utcnow())
            .returning(ApiKey.id)
        )
        return len(result.all())
