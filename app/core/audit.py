"""The audit trail: an append-only, tamper-evident chain of security, officer and admin actions.

Every row carries ``mac = HMAC-SHA256(key[kid], canonical(row) including prev_mac)`` where ``prev_mac`` is the
previous row's MAC, and ``seq`` is gapless. The key comes from ``AUDIT_KEYS`` (held outside the database), so
someone who can write to the database but does not hold the key cannot edit, delete or insert a row, nor
rewrite the tail with freshly computed plain hashes, without :func:`verify_chain` noticing. Someone who also
holds the key could rewrite the tail with valid MACs: that is what the *anchors* are for. The chain's head
(sequence number and MAC) is regularly written outside the database by :func:`anchor_audit_head` into an
:class:`AnchorStore` (append-only; a file here, WORM storage in production), and verification compares the
chain with every anchor.

Appending (:func:`record`) happens in the caller's transaction, so an action and its audit row commit or
roll back together; :func:`record_separately` writes in a transaction of its own (a refused sign-in whose own
transaction rolls back). Appenders are serialised on the one-row ``audit_head`` table: the first statement
``UPDATE audit_head SET seq = seq + 1 ... RETURNING`` takes a row lock on PostgreSQL and the write lock on
SQLite, held until the caller commits. Call :func:`record` as late as possible in a transaction, and never on
a hot money path: a day's ledger journal enters the chain as ONE digest through :func:`seal_digest`.

Details are small JSON objects (at most 4 KiB) of strings, integers, booleans and nulls; keys naming
secrets or personal numbers and strings that look like phone or citizen-ID numbers are redacted before the
row is written. Never put names, phone numbers or CCCD numbers in ``object_id``: use internal ids.

Production anchoring (WORM): implement :class:`AnchorStore` over storage the database's operators cannot
rewrite, e.g. an S3 bucket with Object Lock in *compliance* mode (one object per anchor, key
``anchors/{seq:020d}-{anchored_at}.json``, a retention of several years, written by a role that can only
``PutObject``), or a remote append-only log (a syslog/journald forwarder to a separate host, a ``chattr +a``
file on a machine with other administrators), and return it from :func:`anchor_store_for`. The file store
below keeps the same JSON-lines format, so anchors can be copied there verbatim.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import msgspec
import structlog
from litestar import Request
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.audit_models import GENESIS_MAC, AuditEvent, AuditHead
from app.core.db import Database, database_of, utcnow
from app.core.security import Caller
from app.core.settings import KeyRing, Settings, get_settings

__all__ = [
    "MAX_DETAILS_BYTES",
    "Anchor",
    "AnchorLog",
    "AnchorStore",
    "AuditActor",
    "AuditChainError",
    "ChainProblem",
    "FileAnchorStore",
    "Outcome",
    "Recorded",
    "SealConflictError",
    "VerificationReport",
    "anchor_audit_head",
    "anchor_store_for",
    "client_address",
    "read_head",
    "record",
    "record_separately",
    "seal_digest",
    "sealed_digest",
    "search_events",
    "verify_chain",
    "verify_now",
]

log = structlog.get_logger("app.audit")

Outcome = Literal["success", "failure", "denied"]
OUTCOMES: frozenset[str] = frozenset({"success", "failure", "denied"})
MAX_DETAILS_BYTES = 4096
SEAL_ACTION = "audit.seal"
SEAL_OBJECT_TYPE = "digest"
_FORMAT = "hue-audit-v1"
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_SENSITIVE_KEYS = frozenset(
    {
        "pin",
        "password",
        "otp",
        "otp_code",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "secret",
        "cccd",
        "citizen_id",
        "phone",
        "phone_number",
        "card_number",
        "api_key",
        "push_token",
    }
)
_NUMBER = re.compile(r"(?<![\w+-])(\+?84|0)?\d{9,12}(?![\w-])")
"""A free-standing run of 9-12 digits (a phone or CCCD number); not digits inside ids or hex digests."""
_REDACTED = "[redacted]"
_BATCH = 2000
_MAX_PROBLEMS = 100


class AuditChainError(RuntimeError):
    """The chain does not verify: refuse to anchor a chain that may have been tampered with."""

    def __init__(self, report: VerificationReport) -> None:
        first = report.problems[0] if report.problems else None
        super().__init__(
            f"audit chain does not verify: {report.problems_total} problem(s)"
            + (f", first {first.kind} at seq {first.seq}" if first else "")
        )
        self.report = report


class SealConflictError(RuntimeError):
    """A label was already sealed with another digest: what it covers changed after sealing."""


# ---------------------------------------------------------------------------------------------- actors


@dataclass(frozen=True, slots=True)
class AuditActor:
    """Who did it: a user (with the role they acted in), the system, or an anonymous client."""

    id: uuid.UUID | None
    role: str

    @classmethod
    def of(cls, caller: Caller) -> AuditActor:
        """The caller of a request. Admins are recorded with their duties (``admin:support,finance``)."""
        if caller.is_admin:
            role = "admin:" + ",".join(sorted(caller.duties)) if caller.duties else "admin"
        else:
            role = ",".join(sorted(caller.roles)) or "none"
        return cls(id=caller.user_id, role=role[:64])

    @classmethod
    def user(cls, user_id: uuid.UUID, role: str) -> AuditActor:
        """A user identified outside a request (e.g. a failed sign-in for a known account)."""
        return cls(id=user_id, role=role[:64])

    @classmethod
    def system(cls, job: str = "system") -> AuditActor:
        """The platform itself (a scheduled job, the outbox, the CLI)."""
        return cls(id=None, role=f"system:{job}"[:64] if job != "system" else "system")

    @classmethod
    def anonymous(cls) -> AuditActor:
        """A client that has not proved who it is (e.g. a sign-in attempt for an unknown number)."""
        return cls(id=None, role="anonymous")


@dataclass(frozen=True, slots=True)
class Recorded:
    """A row appended to the chain."""

    seq: int
    mac: str
    occurred_at: datetime


# --------------------------------------------------------------------------------------------- the MAC


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical(
    *,
    seq: int,
    occurred_at: datetime,
    actor_id: uuid.UUID | None,
    actor_role: str,
    action: str,
    object_type: str,
    object_id: str | None,
    outcome: str,
    client_address: str | None,
    details: str,
    kid: str,
    prev_mac: str,
) -> bytes:
    fields = [
        _FORMAT,
        seq,
        _iso(occurred_at),
        str(actor_id) if actor_id is not None else None,
        actor_role,
        action,
        object_type,
        object_id,
        outcome,
        client_address,
        details,
        kid,
        prev_mac,
    ]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def _mac(key: bytes, canonical: bytes) -> str:
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def _row_canonical(row: AuditEvent, seq: int | None = None) -> bytes:
    return _canonical(
        seq=row.seq if seq is None else seq,
        occurred_at=row.occurred_at,
        actor_id=row.actor_id,
        actor_role=row.actor_role,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        outcome=row.outcome,
        client_address=row.client_address,
        details=row.details,
        kid=row.kid,
        prev_mac=row.prev_mac,
    )


def _keys_for(session: AsyncSession) -> KeyRing:
    database = database_of(session)
    return database.settings.audit_keys if database is not None else get_settings().audit_keys


# ------------------------------------------------------------------------------------------- details


def _clean(value: Any, key: str | None, path: str) -> Any:
    if key is not None and key.lower() in _SENSITIVE_KEYS:
        return _REDACTED
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _NUMBER.sub("[number]", value)
    if isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"audit details: key {k!r} at {path or 'top'} is not a string")
            cleaned[k] = _clean(v, k, f"{path}.{k}" if path else k)
        return cleaned
    if isinstance(value, list | tuple):
        return [_clean(v, None, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(
        f"audit details: {type(value).__name__} at {path or 'top'} is not allowed "
        "(strings, integers, booleans, null, lists and objects only; money is int đồng)"
    )


def canonical_details(details: dict[str, Any] | None) -> str:
    """The redacted canonical JSON text stored (and MAC-ed) for ``details``."""
    cleaned = _clean(details or {}, None, "")
    text = json.dumps(cleaned, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    if len(text.encode()) > MAX_DETAILS_BYTES:
        raise ValueError(f"audit details are {len(text.encode())} bytes; keep them under {MAX_DETAILS_BYTES}")
    return text


def client_address(request: Request[Any, Any, Any]) -> str | None:
    """The address a request came from, as the ASGI server saw it (for ``record(client_address=...)``).

    Behind a reverse proxy, configure the server to take the client's address from the proxy's header
    (and only from the proxy's addresses); never read a raw ``X-Forwarded-For`` here: clients forge it."""
    client = request.client
    return client.host if client is not None else None


# ---------------------------------------------------------------------------------------------- append


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def _ensure_head(session: AsyncSession) -> None:
    values = {"id": 1, "seq": 0, "mac": GENESIS_MAC, "updated_at": utcnow()}
    statement = (
        postgresql.insert(AuditHead).values(values).on_conflict_do_nothing(index_elements=["id"])
        if _dialect(session) == "postgresql"
        else sqlite.insert(AuditHead).values(values).on_conflict_do_nothing(index_elements=["id"])
    )
    await session.execute(statement)


# Core statements on the tables, built once (appending must stay cheap: no ORM bulk-update machinery).
_HEAD = cast(Table, AuditHead.__table__)
_EVENTS = cast(Table, AuditEvent.__table__)
_ADVANCE = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=_HEAD.c.seq + 1, updated_at=bindparam("now"))
    .returning(_HEAD.c.seq, _HEAD.c.mac)
)
_INSERT_EVENT = insert(_EVENTS)
_SET_HEAD_MAC = update(_HEAD).where(_HEAD.c.id == 1).values(mac=bindparam("head_mac"))


async def _advance_head(session: AsyncSession) -> tuple[int, str]:
    """Take the chain lock and claim the next sequence number; returns it and the previous row's MAC.

    One statement both locks (row lock on PostgreSQL, write lock on SQLite) and reads, so two appenders can
    never read the same head."""
    for _ in range(2):
        row = (await session.execute(_ADVANCE, {"now": utcnow()})).one_or_none()
        if row is not None:
            return int(row[0]), str(row[1])
        await _ensure_head(session)
    raise RuntimeError("audit_head could not be created")


def _name(value: str, what: str) -> str:
    if len(value) > 64 or not _NAME.match(value):
        raise ValueError(f"audit {what} {value!r}: use dotted snake_case names up to 64 characters")
    return value


async def record(
    session: AsyncSession,
    *,
    actor: AuditActor | Caller | None,
    action: str,
    object_type: str,
    object_id: str | uuid.UUID | None = None,
    outcome: Outcome = "success",
    client_address: str | None = None,
    details: dict[str, Any] | None = None,
    keys: KeyRing | None = None,
) -> Recorded:
    """Append one audit row in ``session``'s transaction (it commits or rolls back with the caller's work).

    ``actor``: an :class:`AuditActor`, the request's :class:`Caller`, or None for the system.
    ``action``: dotted snake_case, module first (``identity.sign_in``, ``identity.pin_locked``,
    ``services.dossier_approved``). ``object_type``/``object_id``: what it was done to (internal ids only).
    ``outcome``: ``success``, ``failure`` (it went wrong) or ``denied`` (refused on purpose).
    ``details``: small JSON, redacted (see the module docstring). ``keys``: the MAC key ring (default: the
    settings of the session's :class:`Database`).
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome {outcome!r}: expected one of {sorted(OUTCOMES)}")
    who = AuditActor.of(actor) if isinstance(actor, Caller) else actor or AuditActor.system()
    action = _name(action, "action")
    object_type = _name(object_type, "object type")
    object_ref = str(object_id) if object_id is not None else None
    if object_ref is not None and len(object_ref) > 128:
        raise ValueError("audit object id longer than 128 characters")
    address = client_address[:64] if client_address else None
    details_text = canonical_details(details)
    ring = keys or _keys_for(session)
    kid, key = ring.active_kid, ring.active_key
    occurred_at = utcnow()

    seq, prev_mac = await _advance_head(session)
    mac = _mac(
        key,
        _canonical(
            seq=seq,
            occurred_at=occurred_at,
            actor_id=who.id,
            actor_role=who.role,
            action=action,
            object_type=object_type,
            object_id=object_ref,
            outcome=outcome,
            client_address=address,
            details=details_text,
            kid=kid,
            prev_mac=prev_mac,
        ),
    )
    await session.execute(
        _INSERT_EVENT,
        {
            "seq": seq,
            "occurred_at": occurred_at,
            "actor_id": who.id,
            "actor_role": who.role,
            "action": action,
            "object_type": object_type,
            "object_id": object_ref,
            "outcome": outcome,
            "client_address": address,
            "details": details_text,
            "kid": kid,
            "prev_mac": prev_mac,
            "mac": mac,
        },
    )
    await session.execute(_SET_HEAD_MAC, {"head_mac": mac})
    return Recorded(seq=seq, mac=mac, occurred_at=occurred_at)


async def record_separately(
    db: Database,
    *,
    actor: AuditActor | Caller | None,
    action: str,
    object_type: str,
    object_id: str | uuid.UUID | None = None,
    outcome: Outcome = "success",
    client_address: str | None = None,
    details: dict[str, Any] | None = None,
) -> Recorded:
    """:func:`record` in a transaction of its own: for events that must stay recorded although the work they
    describe is refused and rolled back (a wrong password, a PIN lock, a refresh token reused).

    Never call it from inside a transaction that has already called :func:`record`: that transaction holds
    the chain lock until it ends, so this second transaction would wait for it forever."""
    async with db.transaction() as session:
        return await record(
            session,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            outcome=outcome,
            client_address=client_address,
            details=details,
            keys=db.settings.audit_keys,
        )


async def seal_digest(
    session: AsyncSession,
    label: str,
    digest: str,
    *,
    algorithm: str = "sha256",
    details: dict[str, Any] | None = None,
) -> Recorded:
    """Seal ``digest`` (lowercase hex) under ``label`` into the chain as one audit row.

    Meant for bulk records that must not queue behind the chain lock: the ledger computes one digest of a
    business day's journal (``label="ledger.journal:2026-11-23"``) and seals it once, so a later change to
    that day's entries no longer matches the sealed digest. Sealing the same label with the same digest again
    returns the existing row (idempotent, safe for a retried job); with another digest it raises
    :class:`SealConflictError`, because what the label covers has changed since it was sealed.
    """
    if not re.fullmatch(r"[a-z0-9_.:-]{1,128}", label):
        raise ValueError(f"seal label {label!r}: use [a-z0-9_.:-], at most 128 characters")
    if not re.fullmatch(r"[0-9a-f]{32,128}", digest):
        raise ValueError("seal digest: expected lowercase hexadecimal (e.g. a SHA-256 hexdigest)")
    await _ensure_head(session)
    # Lock the head before looking for an existing seal, so two sealers of one label cannot both append.
    await session.execute(select(AuditHead.seq).where(AuditHead.id == 1).with_for_update())
    existing = (
        await session.execute(
            select(AuditEvent)
            .where(
                AuditEvent.action == SEAL_ACTION,
                AuditEvent.object_type == SEAL_OBJECT_TYPE,
                AuditEvent.object_id == label,
            )
            .order_by(AuditEvent.seq)
            .limit(1)
        )
    ).scalar_one_or_none()
    if existing is not None:
        sealed = json.loads(existing.details).get("digest")
        if sealed != digest:
            raise SealConflictError(f"{label} was sealed at seq {existing.seq} with another digest")
        return Recorded(seq=existing.seq, mac=existing.mac, occurred_at=existing.occurred_at)
    return await record(
        session,
        actor=AuditActor.system("seal"),
        action=SEAL_ACTION,
        object_type=SEAL_OBJECT_TYPE,
        object_id=label,
        outcome="success",
        details={**(details or {}), "digest": digest, "algorithm": algorithm},
    )


async def sealed_digest(session: AsyncSession, label: str) -> str | None:
    """The digest sealed under ``label``, or None (compare it with a digest recomputed from the data)."""
    text = (
        await session.execute(
            select(AuditEvent.details)
            .where(
                AuditEvent.action == SEAL_ACTION,
                AuditEvent.object_type == SEAL_OBJECT_TYPE,
                AuditEvent.object_id == label,
            )
            .order_by(AuditEvent.seq)
            .limit(1)
        )
    ).scalar_one_or_none()
    if text is None:
        return None
    value = json.loads(text).get("digest")
    return value if isinstance(value, str) else None


async def read_head(session: AsyncSession) -> tuple[int, str] | None:
    """The chain head as the database states it: (seq, mac), or None before the first append."""
    row = (await session.execute(select(AuditHead.seq, AuditHead.mac).where(AuditHead.id == 1))).one_or_none()
    return (int(row[0]), str(row[1])) if row is not None else None


# ---------------------------------------------------------------------------------------------- search


async def search_events(
    session: AsyncSession,
    *,
    actor_id: uuid.UUID | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """Newest first; ``before_seq`` continues a page. ``action`` ending in ``.`` or ``*`` is a prefix."""
    statement = select(AuditEvent)
    if actor_id is not None:
        statement = statement.where(AuditEvent.actor_id == actor_id)
    if action:
        if action.endswith(("*", ".")):
            statement = statement.where(AuditEvent.action.startswith(action.rstrip("*"), autoescape=True))
        else:
            statement = statement.where(AuditEvent.action == action)
    if object_type:
        statement = statement.where(AuditEvent.object_type == object_type)
    if object_id:
        statement = statement.where(AuditEvent.object_id == object_id)
    if since is not None:
        statement = statement.where(AuditEvent.occurred_at >= since)
    if until is not None:
        statement = statement.where(AuditEvent.occurred_at < until)
    if before_seq is not None:
        statement = statement.where(AuditEvent.seq < before_seq)
    statement = statement.order_by(AuditEvent.seq.desc()).limit(limit)
    return list((await session.execute(statement)).scalars())


# --------------------------------------------------------------------------------------------- anchors


class Anchor(msgspec.Struct, frozen=True, kw_only=True):
    """The chain's head as it was at ``anchored_at``, kept outside the database."""

    seq: int
    mac: str
    anchored_at: datetime
    label: str
    """``daily`` (the scheduled job) or ``explicit`` (an operator's ``hue audit anchor``)."""
    kid: str
    signature: str
    """HMAC of the anchor with the audit key: a forged anchor line is recognised (and ignored)."""


def _anchor_signature(key: bytes, seq: int, mac: str, anchored_at: datetime, label: str) -> str:
    message = json.dumps(["hue-audit-anchor-v1", seq, mac, _iso(anchored_at), label], separators=(",", ":"))
    return _mac(key, message.encode())


def _anchor_is_genuine(keys: KeyRing, anchor: Anchor) -> bool:
    key = keys.get(anchor.kid)
    return key is not None and hmac.compare_digest(
        _anchor_signature(key, anchor.seq, anchor.mac, anchor.anchored_at, anchor.label), anchor.signature
    )


def make_anchor(keys: KeyRing, seq: int, mac: str, label: str, anchored_at: datetime | None = None) -> Anchor:
    at = anchored_at or utcnow()
    return Anchor(
        seq=seq,
        mac=mac,
        anchored_at=at,
        label=label,
        kid=keys.active_kid,
        signature=_anchor_signature(keys.active_key, seq, mac, at, label),
    )


@dataclass(frozen=True, slots=True)
class AnchorLog:
    """Every anchor read back from a store, in the order written, and how many lines could not be read."""

    anchors: tuple[Anchor, ...] = ()
    unreadable: int = 0


class AnchorStore(ABC):
    """Where chain heads are kept outside the database. Append-only: nothing is ever rewritten."""

    @abstractmethod
    async def append(self, anchor: Anchor) -> None:
        """Durably add ``anchor`` (returns only once it is stored)."""

    @abstractmethod
    async def load(self) -> AnchorLog:
        """Every anchor stored so far."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the anchors are, for operators (never a secret)."""


class FileAnchorStore(AnchorStore):
    """Anchors as JSON lines appended (``O_APPEND``, fsync) to ``anchors.jsonl`` in a directory.

    On a development machine or a single server. Its protection is the file system's: give the file to
    another user than the database's and mark it append-only (``chattr +a``), or ship it to WORM storage."""

    FILE_NAME = "anchors.jsonl"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / self.FILE_NAME

    @property
    def location(self) -> str:
        return str(self.path)

    def _append_sync(self, line: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def append(self, anchor: Anchor) -> None:
        await asyncio.to_thread(self._append_sync, msgspec.json.encode(anchor) + b"\n")

    def _load_sync(self) -> AnchorLog:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return AnchorLog()
        anchors: list[Anchor] = []
        unreadable = 0
        for line in raw.splitlines():
            if not line.strip():
                continue
            try:
                anchors.append(msgspec.json.decode(line, type=Anchor))
            except msgspec.DecodeError:
                unreadable += 1
        return AnchorLog(tuple(anchors), unreadable)

    async def load(self) -> AnchorLog:
        return await asyncio.to_thread(self._load_sync)


def anchor_store_for(settings: Settings) -> AnchorStore:
    """The anchor store of this deployment: ``VAR_DIR/audit-heads/anchors.jsonl``.

    Production deployments replace it with a WORM-backed :class:`AnchorStore` (module docstring)."""
    return FileAnchorStore(settings.var_dir / "audit-heads")


# ------------------------------------------------------------------------------------------ verifying


ProblemKind = Literal[
    "altered",
    "deleted",
    "inserted",
    "chain_break",
    "unknown_key",
    "head_missing",
    "head_mismatch",
    "anchor_mismatch",
    "anchor_missing",
    "anchor_forged",
    "anchor_unreadable",
]


class ChainProblem(msgspec.Struct, frozen=True, kw_only=True):
    """One way in which the stored chain differs from what was written."""

    kind: ProblemKind
    """What is wrong: a changed, deleted or inserted row, a broken link, a rewritten tail, an anchor."""
    seq: int | None
    """The sequence number of the row concerned, when one is."""
    detail: str
    """A sentence for the person investigating."""


class VerificationReport(msgspec.Struct, kw_only=True):
    """The outcome of checking every row's MAC, the links between rows, the head and the external anchors."""

    ok: bool
    """True when every row, link, the head and every external anchor check out."""
    rows_checked: int
    """How many audit rows were read."""
    first_seq: int | None
    """Sequence number of the first row read."""
    last_seq: int | None
    """Sequence number of the last row read."""
    head_seq: int | None
    """The chain head's sequence number as stored in the database."""
    head_mac: str | None
    """The chain head's MAC as stored in the database (hex)."""
    anchors_checked: int
    """How many anchors kept outside the database were compared."""
    latest_anchor_seq: int | None
    """Sequence number of the most recent external anchor."""
    latest_anchor_at: datetime | None
    """When the most recent external anchor was written."""
    problems: list[ChainProblem]
    """The first problems found (capped)."""
    problems_total: int
    """How many problems were found in all."""
    verified_at: datetime
    """When this verification ran."""


@dataclass
class _Verifier:
    keys: KeyRing
    problems: list[ChainProblem] = field(default_factory=list)
    total: int = 0

    def add(self, kind: ProblemKind, seq: int | None, detail: str) -> None:
        self.total += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(ChainProblem(kind=kind, seq=seq, detail=detail))

    def authentic(self, row: AuditEvent, seq: int) -> bool | None:
        """Whether ``row``'s MAC is right for position ``seq``; None when its key is unknown."""
        key = self.keys.get(row.kid)
        if key is None:
            return None
        return hmac.compare_digest(_mac(key, _row_canonical(row, seq)), row.mac)


async def _rows(session: AsyncSession, after_seq: int) -> AsyncIterator[AuditEvent]:
    last = after_seq
    while True:
        batch = list(
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(_BATCH)
                )
            ).scalars()
        )
        for row in batch:
            yield row
        if len(batch) < _BATCH:
            return
        last = batch[-1].seq
        session.expunge_all()


async def verify_chain(
    session: AsyncSession,
    anchors: AnchorLog | Sequence[Anchor] = (),
    *,
    keys: KeyRing | None = None,
    since: Anchor | None = None,
) -> VerificationReport:
    """Check the chain (from its start, or from the trusted anchor ``since``) against the external anchors.

    Detects: a changed row (``altered``: its MAC no longer matches its content), deleted rows (``deleted``:
    a gap, or a row whose link and position skip over missing ones), an inserted row (``inserted``: a row
    without a valid MAC that the chain runs around, or beyond the head), a tail rewritten with plain hashes
    (``altered`` from the first rewritten row on), a tail rewritten with valid MACs (``anchor_mismatch``, or
    ``anchor_missing`` if it was also shortened), and a head that does not match the last row.
    """
    ring = keys or _keys_for(session)
    check = _Verifier(ring)
    log_ = anchors if isinstance(anchors, AnchorLog) else AnchorLog(tuple(anchors))

    head = await read_head(session)
    if head is None:
        check.add("head_missing", None, "the audit_head row is missing")

    start_seq, prev_mac = 0, GENESIS_MAC
    if since is not None:
        start_seq, prev_mac = since.seq, since.mac
        anchored = (
            await session.execute(select(AuditEvent.mac).where(AuditEvent.seq == since.seq))
        ).scalar_one_or_none()
        if anchored != since.mac:
            check.add("anchor_mismatch", since.seq, "the row at the starting anchor differs from the anchor")

    rows_checked = 0
    first_seq: int | None = None
    expected = start_seq + 1  # the original sequence number the next row must have
    shift = 0  # rows inserted so far (their followers were renumbered by that much)
    prev_flagged = False
    positions: dict[int, str] = {}  # original seq -> stored MAC, for the anchors
    wanted = {a.seq for a in log_.anchors}
    pending: AuditEvent | None = None

    async def consider(row: AuditEvent, following: AuditEvent | None) -> None:
        nonlocal expected, shift, prev_mac, prev_flagged
        original = row.seq - shift
        verdict = check.authentic(row, original)
        if verdict is None:
            check.add("unknown_key", row.seq, f"row signed with key id {row.kid!r}, not in AUDIT_KEYS")
            expected, prev_mac, prev_flagged = original + 1, row.mac, True
            return
        if not verdict:
            # Deleted rows with the followers renumbered: the row verifies at a later position.
            for gap in range(1, 4):
                if check.authentic(row, original + gap):
                    check.add(
                        "deleted",
                        expected,
                        f"{gap} row(s) deleted before seq {row.seq} and the rest renumbered",
                    )
                    shift -= gap
                    expected, prev_mac, prev_flagged = original + gap + 1, row.mac, False
                    if original + gap in wanted:
                        positions[original + gap] = row.mac
                    return
            if following is not None and following.prev_mac == prev_mac:
                check.add("inserted", row.seq, "a row without a valid MAC that the chain runs around")
                shift += 1
                return
            if head is not None and following is None and row.seq > head[0]:
                check.add("inserted", row.seq, "a row without a valid MAC beyond the recorded head")
                return
            check.add("altered", row.seq, "the row's MAC does not match its content")
            expected, prev_mac, prev_flagged = original + 1, row.mac, True
            if original in wanted:
                positions[original] = row.mac
            return
        if original > expected:
            missing = original - expected
            check.add("deleted", expected, f"{missing} row(s) missing before seq {row.seq}")
        elif row.prev_mac != prev_mac and not prev_flagged:
            check.add("chain_break", row.seq, "the row does not link to the row before it")
        expected, prev_mac, prev_flagged = original + 1, row.mac, False
        if original in wanted:
            positions[original] = row.mac

    async for row in _rows(session, start_seq):
        rows_checked += 1
        if first_seq is None:
            first_seq = row.seq
        if pending is not None:
            await consider(pending, row)
        pending = row
    last_seq, last_mac = start_seq, prev_mac  # the last row as stored
    if pending is not None:
        last_seq, last_mac = pending.seq, pending.mac
        await consider(pending, None)

    if head is not None:
        head_seq, head_mac = head
        if head_seq > last_seq:
            check.add("deleted", last_seq + 1, f"the head is at seq {head_seq}: the last rows are missing")
        elif head_seq != last_seq or head_mac != last_mac:
            check.add("head_mismatch", head_seq, f"the head (seq {head_seq}) does not match the last row")

    latest: Anchor | None = None
    for anchor in log_.anchors:
        if not _anchor_is_genuine(ring, anchor):
            check.add(
                "anchor_forged", anchor.seq, f"anchor of {_iso(anchor.anchored_at)} has a bad signature"
            )
            continue
        if latest is None or anchor.seq >= latest.seq:
            latest = anchor
        if anchor.seq <= start_seq:
            continue
        stored = positions.get(anchor.seq)
        if stored is None:
            check.add(
                "anchor_missing",
                anchor.seq,
                f"anchored on {_iso(anchor.anchored_at)} but no longer in the chain (tail removed)",
            )
        elif not hmac.compare_digest(stored, anchor.mac):
            check.add(
                "anchor_mismatch",
                anchor.seq,
                f"differs from the head anchored on {_iso(anchor.anchored_at)} (tail rewritten)",
            )
    if log_.unreadable:
        check.add("anchor_unreadable", None, f"{log_.unreadable} anchor line(s) could not be read")

    return VerificationReport(
        ok=check.total == 0,
        rows_checked=rows_checked,
        first_seq=first_seq,
        last_seq=last_seq if rows_checked else None,
        head_seq=head[0] if head else None,
        head_mac=head[1] if head else None,
        anchors_checked=len(log_.anchors),
        latest_anchor_seq=latest.seq if latest else None,
        latest_anchor_at=latest.anchored_at if latest else None,
        problems=check.problems,
        problems_total=check.total,
        verified_at=utcnow(),
    )


async def verify_now(db: Database, store: AnchorStore | None = None) -> VerificationReport:
    """Verify the whole chain of ``db`` against the deployment's anchors (the CLI and the admin endpoint)."""
    anchors = await (store or anchor_store_for(db.settings)).load()
    async with db.read() as session:
        return await verify_chain(session, anchors, keys=db.settings.audit_keys)


async def anchor_audit_head(
    db: Database,
    settings: Settings,
    *,
    label: str = "daily",
    store: AnchorStore | None = None,
) -> Anchor | None:
    """The scheduled job (daily): write the chain's current head to the anchor store.

    Verifies the rows added since the latest valid anchor first, and refuses (raising
    :class:`AuditChainError`, which the scheduler reports) to anchor a chain that does not verify. Idempotent:
    when the head has not moved since the latest anchor, nothing is written and that anchor is returned.
    Returns None while the chain is empty.
    """
    store = store or anchor_store_for(settings)
    existing = await store.load()
    keys = settings.audit_keys
    trusted: Anchor | None = None
    for anchor in existing.anchors:
        if _anchor_is_genuine(keys, anchor) and (trusted is None or anchor.seq >= trusted.seq):
            trusted = anchor
    async with db.read() as session:
        head = await read_head(session)
        if head is None or head[0] == 0:
            return None
        report = await verify_chain(session, (), keys=keys, since=trusted)
    if not report.ok:
        log.critical("audit_chain_broken", problems=report.problems_total, first=report.problems[0].kind)
        raise AuditChainError(report)
    if trusted is not None and trusted.seq == head[0] and trusted.mac == head[1]:
        return trusted
    anchor = make_anchor(keys, head[0], head[1], label)
    await store.append(anchor)
    log.info("audit_head_anchored", seq=anchor.seq, label=label, store=store.location)
    return anchor
