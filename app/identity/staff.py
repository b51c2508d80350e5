"""Staff accounts as the web console sees them: sign-in of officers and admins, the caller of a console
session, account lookup and lock.

The console signs staff in with the same password check as the API (:func:`service.sign_in_with_password`:
same attempt limits, same ``invalid_credentials`` / ``account_locked`` answers) and keeps the opened
session's id in its cookie. Every console request rebuilds the caller from the database
(:func:`caller_of_session`), so a revoked session, a locked account or a role taken away ends console access
at once. The rules that both the API and the console apply live here, once.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, utcnow
from app.core.errors import FORBIDDEN
from app.core.security import Caller
from app.identity import service
from app.identity.models import AuthSession, User, UserRole
from app.identity.phone import mask_phone, try_normalize_phone
from app.identity.schemas import AdminUserView, RoleOut
from app.identity.tokens import DeviceInfo, revoke_sessions

__all__ = [
    "STAFF_ROLES",
    "account_view",
    "caller_of_session",
    "find_account",
    "set_lock_as",
    "sign_in_staff",
    "sign_out_session",
]

STAFF_ROLES = frozenset({"officer", "admin"})
"""Who may use the console."""


async def sign_in_staff(db: Database, *, phone: str, password: str, device: DeviceInfo) -> Caller:
    """The API's password sign-in; an account that is neither officer nor admin is refused (403) and the
    session just opened is closed again."""
    pair = await service.sign_in_with_password(db, phone=phone, password=password, device=device)
    caller = await caller_of_session(db, pair.user_id, pair.session_id)
    if caller is None or not caller.roles & STAFF_ROLES:
        await sign_out_session(db, pair.user_id, pair.session_id)
        raise FORBIDDEN(
            "Bảng điều khiển chỉ dành cho cán bộ và quản trị viên",
            "The console is for officers and admins only",
        )
    return caller


async def caller_of_session(db: Database, user_id: uuid.UUID, session_id: uuid.UUID) -> Caller | None:
    """The caller of an open session of an active account, with the roles it holds now; ``None`` when the
    session was revoked or expired, or the account is not active."""
    from app.identity.tokens import caller_for

    async with db.read() as session:
        row = (
            await session.execute(
                select(AuthSession.user_id, AuthSession.revoked_at, AuthSession.expires_at).where(
                    AuthSession.id == session_id
                )
            )
        ).first()
        if row is None or row.user_id != user_id or row.revoked_at is not None or row.expires_at <= utcnow():
            return None
        user = await session.get(User, user_id)
        if user is None or user.status != "active":
            return None
        return await caller_for(session, user, session_id)


async def sign_out_session(db: Database, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """End one session (the API's logout does the same)."""
    async with db.transaction() as session:
        await revoke_sessions(session, user_id, reason="logout", only=[session_id])


async def account_view(session: Any, user: User) -> AdminUserView:
    """What support staff see of an account (personal numbers masked)."""
    rows = (
        await session.execute(
            select(UserRole.role, UserRole.scope).where(UserRole.user_id == user.id).order_by(UserRole.role)
        )
    ).all()
    return AdminUserView(
        user_id=user.id,
        phone_masked=mask_phone(user.phone) if user.phone else None,
        full_name=user.full_name,
        cccd_masked=service.masked_cccd(user, session),
        identity_level=user.identity_level,
        status=user.status,
        roles=[RoleOut(role=r.role, scope=r.scope) for r in rows],
        created_at=user.created_at,
    )


async def find_account(db: Database, query: str) -> AdminUserView | None:
    """The account with this id, or with this phone number (any common spelling) whatever its status, so a
    locked account can be found to unlock it."""
    text = query.strip()
    async with db.read() as session:
        user: User | None = None
        try:
            user = await session.get(User, uuid.UUID(text))
        except ValueError:
            phone = try_normalize_phone(text)
            if phone is not None:
                user = (
                    (await session.execute(select(User).where(User.phone == phone).order_by(User.created_at)))
                    .scalars()
                    .first()
                )
        return await account_view(session, user) if user is not None else None


async def set_lock_as(
    session: AsyncSession, caller: Caller, user_id: uuid.UUID, *, locked: bool
) -> AdminUserView:
    """Lock or unlock an account on behalf of ``caller``, in the caller's unit of work (the duty is checked
    by the callers' guards): nobody locks their own account."""
    if locked and user_id == caller.user_id:
        raise FORBIDDEN("Không tự khóa tài khoản của mình", "You cannot lock your own account")
    user = await service.set_account_lock(session, user_id, locked=locked, by=caller.user_id)
    return await account_view(session, user)
