"""Admin endpoints of the audit trail: search it, and verify that nobody has tampered with it.

Both are open to admins on duty ``support`` (or ``superadmin``); both are themselves audited, since reading
the trail of other people's actions is an admin action too.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from app.core.audit import (
    AuditActor,
    VerificationReport,
    client_address,
    record_separately,
    search_events,
    verify_now,
)
from app.core.audit_models import AuditEvent
from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import VALIDATION_FAILED
from app.core.security import Caller, require_duty

__all__ = ["AuditController", "AuditEventView", "AuditPage", "audited_search", "audited_verify"]


def _utc(value: datetime | None) -> datetime | None:
    """Query times without an offset are taken as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class AuditEventView(msgspec.Struct, kw_only=True):
    """One row of the audit trail."""

    seq: Annotated[int, msgspec.Meta(description="Position in the chain (gapless, increasing).")]
    occurred_at: Annotated[datetime, msgspec.Meta(description="When it happened (UTC, RFC 3339).")]
    actor_id: Annotated[
        str | None,
        msgspec.Meta(description="The user who acted; null for the system or an anonymous client."),
    ]
    actor_role: Annotated[
        str,
        msgspec.Meta(
            description="The role acted in: citizen, officer, admin:<duties>, system[:job], anonymous, ..."
        ),
    ]
    action: Annotated[str, msgspec.Meta(description="What was done, module first, e.g. identity.sign_in.")]
    object_type: Annotated[str, msgspec.Meta(description="Kind of object acted on, e.g. user, dossier.")]
    object_id: Annotated[str | None, msgspec.Meta(description="Internal id of the object, if any.")]
    outcome: Annotated[
        str, msgspec.Meta(description="success, failure (went wrong) or denied (refused on purpose).")
    ]
    client_address: Annotated[str | None, msgspec.Meta(description="Network address of the client, if any.")]
    details: Annotated[
        dict[str, Any], msgspec.Meta(description="Small JSON context; secrets and personal numbers redacted.")
    ]
    key_id: Annotated[str, msgspec.Meta(description="Id of the audit key that signed the row.")]
    mac: Annotated[str, msgspec.Meta(description="The row's HMAC-SHA256 (hex), chaining the previous row's.")]


class AuditPage(msgspec.Struct, kw_only=True):
    """A page of the audit trail, newest first."""

    items: Annotated[list[AuditEventView], msgspec.Meta(description="The rows of this page.")]
    next_cursor: Annotated[
        str | None, msgspec.Meta(description="Pass as `cursor` for the next (older) page; null at the end.")
    ]


def _view(row: AuditEvent) -> AuditEventView:
    return AuditEventView(
        seq=row.seq,
        occurred_at=row.occurred_at,
        actor_id=str(row.actor_id) if row.actor_id else None,
        actor_role=row.actor_role,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        outcome=row.outcome,
        client_address=row.client_address,
        details=json.loads(row.details),
        key_id=row.kid,
        mac=row.mac,
    )


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"audit:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = raw.partition(":")
        if kind != "audit" or not number.isdigit() or len(number) > 19:
            raise ValueError(raw)
        return int(number)
    except ValueError as exc:
        raise VALIDATION_FAILED(
            "Con trỏ phân trang không hợp lệ",
            "Invalid pagination cursor",
            errors=[{"field": "cursor", "source": "query", "message": "not a cursor from this list"}],
        ) from exc


async def audited_search(
    db: Database,
    caller: Caller,
    address: str | None,
    *,
    actor_id: uuid.UUID | None,
    action: str | None,
    object_type: str | None,
    object_id: str | None,
    since: datetime | None,
    until: datetime | None,
    before_seq: int | None,
    limit: int,
) -> tuple[list[AuditEvent], bool]:
    """A page of the trail (newest first) and whether more rows follow; the search itself is audited
    (``audit.searched``). Used by the API and the console alike."""
    since, until = _utc(since), _utc(until)
    async with db.read() as session:
        rows = await search_events(
            session,
            actor_id=actor_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            since=since,
            until=until,
            before_seq=before_seq,
            limit=limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    filters = {
        "actor_id": str(actor_id) if actor_id else None,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
    }
    await record_separately(
        db,
        actor=AuditActor.of(caller),
        action="audit.searched",
        object_type="audit_trail",
        client_address=address,
        details={"filters": {k: v for k, v in filters.items() if v is not None}, "rows": len(rows)},
    )
    return list(rows), more


async def audited_verify(db: Database, caller: Caller, address: str | None) -> VerificationReport:
    """Verify the whole chain; the verification itself is audited (``audit.verified``)."""
    report = await verify_now(db)
    await record_separately(
        db,
        actor=AuditActor.of(caller),
        action="audit.verified",
        object_type="audit_trail",
        outcome="success" if report.ok else "failure",
        client_address=address,
        details={"rows": report.rows_checked, "problems": report.problems_total},
    )
    return report


class AuditController(Controller):
    path = "/api/v1/admin/audit"
    tags = ["admin"]
    guards = [require_duty("support")]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]

    @get(
        "/",
        operation_id="searchAuditTrail",
        summary="Search the audit trail",
        opt={"errors": []},
    )
    async def search(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        actor_id: Annotated[
            uuid.UUID | None, QueryParameter(description="Only rows whose actor is this user id.")
        ] = None,
        action: Annotated[
            str | None,
            QueryParameter(
                max_length=65,
                description="An action (identity.sign_in), or a prefix ending in `.` or `*` (identity.*).",
            ),
        ] = None,
        object_type: Annotated[
            str | None, QueryParameter(max_length=64, description="Only rows about this kind of object.")
        ] = None,
        object_id: Annotated[
            str | None, QueryParameter(max_length=128, description="Only rows about this object id.")
        ] = None,
        since: Annotated[
            datetime | None, QueryParameter(description="Rows at or after this time (RFC 3339).")
        ] = None,
        until: Annotated[
            datetime | None, QueryParameter(description="Rows before this time (RFC 3339).")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Page size (1-200).")] = 50,
        cursor: Annotated[
            str | None, QueryParameter(max_length=64, description="`next_cursor` of the previous page.")
        ] = None,
    ) -> AuditPage:
        """Rows of the tamper-evident audit trail, newest first, filtered by actor, action, object and time.
        For admins on duty `support` or `superadmin`. The search itself is audited (`audit.searched`)."""
        before = _decode_cursor(cursor) if cursor else None
        rows, more = await audited_search(
            db,
            caller,
            client_address(request),
            actor_id=actor_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            since=since,
            until=until,
            before_seq=before,
            limit=limit,
        )
        return AuditPage(
            items=[_view(r) for r in rows],
            next_cursor=_encode_cursor(rows[-1].seq) if more and rows else None,
        )

    @get(
        "/verify",
        operation_id="verifyAuditTrail",
        summary="Verify the audit trail",
        opt={"errors": []},
    )
    async def verify(
        self, request: Request[Any, Any, Any], db: NamedDependency[Database], caller: NamedDependency[Caller]
    ) -> VerificationReport:
        """Recompute every row's keyed MAC and the links between rows, and compare the chain with the heads
        anchored outside the database. `ok` is false when any row was changed, deleted or inserted, or the
        tail was rewritten; `problems` lists where (the first 100). For admins on duty `support` or
        `superadmin`; the verification itself is audited (`audit.verified`)."""
        return await audited_verify(db, caller, client_address(request))
