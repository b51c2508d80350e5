"""Identity tables: people and their roles, devices and sessions, one-time codes, PINs, consent, eKYC."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TimestampedBase, utcnow

__all__ = [
    "AuthSession",
    "Consent",
    "Device",
    "EkycCheck",
    "OtpChallenge",
    "PaymentPin",
    "RefreshToken",
    "User",
    "UserRole",
]


class User(TimestampedBase):
    """A person with an account. Never deleted: closing an account erases its personal data in place."""

    __tablename__ = "users"

    phone: Mapped[str | None] = mapped_column(String(16), unique=True)
    """E.164 (``+84...``); NULL once the account is closed, so the number can register again."""
    password_hash: Mapped[str | None] = mapped_column(String(255))
    """argon2id; NULL for accounts that sign in with one-time codes only."""
    full_name: Mapped[str | None] = mapped_column(String(200))
    cccd_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    """AES-GCM of the citizen ID number under ``DATA_KEYS[cccd_key_id]``, bound to this row's id."""
    cccd_key_id: Mapped[str | None] = mapped_column(String(32))
    cccd_lookup: Mapped[str | None] = mapped_column(String(64), unique=True)
    """Keyed HMAC of the number: equality lookup and uniqueness without decrypting."""
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    address_line: Mapped[str | None] = mapped_column(String(300))
    address_commune: Mapped[str | None] = mapped_column(String(120))
    address_province: Mapped[str | None] = mapped_column(String(120))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    identity_level: Mapped[int] = mapped_column(Integer, default=0)
    """0 = phone only, 1 = CCCD declared, 2 = verified (desk or eKYC)."""
    verified_at: Mapped[datetime | None]
    verification_method: Mapped[str | None] = mapped_column(String(16))
    """``desk`` or ``ekyc``."""
    verified_by: Mapped[uuid.UUID | None]
    """The officer who verified at a desk."""
    status: Mapped[str] = mapped_column(String(16), default="active")
    """``active``, ``locked`` (by an admin) or ``closed``."""
    locked_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UserRole(TimestampedBase):
    """One role of a user. ``scope`` is the duty of an admin, the agency of an officer, the merchant of
    merchant staff, and empty for a citizen."""

    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role", "scope"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(64), default="")
    granted_by: Mapped[uuid.UUID | None]


class Device(TimestampedBase):
    """An app installation a user signed in from. New for 24 hours after it was first seen."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("user_id", "install_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    install_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(16))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class AuthSession(TimestampedBase):
    """One sign-in on one device: the family of its refresh tokens. Its id is the ``sid`` of access tokens."""

    __tablename__ = "auth_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    """How it was opened: ``password``, ``otp``, ``register``."""
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(TimestampedBase):
    """A refresh token, stored as its SHA-256 (it has 256 random bits, so an unkeyed hash is enough)."""

    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("auth_sessions.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    """Set when exchanged; presenting it again revokes the whole session."""


class OtpChallenge(TimestampedBase):
    """One one-time code sent to one phone for one purpose. The code is kept only as a keyed HMAC."""

    __tablename__ = "otp_challenges"
    __table_args__ = (Index("ix_otp_challenges_phone_purpose", "phone", "purpose"),)

    phone: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(24))
    user_id: Mapped[uuid.UUID | None]
    code_hash: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None]


class PaymentPin(Base):
    """The payment PIN as HMAC-SHA256(PIN_KEYS[key_id], salt, user id, pin): useless without the key."""

    __tablename__ = "payment_pins"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    pin_hash: Mapped[bytes] = mapped_column(LargeBinary)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(32))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class Consent(TimestampedBase):
    """One consent decision (given or withdrawn) for one purpose and text version; rows are only added."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_user_id_purpose", "user_id", "purpose"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    purpose: Mapped[str] = mapped_column(String(40))
    version: Mapped[str] = mapped_column(String(20))
    granted: Mapped[bool] = mapped_column(Boolean)


class EkycCheck(TimestampedBase):
    """One electronic identity check with a provider, and its outcome."""

    __tablename__ = "ekyc_checks"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    """``verified`` or ``rejected``."""
    reason: Mapped[str | None] = mapped_column(String(32))
