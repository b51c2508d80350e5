"""Idempotency keys: a retried state-changing request takes effect at most once.

Every state-changing POST (except sign-in, OTP, token refresh, gateway webhooks and console form posts) takes
an ``Idempotency-Key`` header (1-255 characters), scoped per caller. The key, a fingerprint of the request
(method, path, query and canonical body, *without the PIN*) and the response are written in the **same
transaction as the effect**, so a key is stored if and only if its effect was committed:

- same key, same request -> the stored response again (same status and body), with
  ``Idempotent-Replayed: true``; no second effect;
- same key, different request -> 422 ``idempotency_key_reused``;
- same key while the first request is still running -> 409 ``idempotency_in_progress`` (``Retry-After: 1``);
- a refused request (any exception inside the effect: 4xx, wrong PIN, 5xx) rolls back and stores nothing,
  so a corrected retry may reuse the key;
- no key on a route that needs one -> 400 ``idempotency_key_required``.

Keys are replayed for as long as their row exists: at least :data:`IDEMPOTENCY_TTL` (24 h), until
:func:`sweep_idempotency_keys` (a scheduled job) deletes them.

The common case, in a Litestar handler (the service function gets the transaction's session; its effect,
the idempotency row and the commit are one unit of work)::

    from app.core.idempotency import IDEMPOTENCY_ERRORS, IdempotencyKey, idempotent_response, scope_of

    @post("/api/v1/transfers", operation_id="createTransfer", summary="Send money", tags=["wallet"],
          opt={"errors": [*IDEMPOTENCY_ERRORS, INSUFFICIENT_FUNDS]})
    async def create_transfer(
        self, request: Request[Any, Any, Any], data: JSONBody[TransferCreate],
        caller: NamedDependency[Caller], db: NamedDependency[Database],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Transfer]:
        \"\"\"Send money to another wallet (safe to retry with the same Idempotency-Key).\"\"\"
        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data,
            effect=lambda session: service.transfer(session, caller, data),  # -> Transfer
            status_code=201,  # exclude=("pin",) is the default: the PIN is not part of the fingerprint
        )

When a handler needs more control (several results, its own response), use the context manager; the row is
written when the block ends without an exception, just before the commit::

    async with idempotent(db, scope=scope_of(caller), key=key, fingerprint=fp) as unit:
        if unit.replay is not None:
            return unit.replay.to_response()
        payment = await service.pay(unit.session, caller, data)
        stored = unit.record(201, payment)
    return stored.to_response()

Code that already holds an open write transaction (e.g. a money path driving asyncpg itself through the
session's connection) calls :func:`claim_idempotency_key` first in that transaction and
:meth:`Claim.save` last; it then gives up only the in-process fast path described below.

How "still running" is detected, and why a crash never holds a key:

- In this process: a set of in-flight ``(scope, key)`` per :class:`~app.core.db.Database`, checked before
  any database work; the entry is removed in ``finally``, so an exception or a cancelled request frees it.
- On PostgreSQL, across processes: ``pg_try_advisory_xact_lock(hash(scope, key))`` taken inside the effect
  transaction by the SQL function ``idempotency_claim`` (migration ``0002_idempotency``). The lock belongs
  to the transaction: commit, rollback, an exception or a dropped connection (a killed process) release it.
  The function looks the key up again *after* taking the lock; in READ COMMITTED a volatile function's
  statements each take a fresh snapshot, so a row committed by the previous lock holder is always seen.
  That makes the whole check one round trip; writing the row is the second (measured: see
  ``bench/idempotency.py``).
- On SQLite, every write transaction starts with ``BEGIN IMMEDIATE``, which holds the database's single
  write lock until commit, across processes too. A second process's request with the same key therefore
  waits for the first to commit (busy timeout) and then finds its row: it gets the replay (or 422), never a
  second effect. Nothing is stored before the commit, and the OS releases the file lock of a killed
  process, so nothing outlives a crash. (A "pending" row committed first would turn that wait into a 409,
  at the price of a second write transaction per request and a lease to expire after a crash; embedded
  mode is one process, where the in-process set already answers 409.)
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.params import HeaderParameter
from litestar.serialization import encode_json
from sqlalchemy import Row, Table, bindparam, delete, insert, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.db import Database, utcnow
from app.core.errors import VALIDATION_FAILED, AppError, ErrorKind, error_kind
from app.core.models import IdempotencyRecord
from app.core.security import Caller

__all__ = [
    "IDEMPOTENCY_ERRORS",
    "IDEMPOTENCY_IN_PROGRESS",
    "IDEMPOTENCY_KEY_REQUIRED",
    "IDEMPOTENCY_KEY_REUSED",
    "IDEMPOTENCY_TTL",
    "REPLAY_HEADER",
    "Claim",
    "IdempotencyKey",
    "IdempotentUnit",
    "StoredResponse",
    "checked_key",
    "claim_idempotency_key",
    "claimed_replay",
    "encode_body",
    "idempotent",
    "idempotent_response",
    "key_in_flight",
    "lock_id",
    "request_fingerprint",
    "run_idempotent",
    "scope_of",
    "sweep_idempotency_keys",
]

IDEMPOTENCY_TTL = timedelta(hours=24)
"""How long a key is kept (and replayed) at least; :func:`sweep_idempotency_keys` removes older ones."""

REPLAY_HEADER = "Idempotent-Replayed"
"""Response header set to ``true`` on a replayed response."""

MAX_KEY_LENGTH = 255
MAX_SCOPE_LENGTH = 100

IDEMPOTENCY_KEY_REQUIRED = error_kind(
    "idempotency_key_required",
    400,
    "Thiếu khóa chống gửi trùng (Idempotency-Key)",
    "The Idempotency-Key header is required",
)
IDEMPOTENCY_KEY_REUSED = error_kind(
    "idempotency_key_reused",
    422,
    "Khóa Idempotency-Key đã được dùng cho một yêu cầu khác",
    "This Idempotency-Key was already used for a different request",
)
IDEMPOTENCY_IN_PROGRESS = error_kind(
    "idempotency_in_progress",
    409,
    "Yêu cầu với khóa Idempotency-Key này đang được xử lý",
    "A request with this Idempotency-Key is still being processed",
)
IDEMPOTENCY_ERRORS: tuple[ErrorKind, ...] = (
    IDEMPOTENCY_KEY_REQUIRED,
    IDEMPOTENCY_KEY_REUSED,
    IDEMPOTENCY_IN_PROGRESS,
)
"""The errors every idempotent route declares: ``opt={"errors": [*IDEMPOTENCY_ERRORS, ...]}``."""

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=True,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description=(
            "A unique value (a UUID is fine, 1-255 characters) chosen by the client for this operation and "
            "sent again, unchanged, on every retry of it. A retry of a request that took effect returns the "
            "first response again, with `Idempotent-Replayed: true`, and does nothing more; the same key "
            "with a different request is 422 `idempotency_key_reused`; while the first is still running, "
            "409 `idempotency_in_progress` (retry after a second). A refused request (4xx) stores nothing, "
            "so the corrected request may reuse its key. Keys are per caller and kept 24 hours. The PIN is "
            "not compared. Missing: 400 `idempotency_key_required`."
        ),
    ),
]
"""The header parameter of an idempotent route: ``idempotency_key: IdempotencyKey = None``.

Declared optional to Litestar so that a missing header reaches the handler and gets the stable code
``idempotency_key_required``; the OpenAPI document marks it required.
"""


def scope_of(caller: Caller) -> str:
    """The key scope of a signed-in person: keys of different callers never meet."""
    return f"user:{caller.user_id}"


# --- fingerprint -------------------------------------------------------------------------------------------


def _without(value: Any, path: list[str]) -> Any:
    if not isinstance(value, dict) or not path:
        return value
    head, rest = path[0], path[1:]
    if head not in value:
        return value
    copy = dict(value)
    if rest:
        copy[head] = _without(copy[head], rest)
    else:
        del copy[head]
    return copy


def request_fingerprint(
    method: str, path: str, body: Any, *, query: str = "", exclude: Iterable[str] = ("pin",)
) -> bytes:
    """SHA-256 of the canonical request: method, path, sorted query and body with ``exclude`` removed.

    ``body`` is the decoded request (a msgspec Struct, a dict, or None); defaults filled in by decoding make
    ``{"a": 1}`` and ``{"a": 1, "b": <default>}`` the same request, and key order never matters. ``exclude``
    names fields by their JSON name, dotted for nested objects (``"auth.pin"``); the PIN is excluded by
    default, so a retry with a corrected PIN is still the same request.
    """
    data = msgspec.to_builtins(body) if body is not None else None
    for field in exclude:
        data = _without(data, field.split("."))
    params = sorted(parse_qsl(query, keep_blank_values=True))
    canonical = msgspec.json.encode([method.upper(), path, params, data], order="sorted")
    return hashlib.sha256(canonical).digest()


# --- stored responses --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as stored under a key: what the first request got, or what a replay gets again."""

    status_code: int
    body: bytes
    """The JSON body, byte for byte as first sent (empty for 204)."""
    replayed: bool = False

    def to_response(self) -> Response[Any]:
        headers = {REPLAY_HEADER: "true"} if self.replayed else None
        return Response(
            content=self.body, status_code=self.status_code, media_type=MediaType.JSON, headers=headers
        )


def encode_body(status_code: int, content: Any) -> bytes:
    if status_code == 204:
        return b""
    return encode_json(content)


# --- the database side -------------------------------------------------------------------------------------

_TABLE: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
_INSERT = insert(_TABLE)
_LOOKUP = select(_TABLE.c.fingerprint, _TABLE.c.status_code, _TABLE.c.body).where(
    _TABLE.c.scope == bindparam("scope"), _TABLE.c.key == bindparam("key")
)
_PG_CLAIM = text("SELECT claimed, fingerprint, status_code, body FROM idempotency_claim(:scope, :key, :lock)")


def lock_id(scope: str, key: str) -> int:
    """A signed 64-bit advisory-lock id for (scope, key); a collision only costs a spurious 409."""
    digest = hashlib.blake2b(f"{scope}\x1f{key}".encode(), digest_size=8, person=b"idempotency").digest()
    return int.from_bytes(digest, "big", signed=True)


def checked_key(scope: str, key: str | None) -> str:
    if not scope or len(scope) > MAX_SCOPE_LENGTH:
        raise ValueError(f"idempotency scope must be 1-{MAX_SCOPE_LENGTH} characters")
    if not key:
        raise IDEMPOTENCY_KEY_REQUIRED(
            "Hãy gửi header Idempotency-Key (ví dụ một UUID) để yêu cầu có thể thử lại an toàn",
            "Send an Idempotency-Key header (e.g. a UUID) so the request can be retried safely",
        )
    if len(key) > MAX_KEY_LENGTH:
        raise VALIDATION_FAILED(
            f"Idempotency-Key dài tối đa {MAX_KEY_LENGTH} ký tự",
            f"Idempotency-Key is at most {MAX_KEY_LENGTH} characters",
        )
    return key


def _in_progress() -> AppError:
    error = IDEMPOTENCY_IN_PROGRESS(
        "Yêu cầu trước với cùng khóa chưa xong; hãy thử lại sau giây lát",
        "The first request with this key has not finished; retry in a moment",
    )
    error.headers["Retry-After"] = "1"
    return error


class Claim:
    """The right to perform the effect under a key, inside one open write transaction.

    Obtained from :func:`claim_idempotency_key`. Either :attr:`replay` holds the stored response (do
    nothing, answer it), or the caller performs the effect and calls :meth:`save` in the same transaction.
    """

    __slots__ = ("_connection", "fingerprint", "key", "replay", "saved", "scope")

    def __init__(
        self,
        connection: AsyncConnection,
        scope: str,
        key: str,
        fingerprint: bytes,
        replay: StoredResponse | None,
    ) -> None:
        self._connection = connection
        self.scope = scope
        self.key = key
        self.fingerprint = fingerprint
        self.replay = replay
        self.saved: StoredResponse | None = None

    async def save(self, status_code: int, content: Any) -> StoredResponse:
        """Store the response (JSON-encoded ``content``) under the key; one statement, no commit."""
        if self.replay is not None:
            raise RuntimeError("a replayed key has nothing to save")
        if self.saved is not None:
            raise RuntimeError("the response under this key is already saved")
        body = encode_body(status_code, content)
        await self._connection.execute(
            _INSERT,
            {
                "scope": self.scope,
                "key": self.key,
                "fingerprint": self.fingerprint,
                "status_code": status_code,
                "body": body,
                "created_at": utcnow(),
            },
        )
        self.saved = StoredResponse(status_code, body)
        return self.saved


async def claim_idempotency_key(session: AsyncSession, scope: str, key: str, fingerprint: bytes) -> Claim:
    """Check ``key`` as the first statement of ``session``'s write transaction (one round trip).

    Returns a :class:`Claim` (a replay, or the right to proceed); raises 409 ``idempotency_in_progress``
    when another transaction holds the key, 422 ``idempotency_key_reused`` when the key's stored request
    differs. The transaction must be READ COMMITTED (the default) and opened with
    :meth:`Database.transaction` (on SQLite, ``BEGIN IMMEDIATE``).
    """
    key = checked_key(scope, key)
    connection = await session.connection()
    params: dict[str, Any] = {"scope": scope, "key": key}
    row: Row[Any, Any, Any] | None
    if connection.dialect.name == "postgresql":
        params["lock"] = lock_id(scope, key)
        row = (await connection.execute(_PG_CLAIM, params)).one()
        claimed = bool(row.claimed)
    else:
        row = (await connection.execute(_LOOKUP, params)).one_or_none()
        claimed = True
    stored = None if row is None else (row.fingerprint, row.status_code, row.body)
    return Claim(connection, scope, key, fingerprint, claimed_replay(fingerprint, claimed, stored))


def claimed_replay(
    fingerprint: bytes, claimed: bool, stored: tuple[bytes | None, int | None, bytes | None] | None
) -> StoredResponse | None:
    """What a claim's answer means (``idempotency_claim``'s row: ``claimed`` and the stored fingerprint,
    status and body, or None): the stored response to replay, None to go on, or 409 / 422."""
    if stored is not None and stored[0] is not None:
        if bytes(stored[0]) != fingerprint:
            raise IDEMPOTENCY_KEY_REUSED(
                "Khóa này đã được dùng cho một yêu cầu khác; hãy tạo khóa mới cho yêu cầu mới",
                "This key was used for a different request; use a new key for a new request",
            )
        return StoredResponse(int(stored[1] or 0), bytes(stored[2] or b""), replayed=True)
    if not claimed:
        raise _in_progress()
    return None


# --- the unit of work --------------------------------------------------------------------------------------

_IN_FLIGHT: weakref.WeakKeyDictionary[Database, set[tuple[str, str]]] = weakref.WeakKeyDictionary()


class IdempotentUnit:
    """What :func:`idempotent` gives the block: the transaction's session, and a replay or a recorder."""

    __slots__ = ("_recorded", "replay", "session")

    def __init__(self, session: AsyncSession, replay: StoredResponse | None) -> None:
        self.session = session
        self.replay = replay
        self._recorded: tuple[int, Any] | None = None

    def record(self, status_code: int, content: Any) -> StoredResponse:
        """The response of the effect; stored when the block ends normally, in the same transaction."""
        if self.replay is not None:
            raise RuntimeError("a replayed key has nothing to record")
        self._recorded = (status_code, content)
        return StoredResponse(status_code, encode_body(status_code, content))


async def _stored(session: AsyncSession, scope: str, key: str, fingerprint: bytes) -> StoredResponse | None:
    """The response stored under ``key`` (a replay), None when there is none; 422 when the request differs.
    A plain read without any lock: only for the look-up before :func:`idempotent`'s ``prepare``."""
    connection = await session.connection()
    row = (await connection.execute(_LOOKUP, {"scope": scope, "key": key})).one_or_none()
    if row is None:
        return None
    if bytes(row.fingerprint) != fingerprint:
        raise IDEMPOTENCY_KEY_REUSED(
            "Khóa này đã được dùng cho một yêu cầu khác; hãy tạo khóa mới cho yêu cầu mới",
            "This key was used for a different request; use a new key for a new request",
        )
    return StoredResponse(int(row.status_code), bytes(row.body), replayed=True)


@contextmanager
def key_in_flight(db: Database, scope: str, key: str) -> Iterator[None]:
    """Hold (scope, key) in this process for the block: a second request with the key meanwhile gets 409
    ``idempotency_in_progress`` before any database work; the key is let go however the block ends."""
    in_flight = _IN_FLIGHT.setdefault(db, set())
    token = (scope, key)
    if token in in_flight:
        raise _in_progress()
    in_flight.add(token)
    try:
        yield
    finally:
        in_flight.discard(token)


@asynccontextmanager
async def idempotent(
    db: Database,
    *,
    scope: str,
    key: str | None,
    fingerprint: bytes,
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[IdempotentUnit]:
    """One write transaction guarded by ``key``: effect, stored response and commit, all or nothing.

    Raises (before the block runs) 400 ``idempotency_key_required``, 409 ``idempotency_in_progress`` or
    422 ``idempotency_key_reused``. In the block, if ``unit.replay`` is set, answer it and do nothing else;
    otherwise perform the effect with ``unit.session`` and call ``unit.record(status, content)``. An
    exception in the block rolls everything back and stores nothing.

    ``prepare`` is work that must commit on its own even when the effect is then refused, and must not be
    repeated by a replay: consuming a one-time code (a wrong try is counted, committed, before the refusal),
    asking an outside provider, writing a file to the file store. It runs once the key is known not to be
    stored (a plain look-up; a stored key is replayed without calling it), while this process holds the key,
    and before the effect's transaction opens. It opens its own transactions; an exception from it is the
    answer and stores nothing. Across processes, a request with the same key arriving while the first is
    between ``prepare`` and its commit runs its own ``prepare`` (which, for a one-time code, is refused:
    the code is spent) instead of getting 409.
    """
    key = checked_key(scope, key)
    with key_in_flight(db, scope, key):
        if prepare is not None:
            async with db.read() as session:
                stored = await _stored(session, scope, key, fingerprint)
                if stored is not None:
                    yield IdempotentUnit(session, stored)
                    return
            await prepare()
        async with db.transaction() as session:
            claim = await claim_idempotency_key(session, scope, key, fingerprint)
            unit = IdempotentUnit(session, claim.replay)
            yield unit
            if claim.replay is None:
                if unit._recorded is None:
                    raise RuntimeError("idempotent block ended without unit.record(status, content)")
                await claim.save(*unit._recorded)


async def run_idempotent(
    db: Database,
    *,
    scope: str,
    key: str | None,
    fingerprint: bytes,
    effect: Callable[[AsyncSession], Awaitable[Any]],
    status_code: int = 201,
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> StoredResponse:
    """Run ``effect(session)`` at most once per key; its result (JSON-encodable) is the response body.
    ``prepare``: see :func:`idempotent`."""
    async with idempotent(db, scope=scope, key=key, fingerprint=fingerprint, prepare=prepare) as unit:
        if unit.replay is not None:
            return unit.replay
        result = await effect(unit.session)
        return unit.record(status_code, result)


async def idempotent_response(
    request: Request[Any, Any, Any],
    db: Database,
    *,
    scope: str,
    key: str | None,
    data: Any,
    effect: Callable[[AsyncSession], Awaitable[Any]],
    status_code: int = 201,
    exclude: Iterable[str] = ("pin",),
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> Response[Any]:
    """The common case for a Litestar handler: fingerprint the request, run the effect once, answer.

    ``data`` is the decoded body (or None; a multipart upload passes a struct naming the file by its
    checksum, never its bytes); ``exclude`` lists body fields left out of the fingerprint (the PIN by
    default). The first answer and every replay carry the same status and the same bytes. ``prepare``:
    work committed on its own before the effect, skipped by a replay (see :func:`idempotent`).
    """
    fingerprint = request_fingerprint(
        request.method, request.url.path, data, query=request.url.query, exclude=exclude
    )
    stored = await run_idempotent(
        db,
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        effect=effect,
        status_code=status_code,
        prepare=prepare,
    )
    return stored.to_response()


# --- retention ---------------------------------------------------------------------------------------------


async def sweep_idempotency_keys(db: Database, now: datetime, *, batch_size: int = 5000) -> int:
    """Delete keys stored more than :data:`IDEMPOTENCY_TTL` before ``now``; returns how many.

    Safe to run at any time and repeatedly (a scheduled job, e.g. hourly). Deletes in batches of
    ``batch_size`` rows, one short transaction each, so writers are never held up for long.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    cutoff = now - IDEMPOTENCY_TTL
    old = select(_TABLE.c.scope, _TABLE.c.key).where(_TABLE.c.created_at < cutoff).limit(batch_size)
    statement = delete(_TABLE).where(tuple_(_TABLE.c.scope, _TABLE.c.key).in_(old))
    total = 0
    while True:
        async with db.transaction() as session:
            connection = await session.connection()
            result = await connection.execute(statement)
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if deleted < batch_size:
            return total
