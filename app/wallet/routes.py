"""The citizen's wallet over HTTP: open it, balance, statement (pages, monthly CSV), transfers by phone."""

from __future__ import annotations

import base64
import csv
import io
import re
import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import NOT_FOUND, VALIDATION_FAILED
from app.core.idempotency import (
    IDEMPOTENCY_ERRORS,
    IdempotencyKey,
    idempotent_response,
    request_fingerprint,
    scope_of,
)
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_roles
from app.identity.errors import PIN_INVALID, PIN_LOCKED, PIN_NOT_SET
from app.wallet import funding, limits, service, transfer_pg
from app.wallet.errors import (
    FUNDING_SOURCE_REQUIRED,
    IDENTITY_LEVEL_REQUIRED,
    INSUFFICIENT_FUNDS,
    LIMIT_EXCEEDED,
    RECIPIENT_NOT_FOUND,
    SELF_TRANSFER,
    WALLET_NOT_FOUND,
)
from app.wallet.limits import VN
from app.wallet.schemas import (
    StatementPage,
    TransferIn,
    TransferOut,
    WalletOut,
    statement_item,
    transfer_out,
    wallet_out,
)

__all__ = ["WalletController", "wallet_routes"]

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def _cursor(posting_id: int) -> str:
    return base64.urlsafe_b64encode(b"wallet:" + posting_id.to_bytes(8, "big")).decode().rstrip("=")


def _uncursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if not raw.startswith(b"wallet:") or len(raw) != 15:
            raise ValueError("not a wallet cursor")
        return int.from_bytes(raw[7:], "big")
    except ValueError as exc:
        raise VALIDATION_FAILED(
            "Con trỏ phân trang không hợp lệ",
            "Invalid pagination cursor",
            errors=[{"field": "cursor", "source": "query", "message": "not a cursor from this statement"}],
        ) from exc


async def _wallet_view(db: Database, user_id: uuid.UUID) -> WalletOut:
    async with db.read() as session:
        balance = await service.wallet_balance(session, user_id)
        level = await service.require_level(session, user_id)
        left = await limits.remaining_for(
            session, user_id=user_id, level=level, category="transfer", limit_exempt=False
        )
        linked = await funding.has_linked_source(session, user_id)
    return wallet_out(balance, left, linked=linked)


class WalletController(Controller):
    path = "/api/v1/me/wallet"
    tags = ["wallet"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("citizen")]

    @post(
        "/",
        operation_id="openWallet",
        summary="Open my wallet",
        guards=[rate_limit("default")],
        opt={"errors": [*IDEMPOTENCY_ERRORS, IDENTITY_LEVEL_REQUIRED]},
    )
    async def open_wallet(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """Open the signed-in citizen's wallet (identity level 2 required). Opening an open wallet returns
        it. The holder's own debit card or bank account is linked separately
        (`/api/v1/me/wallet/funding-sources/...`); until then the wallet can neither pay nor transfer."""

        async def effect(session: Any) -> WalletOut:
            await service.open_wallet(session, caller.user_id)
            linked = await funding.has_linked_source(session, caller.user_id)
            return wallet_out(await service.wallet_balance(session, caller.user_id), linked=linked)

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=None, effect=effect
        )

    @get(
        "/",
        operation_id="getMyWallet",
        summary="My wallet",
        opt={"errors": [WALLET_NOT_FOUND, IDENTITY_LEVEL_REQUIRED]},
    )
    async def get_wallet(self, caller: NamedDependency[Caller], db: NamedDependency[Database]) -> WalletOut:
        """Balance, held and available amounts of the signed-in citizen's wallet, and the transfer limits
        left today and this month."""
        return await _wallet_view(db, caller.user_id)

    @get(
        "/statement",
        operation_id="getMyWalletStatement",
        summary="My wallet statement",
        opt={"errors": [WALLET_NOT_FOUND, VALIDATION_FAILED]},
    )
    async def get_statement(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="Page size (1-100).")] = 20,
        cursor: Annotated[
            str | None, QueryParameter(max_length=64, description="`next_cursor` of the previous page.")
        ] = None,
        kind: Annotated[
            str | None, QueryParameter(max_length=32, description="Only lines of this kind (e.g. transfer).")
        ] = None,
        date_from: Annotated[
            date | None, QueryParameter(description="First day included (Asia/Ho_Chi_Minh date).")
        ] = None,
        date_to: Annotated[
            date | None, QueryParameter(description="Last day included (Asia/Ho_Chi_Minh date).")
        ] = None,
    ) -> StatementPage:
        """Lines of the signed-in citizen's wallet, newest first, each with the balance right after it."""
        before = _uncursor(cursor) if cursor else None
        async with db.read() as session:
            lines = await service.statement(
                session,
                caller.user_id,
                limit=limit + 1,
                before=before,
                kind=kind,
                date_from=date_from,
                date_to=date_to,
            )
        more = len(lines) > limit
        lines = lines[:limit]
        return StatementPage(
            items=[statement_item(line) for line in lines],
            next_cursor=_cursor(lines[-1].posting_id) if more and lines else None,
        )

    @get(
        "/statement.csv",
        operation_id="exportMyWalletStatement",
        summary="Monthly statement as CSV",
        media_type="text/csv",
        opt={"errors": [WALLET_NOT_FOUND, VALIDATION_FAILED]},
    )
    async def export_statement(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        month: Annotated[str, QueryParameter(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM.")],
    ) -> Response[bytes]:
        """One Asia/Ho_Chi_Minh month of the wallet as CSV (UTF-8 with BOM, for spreadsheet apps): an opening
        balance line, one line per movement (local time, kind, description, amount, balance after), and a
        closing balance line."""
        found = _MONTH.match(month)
        assert found is not None  # the pattern above already checked it
        year, mon = int(found.group(1)), int(found.group(2))
        async with db.read() as session:
            opening, lines = await service.month_statement(session, caller.user_id, year, mon)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["time", "id", "kind", "description", "amount", "balance_after"])
        writer.writerow(["", "", "opening_balance", f"Số dư đầu kỳ {month}", "", opening])
        for line in lines:
            when = line.created_at.astimezone(VN).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow(
                [when, str(line.entry_id), line.kind, line.description, line.amount, line.balance_after]
            )
        closing = lines[-1].balance_after if lines else opening
        writer.writerow(["", "", "closing_balance", f"Số dư cuối kỳ {month}", "", closing])
        return Response(
            content=("\ufeff" + out.getvalue()).encode(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="wallet-{month}.csv"'},
        )

    @post(
        "/transfers",
        operation_id="createWalletTransfer",
        summary="Send money to a phone number",
        guards=[rate_limit("payments")],
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                IDENTITY_LEVEL_REQUIRED,
                WALLET_NOT_FOUND,
                FUNDING_SOURCE_REQUIRED,
                RECIPIENT_NOT_FOUND,
                SELF_TRANSFER,
                LIMIT_EXCEEDED,
                PIN_INVALID,
                PIN_LOCKED,
                PIN_NOT_SET,
                INSUFFICIENT_FUNDS,
            ]
        },
    )
    async def create_transfer(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TransferIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """Send money from the signed-in citizen's wallet to the wallet of the citizen with that phone
        number, confirmed with the payment PIN. Limits apply (per transfer, per day, the monthly cap, lower
        for a device first seen in the last 24 hours); a refusal says which limit and how much remains. The
        recipient is notified in their inbox. Retrying with the same Idempotency-Key sends the money once."""

        if not db.is_sqlite:
            fingerprint = request_fingerprint(
                request.method, request.url.path, data, query=request.url.query, exclude=("pin",)
            )
            stored = await transfer_pg.transfer(
                db,
                transfer_pg.TransferRequest(
                    caller=caller,
                    key=idempotency_key,
                    scope=scope_of(caller),
                    fingerprint=fingerprint,
                    phone=data.phone,
                    amount=data.amount,
                    pin=data.pin,
                    message=data.message.strip(),
                ),
            )
            return stored.to_response()

        async def effect(session: Any) -> TransferOut:
            done = await service.transfer(
                session,
                payer_id=caller.user_id,
                session_id=caller.session_id,
                phone=data.phone,
                amount=data.amount,
                pin=data.pin,
                message=data.message.strip(),
            )
            return transfer_out(done)

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data, effect=effect
        )

    @get(
        "/transfers/{transfer_id:uuid}",
        operation_id="getWalletTransfer",
        summary="One of my transfers",
        opt={"errors": [NOT_FOUND]},
    )
    async def get_transfer(
        self, caller: NamedDependency[Caller], db: NamedDependency[Database], transfer_id: FromPath[uuid.UUID]
    ) -> TransferOut:
        """A transfer the signed-in citizen sent or received (404 for anyone else's)."""
        async with db.read() as session:
            line = await service.find_transfer(session, caller.user_id, transfer_id)
        if line is None:
            raise NOT_FOUND("Không tìm thấy giao dịch", "No such transfer")
        return TransferOut(
            id=str(line.entry_id),
            amount=line.amount,
            message=str(line.metadata.get("message", "")),
            created_at=line.created_at,
            balance_after=line.balance_after,
        )


wallet_routes = [WalletController]
