"""API keys: stored as SHA-256 hashes only; the plain key is shown once, at creation."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select, update

from config.settings import get_settings
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


# Live keys recently seen, per process: every device posts its own acks, so without this each
# request would spend a transaction on the key before its real work. Only live keys are kept
# (a key created a moment ago works at once); a revoked one stops within the TTL.
_CACHE_LIMIT = 10_000
_seen: dict[str, tuple[float, Caller]] = {}
_seen_lock = threading.Lock()


def seen_caller(key: str) -> Caller | None:
    """Who a key speaks for if this process saw it live within the cache TTL, else None (ask
    caller_of): no database, so an async request handler may call it without a thread."""
    if get_settings().api_key_cache_seconds <= 0:
        return None
    with _seen_lock:
        hit = _seen.get(_hash(key))
    return hit[1] if hit is not None and time.monotonic() < hit[0] else None


def caller_of(key: str) -> Caller | None:
    """Who a live key speaks for, or None for an unknown or revoked one."""
    seen = seen_caller(key)
    if seen is not None:
        return seen
    digest = _hash(key)
    ttl = get_settings().api_key_cache_seconds
    now = time.monotonic()
    with transaction() as session:
        row = session.scalars(
            select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
        ).one_or_none()
        caller = Caller(frozenset(row.scopes.split(",")), row.user_id) if row else None
    with _seen_lock:
        if caller is None or ttl <= 0:
            _seen.pop(digest, None)
        else:
            if len(_seen) >= _CACHE_LIMIT:
                _seen.clear()
            _seen[digest] = (now + ttl, caller)
    return caller


def revoke(prefix: str) -> int:
    """Revoke the live keys with this prefix: at once in this process, within
    NOTIFIER_API_KEY_CACHE_SECONDS in API processes that used them a moment ago."""
    with _seen_lock:
        _seen.clear()
    with transaction() as session:
        result = session.execute(
            update(ApiKey)
            .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
            .values(revoked_at=repo.utcnow())
            .returning(ApiKey.id)
        )
        return len(result.all())
