"""Tables. The schema itself is created only by the Alembic migrations next to this file."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite (which stores them without a zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("platform", "token", name="uq_devices_platform_token"),
        Index("ix_devices_user_state", "user_id", "state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), ForeignKey("users.id"))
    platform: Mapped[str] = mapped_column(String(8))
    token: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16))
    invalid_reason: Mapped[str | None] = mapped_column(String(64))
    # When this token was last bound to its current user (a new owner restarts the clock).
    bound_at: Mapped[datetime | None]
    app_version: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class UserTag(Base):
    __tablename__ = "user_tags"
    __table_args__ = (Index("ix_user_tags_tag", "tag", "user_id"),)

    user_id: Mapped[str] = mapped_column(String(128), ForeignKey("users.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class Broadcast(Base):
    """One notification to a segment; fanned out in chunks into one message per user."""

    __tablename__ = "broadcasts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    segment: Mapped[dict[str, Any]]
    message_class: Mapped[str] = mapped_column(String(16))
    push_title: Mapped[str | None] = mapped_column(Text)
    push_body: Mapped[str | None] = mapped_column(Text)
    push_data: Mapped[dict[str, Any]]
    push_options: Mapped[dict[str, Any]]
    receipt_deadline_s: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))
    planned: Mapped[int] = mapped_column(Integer)
    enqueued: Mapped[int] = mapped_column(Integer)
    # The last user fanned out (users are walked in id order): a restarted fan-out resumes here.
    cursor: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


_MESSAGES_BY_STATE = "state IN ('accepted', 'unconfirmed', 'failed', 'expired')"


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # Partial indexes (migration 0010): each row version of a message or delivery adds an
        # entry to every index, so rows no lookup can find are left out.
        Index(
            "uq_messages_idempotency_key",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
        # What the receipt checks look up (repo.overdue_messages).
        Index(
            "ix_messages_accepted_due",
            "receipt_due_at",
            postgresql_where=text("state = 'accepted' AND receipt_due_at IS NOT NULL"),
            sqlite_where=text("state = 'accepted' AND receipt_due_at IS NOT NULL"),
        ),
        Index("ix_messages_user_created", "user_id", "created_at"),
        # By state and age (an operator's search, the walk over accepted messages): a
        # delivered message, most of them and every acknowledged push's last version, is
        # left out (migration 0017).
        Index(
            "ix_messages_state_created",
            "state",
            "created_at",
            postgresql_where=text(_MESSAGES_BY_STATE),
            sqlite_where=text(_MESSAGES_BY_STATE),
        ),
        Index("ix_messages_broadcast", "broadcast_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # The user's id, unchecked: a message is written only by what read its user in the same
    # transaction, and users are never deleted (migration 0016 says why).
    user_id: Mapped[str] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    policy: Mapped[str] = mapped_column(String(16))
    message_class: Mapped[str] = mapped_column(String(16), server_default="transactional")
    confirm_trigger: Mapped[str] = mapped_column(String(16), server_default="not_received")
    # The steps, written out only for the chain policy (the named policies are fixed plans).
    chain: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    step: Mapped[int] = mapped_column(Integer, server_default="0")
    # A security notice: the device it is about stays held until the notice went out.
    about_device: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    broadcast_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    state: Mapped[str] = mapped_column(String(16))
    push_title: Mapped[str | None] = mapped_column(Text)
    push_body: Mapped[str | None] = mapped_column(Text)
    push_data: Mapped[dict[str, Any]]
    push_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sms_template: Mapped[str | None] = mapped_column(String(64))
    sms_signature: Mapped[str | None] = mapped_column(String(64))
    sms_params: Mapped[dict[str, Any]]
    receipt_deadline_s: Mapped[int] = mapped_column(Integer)
    receipt_due_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]


_LOOKED_UP_BY_AGE = (
    "state IN ('sending', 'submitted', 'failed', 'rate_limited', 'undelivered',"
    " 'unconfirmed', 'cancelled', 'expired')"
)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_message", "message_id"),
        # What the sweep and replays look up by state and age (migration 0013): the states a
        # delivery passes through on success (sent, acked, ...) are left out, and queued
        # rows too, which the sweep finds by lane (ix_deliveries_lane_queued, migration 0017).
        Index(
            "ix_deliveries_state_updated",
            "state",
            "updated_at",
            postgresql_where=text(_LOOKED_UP_BY_AGE),
            sqlite_where=text(_LOOKED_UP_BY_AGE),
        ),
        # What a carrier's delivery report is matched by (migration 0012: SMS rows only).
        Index(
            "ix_deliveries_provider_ref",
            "provider_ref",
            postgresql_where=text("channel = 'sms' AND provider_ref IS NOT NULL"),
            sqlite_where=text("channel = 'sms' AND provider_ref IS NOT NULL"),
        ),
        # What a transactional task tops its batch up from: the ready rows of its lane, oldest
        # first. Partial, so a million queued broadcast rows cost other lanes nothing.
        Index(
            "ix_deliveries_lane_queued",
            "lane",
            "created_at",
            postgresql_where=text("state = 'queued'"),
            sqlite_where=text("state = 'queued'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # The message's and device's ids, unchecked: a delivery is inserted only beside its
    # message, and neither messages nor devices are ever deleted (migration 0014 says why).
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    channel: Mapped[str] = mapped_column(String(8))
    # The broker queue the delivery travels on (push, sms, push_bulk, sms_bulk): fixed at
    # creation from channel and message class. Null on rows from before lanes were stored.
    lane: Mapped[str | None] = mapped_column(String(16))
    device_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    platform: Mapped[str | None] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(Integer, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer)
    # Each replay grants a fresh budget of NOTIFIER_MAX_ATTEMPTS on top of the attempts made.
    replays: Mapped[int] = mapped_column(Integer, default=0)
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(Text)
    sms_text: Mapped[str | None] = mapped_column(Text)
    sms_encoding: Mapped[str | None] = mapped_column(String(8))
    sms_parts: Mapped[int | None] = mapped_column(Integer)
    sms_cost: Mapped[Decimal | None] = mapped_column(Numeric(12, 5))
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_delivery", "delivery_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The delivery's id, unchecked: attempts are a log written beside their delivery
    # (migration 0011 says why).
    delivery_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    number: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_message", "message_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The message's id, unchecked: events are a log written beside their message (0011).
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    delivery_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class SmsTemplate(Base):
    __tablename__ = "sms_templates"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    max_param_length: Mapped[int] = mapped_column(Integer, default=35)
    status: Mapped[str] = mapped_column(String(16))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SmsSignature(Base):
    __tablename__ = "sms_signatures"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SmsSend(Base):
    """One SMS counted against a number's frequency limits (reserved before submit, kept if
    the carrier took it, removed if it did not)."""

    __tablename__ = "sms_sends"
    __table_args__ = (Index("ix_sms_sends_phone_created", "phone", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(20))
    signature: Mapped[str] = mapped_column(String(64))
    template_code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    created_at: Mapped[datetime]


class SmsOptout(Base):
    __tablename__ = "sms_optouts"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(64))
    # A device key bound to one user binds and acks only for that user.
    user_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
