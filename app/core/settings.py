"""Typed settings, read once from environment variables.

Nothing set means embedded development mode: a SQLite file under ``./var/``, in-process stores and the
development secrets below. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis.
Every secret is a key ring ``kid:secret[,kid:secret...]`` whose first key signs and all of whose
keys verify, so keys rotate without downtime.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

__all__ = ["ConfigError", "KeyRing", "RateRule", "Settings", "get_settings", "load_settings"]

Environment = Literal["development", "test", "production"]

DEV_KEY_PREFIX = "dev-insecure-"
"""Development secrets start with this, so production can recognise and refuse them."""

_DEV_SECRETS = {
    "JWT_KEYS": "dev1:dev-insecure-jwt-signing-key-0123456789abcdef",
    "PIN_KEYS": "dev1:dev-insecure-pin-pepper-0123456789abcdef",
    "DATA_KEYS": "dev1:dev-insecure-data-key-0123456789abcdef0123",
    "AUDIT_KEYS": "dev1:dev-insecure-audit-mac-key-0123456789abcdef",
    "WEBHOOK_KEYS": "dev1:dev-insecure-webhook-key-0123456789abcdef",
    "RECEIPT_KEYS": "dev1:dev-insecure-receipt-signing-seed-0123456789",
    "CARD_GATEWAY_WEBHOOK_SECRETS": "dev1:dev-insecure-card-gateway-webhook-secret-0123",
}


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Secrets by key id. The first key is the active one; all keys are accepted for verification."""

    name: str
    keys: tuple[tuple[str, bytes], ...]

    @property
    def active_kid(self) -> str:
        return self.keys[0][0]

    @property
    def active_key(self) -> bytes:
        return self.keys[0][1]

    def get(self, kid: str) -> bytes | None:
        for key_id, secret in self.keys:
            if key_id == kid:
                return secret
        return None

    @property
    def is_development(self) -> bool:
        return any(secret.startswith(DEV_KEY_PREFIX.encode()) for _, secret in self.keys)

    @classmethod
    def parse(cls, name: str, raw: str) -> KeyRing:
        keys: list[tuple[str, bytes]] = []
        for part in raw.split(","):
            kid, sep, secret = part.strip().partition(":")
            if not sep or not kid or not secret:
                raise ConfigError(f"{name}: expected 'kid:secret[,kid:secret...]'")
            if secret.startswith("base64:"):
                try:
                    value = base64.b64decode(secret[7:], validate=True)
                except ValueError as exc:
                    raise ConfigError(f"{name}: key '{kid}' is not valid base64") from exc
            else:
                value = secret.encode()
            if len(value) < 32:
                raise ConfigError(f"{name}: key '{kid}' must be at least 32 bytes")
            if any(kid == existing for existing, _ in keys):
                raise ConfigError(f"{name}: key id '{kid}' appears twice")
            keys.append((kid, value))
        return cls(name=name, keys=tuple(keys))


@dataclass(frozen=True, slots=True)
class RateRule:
    """At most ``limit`` requests per ``window_seconds`` (a fixed window starting at the first request)."""

    limit: int
    window_seconds: int

    @classmethod
    def parse(cls, name: str, raw: str) -> RateRule:
        """``"<limit>/<seconds>"``, e.g. ``"10/300"`` for ten per five minutes."""
        count, sep, window = raw.strip().partition("/")
        if not sep:
            raise ConfigError(f"{name}: expected '<limit>/<seconds>' such as '10/300', got {raw!r}")
        return cls(limit=_int(name, count.strip()), window_seconds=_int(name, window.strip()))


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the process needs to know about its environment."""

    environment: Environment = "development"
    database_url: str = "sqlite+aiosqlite:///./var/hue.db"
    redis_url: str | None = None
    """None means in-process stores (embedded mode)."""
    redis_prefix: str = "hue:"
    """Namespace of every Redis key and channel, so several deployments (or test runs) can share a server."""
    redis_cooldown_seconds: float = 2.0
    """After a Redis failure, stores answer "unavailable" at once for this long instead of waiting on a dead
    server for every request; then one call tries Redis again. 0 disables the pause."""
    rate_limit_signin: RateRule = RateRule(20, 300)
    """Sign-in attempts per client address (and, where identity checks it, per account)."""
    rate_limit_otp: RateRule = RateRule(10, 3600)
    """OTP sends per client address (identity adds a tighter per-phone-number check)."""
    rate_limit_payments: RateRule = RateRule(30, 60)
    """Money movements started per caller."""
    rate_limit_default: RateRule = RateRule(600, 60)
    """Any other request per caller (or per address when not signed in)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or CIDR networks of reverse proxies whose ``X-Forwarded-For`` names the real client."""
    var_dir: Path = Path("./var")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True
    run_worker_in_process: bool = True
    """Embedded mode runs the outbox dispatcher and scheduled jobs inside the API process (never in tests)."""
    outbox_max_attempts: int = 10
    """Delivery attempts of an outbox message (per round: an admin retry starts a new round) before it is
    dead-lettered; a handler may declare its own."""
    outbox_retention_days: int = 7
    """Delivered outbox messages (and their delivery log) are purged this many days after delivery."""
    allow_sqlite_in_production: bool = False
    jwt_issuer: str = "hue-citizen"
    jwt_audience: str = "hue-citizen-mobile"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    max_json_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    office_hours: tuple[tuple[time, time], ...] = ((time(7, 0), time(11, 30)), (time(13, 30), time(17, 0)))
    """Public offices' opening periods on a working day, in Asia/Ho_Chi_Minh (``OFFICE_HOURS``, e.g.
    ``07:00-11:30,13:30-17:00``: 4.5 h + 3.5 h = the 8 working hours of a working day). Deadlines of
    public-service dossiers are counted in these hours."""
    db_pool_size: int = 10
    autopay_reminder_days: int = 3
    """A saved code's unpaid bill due within this many days is announced once in the citizen's inbox
    (``AUTOPAY_REMINDER_DAYS``)."""
    complaint_sla_working_days: int = 10
    """Working days (the offices' calendar) within which a payment complaint must be closed; an open one
    past it is escalated (``COMPLAINT_SLA_WORKING_DAYS``)."""
    pin_lock_seconds: int = 15 * 60
    """How long the payment PIN stays locked after 5 wrong tries."""
    sms_gateway_url: str | None = None
    """HTTPS endpoint of the SMS gateway (JSON POST); unset outside production means the dev SMS outbox."""
    sms_gateway_token: str | None = None
    """Bearer token for the SMS gateway."""
    bank_api_url: str | None = None
    """Base URL of the partner bank's payout API (``app.core.bank_transfer``); unset outside production means
    the in-process sandbox bank."""
    bank_api_token: str | None = None
    """Bearer token for the partner bank's payout API."""
    card_gateway_url: str | None = None
    """Base URL of the Stripe-compatible card gateway (top-ups, ``app.wallet.gateway``); unset outside
    production means the embedded sandbox gateway (production refuses to start without a real one)."""
    card_gateway_secret_key: str | None = None
    """The gateway's secret API key (``sk_live_...``), sent as a bearer token."""
    vietqr_acquirer_bin: str = "970423"
    """NAPAS BIN (6 digits) of the partner bank that acquires QR payments for the wallet: field 38-01-00 of
    every merchant VietQR (``VIETQR_ACQUIRER_BIN``)."""
    merchant_mdr_bps: int = 60
    """Default merchant discount rate for newly approved merchants, in basis points (60 = 0.6 %)
    (``MERCHANT_MDR_BPS``)."""
    merchant_order_ttl_seconds: int = 900
    """How long a dynamic QR (an order) can be paid after it is created (``MERCHANT_ORDER_TTL_SECONDS``)."""
    jwt_keys: KeyRing = field(default_factory=lambda: KeyRing.parse("JWT_KEYS", _DEV_SECRETS["JWT_KEYS"]))
    pin_keys: KeyRing = field(default_factory=lambda: KeyRing.parse("PIN_KEYS", _DEV_SECRETS["PIN_KEYS"]))
    data_keys: KeyRing = field(default_factory=lambda: KeyRing.parse("DATA_KEYS", _DEV_SECRETS["DATA_KEYS"]))
    audit_keys: KeyRing = field(
        default_factory=lambda: KeyRing.parse("AUDIT_KEYS", _DEV_SECRETS["AUDIT_KEYS"])
    )
    webhook_keys: KeyRing = field(
        default_factory=lambda: KeyRing.parse("WEBHOOK_KEYS", _DEV_SECRETS["WEBHOOK_KEYS"])
    )
    receipt_keys: KeyRing = field(
        default_factory=lambda: KeyRing.parse("RECEIPT_KEYS", _DEV_SECRETS["RECEIPT_KEYS"])
    )
    """Seeds of the Ed25519 keys that sign e-receipts (one key per key id; old ids stay verifiable)."""
    result_keys: KeyRing | None = None
    """Seeds of the per-agency Ed25519 keys that sign dossier results (``RESULT_KEYS``; each agency's key is
    derived from the seed and its agency code). Unset: derived from ``RECEIPT_KEYS`` under a separate purpose,
    so no key is shared with receipts."""
    public_base_url: str = "http://127.0.0.1:8000"
    """Public address of the API (``PUBLIC_BASE_URL``), printed in the QR code of signed results."""
    result_postage_vnd: int = 30_000
    """Postage of a result returned by public post (``RESULT_POSTAGE_VND``, đồng), billed to the citizen."""
    card_gateway_webhook_secrets: KeyRing = field(
        default_factory=lambda: KeyRing.parse(
            "CARD_GATEWAY_WEBHOOK_SECRETS", _DEV_SECRETS["CARD_GATEWAY_WEBHOOK_SECRETS"]
        )
    )
    """The gateway's webhook signing secrets (``Stripe-Signature``): an event is accepted when any ``v1``
    matches any of them, so a new secret is added in front while the old one still verifies."""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def key_rings(self) -> tuple[KeyRing, ...]:
        return (
            self.jwt_keys,
            self.pin_keys,
            self.data_keys,
            self.audit_keys,
            self.webhook_keys,
            self.receipt_keys,
            *((self.result_keys,) if self.result_keys is not None else ()),
            self.card_gateway_webhook_secrets,
        )

    @property
    def result_ring(self) -> KeyRing:
        """The key ring that signs dossier results (``RESULT_KEYS``, else ``RECEIPT_KEYS``)."""
        return self.result_keys or self.receipt_keys


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name}: expected a boolean (true/false), got {raw!r}")


def _int(name: str, raw: str, minimum: int = 1) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return value


def _float(name: str, raw: str, minimum: float = 0.0) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from exc
    if not value >= minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {raw!r}")
    return value


def _networks(name: str, raw: str) -> tuple[str, ...]:
    networks: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError as exc:
            raise ConfigError(f"{name}: {part!r} is not an IP address or CIDR network") from exc
    return tuple(networks)


def _database_url(raw: str) -> str:
    if raw.startswith("postgresql://") or raw.startswith("postgres://"):
        raw = "postgresql+asyncpg://" + raw.split("://", 1)[1]
    if not (raw.startswith("postgresql+asyncpg://") or raw.startswith("sqlite+aiosqlite:///")):
        raise ConfigError(
            "DATABASE_URL: expected postgresql+asyncpg://user@host/db or sqlite+aiosqlite:///path, "
            f"got scheme {raw.split(':', 1)[0]!r}"
        )
    return raw


def _office_hours(raw: str) -> tuple[tuple[time, time], ...]:
    """``HH:MM-HH:MM[,HH:MM-HH:MM...]``: ordered, non-overlapping periods within one day."""
    periods: list[tuple[time, time]] = []
    for part in raw.split(","):
        start_text, sep, end_text = part.strip().partition("-")
        try:
            if not sep:
                raise ValueError(part)
            start = time.fromisoformat(start_text.strip())
            end = time.fromisoformat(end_text.strip())
        except ValueError as exc:
            raise ConfigError(f"OFFICE_HOURS: expected 'HH:MM-HH:MM[,HH:MM-HH:MM...]', got {raw!r}") from exc
        if start >= end or (periods and start < periods[-1][1]):
            raise ConfigError(f"OFFICE_HOURS: periods must be ordered and not overlap, got {raw!r}")
        periods.append((start, end))
    return tuple(periods)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (default: the process environment), refusing bad or unsafe values."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    environment = env.get("APP_ENV", "development")
    if environment not in ("development", "test", "production"):
        raise ConfigError(f"APP_ENV: expected development, test or production, got {environment!r}")
    values["environment"] = environment
    var_dir = Path(env.get("VAR_DIR", "./var"))
    values["var_dir"] = var_dir
    values["database_url"] = _database_url(
        env.get("DATABASE_URL", f"sqlite+aiosqlite:///{(var_dir / 'hue.db').as_posix()}")
    )
    if redis_url := env.get("REDIS_URL"):
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"REDIS_URL: expected redis://host:port/db, got {redis_url!r}")
        values["redis_url"] = redis_url
    values["redis_prefix"] = env.get("REDIS_PREFIX", "hue:")
    if "REDIS_COOLDOWN_SECONDS" in env:
        values["redis_cooldown_seconds"] = _float("REDIS_COOLDOWN_SECONDS", env["REDIS_COOLDOWN_SECONDS"])
    for category in ("signin", "otp", "payments", "default"):
        var = f"RATE_LIMIT_{category.upper()}"
        if var in env:
            values[f"rate_limit_{category}"] = RateRule.parse(var, env[var])
    if "TRUSTED_PROXIES" in env:
        values["trusted_proxies"] = _networks("TRUSTED_PROXIES", env["TRUSTED_PROXIES"])
    values["host"] = env.get("HOST", "127.0.0.1")
    if "PORT" in env:
        values["port"] = _int("PORT", env["PORT"])
    log_level = env.get("LOG_LEVEL", "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
    values["log_level"] = log_level
    for var, attr in (
        ("LOG_JSON", "log_json"),
        ("RUN_WORKER_IN_PROCESS", "run_worker_in_process"),
        ("ALLOW_SQLITE_IN_PRODUCTION", "allow_sqlite_in_production"),
    ):
        if var in env:
            values[attr] = _bool(var, env[var])
    if "RUN_WORKER_IN_PROCESS" not in env and environment == "production":
        values["run_worker_in_process"] = False
    if environment == "test":
        values["run_worker_in_process"] = False  # tests start workers explicitly, never behind their back
    for var, attr in (
        ("ACCESS_TOKEN_TTL_SECONDS", "access_token_ttl_seconds"),
        ("REFRESH_TOKEN_TTL_SECONDS", "refresh_token_ttl_seconds"),
        ("MAX_JSON_BODY_BYTES", "max_json_body_bytes"),
        ("MAX_UPLOAD_BYTES", "max_upload_bytes"),
        ("DB_POOL_SIZE", "db_pool_size"),
        ("AUTOPAY_REMINDER_DAYS", "autopay_reminder_days"),
        ("COMPLAINT_SLA_WORKING_DAYS", "complaint_sla_working_days"),
        ("PIN_LOCK_SECONDS", "pin_lock_seconds"),
        ("OUTBOX_MAX_ATTEMPTS", "outbox_max_attempts"),
        ("OUTBOX_RETENTION_DAYS", "outbox_retention_days"),
        ("MERCHANT_ORDER_TTL_SECONDS", "merchant_order_ttl_seconds"),
    ):
        if var in env:
            values[attr] = _int(var, env[var])
    if "MERCHANT_MDR_BPS" in env:
        values["merchant_mdr_bps"] = _int("MERCHANT_MDR_BPS", env["MERCHANT_MDR_BPS"], minimum=0)
    if acquirer := env.get("VIETQR_ACQUIRER_BIN"):
        if not (len(acquirer) == 6 and acquirer.isdigit()):
            raise ConfigError(f"VIETQR_ACQUIRER_BIN: expected 6 digits, got {acquirer!r}")
        values["vietqr_acquirer_bin"] = acquirer
    if sms_url := env.get("SMS_GATEWAY_URL"):
        if not sms_url.startswith(("https://", "http://")):
            raise ConfigError(f"SMS_GATEWAY_URL: expected an http(s) URL, got {sms_url!r}")
        values["sms_gateway_url"] = sms_url
        values["sms_gateway_token"] = env.get("SMS_GATEWAY_TOKEN") or None
    if bank_url := env.get("BANK_API_URL"):
        if not bank_url.startswith(("https://", "http://")):
            raise ConfigError(f"BANK_API_URL: expected an http(s) URL, got {bank_url!r}")
        values["bank_api_url"] = bank_url
        values["bank_api_token"] = env.get("BANK_API_TOKEN") or None
    if gateway_url := env.get("CARD_GATEWAY_URL"):
        if not gateway_url.startswith(("https://", "http://")):
            raise ConfigError(f"CARD_GATEWAY_URL: expected an http(s) URL, got {gateway_url!r}")
        values["card_gateway_url"] = gateway_url
        values["card_gateway_secret_key"] = env.get("CARD_GATEWAY_SECRET_KEY") or None
    if "OFFICE_HOURS" in env:
        values["office_hours"] = _office_hours(env["OFFICE_HOURS"])
    for var, attr in (("JWT_ISSUER", "jwt_issuer"), ("JWT_AUDIENCE", "jwt_audience")):
        if var in env:
            values[attr] = env[var]
    for var, default in _DEV_SECRETS.items():
        values[var.lower()] = KeyRing.parse(var, env.get(var, default))
    if "RESULT_KEYS" in env:
        values["result_keys"] = KeyRing.parse("RESULT_KEYS", env["RESULT_KEYS"])
    if public_url := env.get("PUBLIC_BASE_URL"):
        if not public_url.startswith(("https://", "http://")):
            raise ConfigError(f"PUBLIC_BASE_URL: expected an http(s) URL, got {public_url!r}")
        values["public_base_url"] = public_url.rstrip("/")
    if "RESULT_POSTAGE_VND" in env:
        values["result_postage_vnd"] = _int("RESULT_POSTAGE_VND", env["RESULT_POSTAGE_VND"], minimum=0)
    settings = Settings(**values)  # type: ignore[arg-type]
    _refuse_unsafe_production(settings)
    return settings


def _refuse_unsafe_production(settings: Settings) -> None:
    if not settings.is_production:
        return
    for ring in settings.key_rings:
        if ring.is_development:
            raise ConfigError(
                f"{ring.name}: production refuses the embedded development secret; set a real key"
            )
    if settings.sms_gateway_url is None:
        raise ConfigError("SMS_GATEWAY_URL: production needs an SMS gateway to send one-time codes")
    if settings.bank_api_url is None:
        raise ConfigError(
            "BANK_API_URL: production needs the partner bank's payout API (the sandbox pays nobody)"
        )
    if settings.card_gateway_url is None or not settings.card_gateway_secret_key:
        raise ConfigError(
            "CARD_GATEWAY_URL: production needs the card gateway and CARD_GATEWAY_SECRET_KEY "
            "(the embedded sandbox gateway moves no real money)"
        )
    if settings.is_sqlite and not settings.allow_sqlite_in_production:
        raise ConfigError(
            "DATABASE_URL: production refuses SQLite; set a PostgreSQL URL or ALLOW_SQLITE_IN_PRODUCTION=true"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
