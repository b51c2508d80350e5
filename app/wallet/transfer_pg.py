"""A transfer on PostgreSQL, driven through asyncpg: the rules of :func:`app.wallet.service.transfer`,
without the ORM, in two round trips.

Why a second path: through SQLAlchemy's session a transfer cost ~9 ms of server CPU for 7 statements (the
async layer alone ~0.3 ms a statement, DESIGN.md), which capped one API process near 110 transfers/s.
Here, on a driver connection (:meth:`app.core.db.Database.driver`), outside any transaction:

1. one read: the answer already stored under the Idempotency-Key (if any), the recipient by phone with
   their wallet and whether they have push devices, and the payer's facts (:func:`payer_sql`: level,
   status, name, PIN row, linked funding source, wallet, the device's first sighting);
2. Python decides, with the functions and in the order of the ORM path (recipient, level, wallet, funding
   source, per-payment limit, PIN), and prepares the entry, the notification and the response;
3. one call of ``wallet_transfer`` (migration ``0018_money_calls``), its own transaction: the key's
   advisory lock and a second look for a stored answer, the usage and the posting (``wallet_pay``), the
   usage limits and the balance (a refusal raises and rolls everything back; Python then names the limit
   from the totals with the same check as the ORM path), the notification and the idempotency row.

So a receiving wallet's row is locked only while that one call runs, never across a Python round trip.
The HTTP tests run on SQLite (ORM path) and PostgreSQL (this one), so both paths answer alike.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from app.core.db import Database, new_id, note_raw_call
from app.core.idempotency import (
    StoredResponse,
    checked_key,
    claimed_replay,
    encode_body,
    key_in_flight,
    lock_id,
)
from app.core.security import Caller
from app.identity.inbox import deliver_committed
from app.identity.inbox_schemas import CommittedNotification
from app.identity.phone import try_normalize_phone
from app.wallet.payer_pg import (
    POSTED_AT,
    authorize_on_driver,
    call_money_function,
    call_replay,
    capped_pay_args,
    payer_of,
    payer_sql,
)
from app.wallet.schemas import TransferOut
from app.wallet.service import (
    mask_name,
    recipient_not_found,
    self_transfer,
    transfer_notice,
    wallet_key,
)

__all__ = ["TransferRequest", "transfer"]

_PAYER = payer_sql(payer=3, wallet_key=5, session=6)
_CONTEXT = f"""
SELECT k.fingerprint, k.status_code, k.body,
       r.id, r.full_name,
       (SELECT a.id FROM ledger_accounts a WHERE a.key = 'citizen_wallet:' || r.id::text),
       EXISTS (SELECT 1 FROM inbox_push_devices d WHERE d.user_id = r.id),
       {_PAYER.columns}
  FROM (SELECT 1) AS one
  LEFT JOIN idempotency_keys k ON k.scope = $1 AND k.key = $2
  LEFT JOIN LATERAL (
        SELECT u.id, u.full_name FROM users u WHERE u.phone = $4 AND u.status = 'active' LIMIT 1
  ) AS r ON true{_PAYER.joins}
"""  # noqa: S608 - only placeholder numbers are formatted in, never data

_TRANSFER = (
    "SELECT outcome, posted_at, status_code, fingerprint, body FROM wallet_transfer("
    "$1, $2, $3, $4, $5, $6::text[], $7::bigint[], $8, $9, $10, $11, $12, $13, $14::uuid[], $15::bigint[],"
    " $16, $17, $18, $19, $20, $21, $22, $23, $24::text[])"
)
_AVAILABLE = -1
"""A stand-in for the payer's balance after, cut out of the response (only the call knows it)."""


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """A validated transfer request (``TransferIn``) with its caller, key and fingerprint."""

    caller: Caller
    key: str | None
    scope: str
    fingerprint: bytes
    phone: str
    amount: int
    pin: str
    message: str


async def transfer(db: Database, request: TransferRequest) -> StoredResponse:
    """Send the money once per key and answer as :func:`app.core.idempotency.idempotent_response` would:
    the stored answer for a replay, 409/422 for a key in use or reused, else 201 with a ``TransferOut``."""
    key = checked_key(request.scope, request.key)
    with key_in_flight(db, request.scope, key):
        async with db.driver() as connection:
            stored, notice, pushes = await _transfer(db, connection, request, key)
    if notice is not None:
        delivering = deliver_committed(db, notice, push=pushes)
        if delivering is not None:
            await delivering
    return stored


async def _transfer(
    db: Database, connection: Any, request: TransferRequest, key: str
) -> tuple[StoredResponse, CommittedNotification | None, bool]:
    payer = request.caller.user_id
    note_raw_call()
    row = await connection.fetchrow(
        _CONTEXT,
        request.scope,
        key,
        payer,
        try_normalize_phone(request.phone) or "",
        wallet_key(payer),
        request.caller.session_id,
    )
    stored_fp, stored_status, stored_body, recipient, recipient_name, to_wallet, pushes = row[:7]
    replay = claimed_replay(request.fingerprint, True, (stored_fp, stored_status, stored_body))
    if replay is not None:
        return replay, None, False
    if recipient == payer:
        raise self_transfer()
    if recipient is None or to_wallet is None:
        raise recipient_not_found()
    found = payer_of(row, 7)
    authorized = await authorize_on_driver(
        db,
        connection,
        found,
        pin=request.pin,
        category="transfer",
        limit_exempt=False,
        credits=[(to_wallet, request.amount)],
        kind="transfer",
        reference=str(new_id()),
        description=request.message or "Chuyển tiền",
        metadata={"message": request.message, "to_user_id": str(recipient)},
    )
    entry = authorized.entry
    assert entry.entry_id is not None
    notice = transfer_notice(found.name or "", request.amount, request.message, entry.entry_id)
    notice_id = new_id()
    outcome, posted_at, status_code, fingerprint, body = await call_money_function(
        connection,
        _TRANSFER,
        [
            request.scope,
            key,
            lock_id(request.scope, key),
            request.fingerprint,
            *capped_pay_args(found, authorized),
            notice_id,
            recipient,
            notice.kind,
            notice.title_vi,
            notice.body_vi,
            notice.title_en,
            notice.body_en,
            msgspec.json.encode(notice.data).decode(),
            _response_pieces(entry.entry_id, request, recipient_name),
        ],
        authorized,
    )
    if outcome != "ok":
        return call_replay(request.fingerprint, outcome, (fingerprint, status_code, body)), None, False
    row_notice = CommittedNotification(
        id=notice_id,
        created_at=posted_at,
        user_id=recipient,
        kind=notice.kind,
        title_vi=notice.title_vi,
        body_vi=notice.body_vi,
        title_en=notice.title_en,
        body_en=notice.body_en,
        data=notice.data,
        read_at=None,
    )
    return StoredResponse(201, bytes(body)), row_notice, bool(pushes)


def _response_pieces(entry_id: uuid.UUID, request: TransferRequest, recipient_name: str | None) -> list[str]:
    """The 201 body as msgspec encodes ``TransferOut``, with :data:`POSTED_AT` for its time and cut where
    the payer's available balance goes: at ``"available_after":``, which a string value cannot contain
    unescaped, so a message cannot move the cut."""
    text = encode_body(
        201,
        TransferOut(
            id=str(entry_id),
            amount=-request.amount,
            message=request.message,
            created_at=POSTED_AT,
            recipient_name=mask_name(recipient_name or ""),
            available_after=_AVAILABLE,
        ),
    ).decode()
    head, cut, tail = text.partition(f'"available_after":{_AVAILABLE}')
    return [head + cut[: -len(str(_AVAILABLE))], tail]
