"""Factories for tests of every module: a signed-in person in one database transaction, built through the
identity service functions (no HTTP round trips, a few milliseconds each).

    from tests.factories import make_user

    async def test_pay(client):
        alice = await make_user(client)                           # citizen, level 2, PIN 246810
        officer = await make_user(client, roles=("officer",), agency_id="hue-phu-xuan")
        cashier = await make_user(client, roles=("merchant_cashier",), merchant_id=str(merchant_id))
        admin = await make_user(client, roles=("admin",), duties=("finance",))
        response = await client.get("/api/v1/me", headers=alice.headers)

Pass the test client when the test also uses it: ``AsyncTestClient`` runs the app in an event loop of its own
(a blocking portal), and the app's database pool and Redis client belong to that loop. :func:`in_app` runs any
coroutine there, e.g. to read or change rows directly:

        async def read():
            async with client.app.state.db.read() as session: ...
        rows = await in_app(client, read)
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

from litestar import Litestar
from sqlalchemy import update

from app.core.db import Database, utcnow
from app.core.security import Caller, issue_access_token
from app.identity.models import Device
from app.identity.service import (
    create_user,
    declare_identity,
    get_user,
    mark_verified,
    set_pin,
)
from app.identity.tokens import DeviceInfo, open_session
from app.wallet.funding import record_source

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_PIN",
    "UserHandle",
    "in_app",
    "link_bank_account",
    "make_user",
    "new_phone",
    "token_with_claims",
    "valid_cccd",
]

T = TypeVar("T")

DEFAULT_PIN = "246810"
DEFAULT_PASSWORD = "mat-khau-Hue-2025"
_sequence = itertools.count(random.randrange(1_000_000))


@dataclass(frozen=True)
class UserHandle:
    """A signed-in person, ready to call the API."""

    user_id: uuid.UUID
    phone: str
    access_token: str
    headers: dict[str, str] = field(repr=False)
    """``{"Authorization": "Bearer ..."}``."""
    refresh_token: str = field(repr=False, default="")
    session_id: uuid.UUID | None = None
    password: str | None = field(repr=False, default=None)
    pin: str | None = field(repr=False, default=None)
    cccd: str | None = field(repr=False, default=None)
    date_of_birth: date | None = None
    full_name: str | None = None


def new_phone() -> str:
    """A fresh valid Vietnamese mobile number in E.164 (Viettel 098 prefix)."""
    return f"+8498{next(_sequence) % 10_000_000:07d}"


def valid_cccd(date_of_birth: date, *, province: str = "046", female: bool = False) -> str:
    """A CCCD number consistent with ``date_of_birth`` (Thừa Thiên Huế by default), unique per process."""
    century = (date_of_birth.year // 100 - 19) * 2 + (1 if female else 0)
    return f"{province}{century}{date_of_birth.year % 100:02d}{next(_sequence) % 1_000_000:06d}"


def _app_of(client_or_app: Any) -> Litestar:
    app = getattr(client_or_app, "app", client_or_app)
    if not isinstance(app, Litestar):
        raise TypeError("make_user takes a Litestar app or a test client")
    return app


async def in_app(client_or_app: Any, fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn()`` in the event loop the app is served from (the test client's portal, if it has one)."""
    portal = getattr(client_or_app, "blocking_portal", None)
    if portal is None:
        return await fn()
    result: T = portal.call(fn)
    return result


async def make_user(
    client_or_app: Any,
    *,
    level: int = 2,
    pin: str | None = DEFAULT_PIN,
    roles: tuple[str, ...] = ("citizen",),
    agency_id: str | uuid.UUID | None = None,
    merchant_id: str | uuid.UUID | None = None,
    duties: tuple[str, ...] = ("superadmin",),
    password: str | None = DEFAULT_PASSWORD,
    phone: str | None = None,
    full_name: str = "Nguyễn Văn An",
    date_of_birth: date = date(1990, 5, 17),
    new_device: bool = False,
    funding_source: bool = True,
) -> UserHandle:
    """A person with ``roles`` at identity ``level``, a payment PIN (``pin=None``: none), signed in on a
    device first seen 30 days ago (``new_device=True``: just now). Scopes: ``agency_id`` for officers,
    ``merchant_id`` for merchant staff, ``duties`` for admins. At level 2 the person has linked the sandbox
    debit card ``pm_card_visa_debit`` (``funding_source=False``: nothing linked, so the wallet can neither
    pay nor transfer); :func:`link_bank_account` adds a bank account."""
    app = _app_of(client_or_app)
    db: Database = app.state.db
    phone = phone or new_phone()
    return await in_app(
        client_or_app,
        lambda: _make_user(
            db,
            level=level,
            pin=pin,
            roles=roles,
            agency_id=agency_id,
            merchant_id=merchant_id,
            duties=duties,
            password=password,
            phone=phone,
            full_name=full_name,
            date_of_birth=date_of_birth,
            new_device=new_device,
            funding_source=funding_source,
        ),
    )


async def _make_user(
    db: Database,
    *,
    level: int,
    pin: str | None,
    roles: tuple[str, ...],
    agency_id: str | uuid.UUID | None,
    merchant_id: str | uuid.UUID | None,
    duties: tuple[str, ...],
    password: str | None,
    phone: str,
    full_name: str,
    date_of_birth: date,
    new_device: bool,
    funding_source: bool,
) -> UserHandle:
    scoped: list[tuple[str, str]] = []
    for role in roles:
        if role == "admin":
            scoped.extend(("admin", duty) for duty in duties)
        elif role == "officer":
            if agency_id is None:
                raise ValueError("an officer needs agency_id")
            scoped.append(("officer", str(agency_id)))
        elif role in ("merchant_owner", "merchant_cashier"):
            if merchant_id is None:
                raise ValueError("merchant staff need merchant_id")
            scoped.append((role, str(merchant_id)))
        else:
            scoped.append((role, ""))
    cccd = valid_cccd(date_of_birth) if level >= 1 else None
    async with db.transaction() as session:
        user = await create_user(
            session,
            phone=phone,
            password=password,
            full_name=full_name if level == 0 else None,
            roles=tuple(scoped),
            consents=("account", "ekyc"),
        )
        if cccd is not None:
            await declare_identity(session, user, full_name=full_name, cccd=cccd, date_of_birth=date_of_birth)
        if level >= 2:
            await mark_verified(session, user, "desk", None)
        if pin is not None:
            await set_pin(session, user.id, pin)
        if level >= 2 and funding_source:
            await record_source(
                session,
                user.id,
                kind="card",
                fingerprint="card:pm_card_visa_debit",
                payment_method="pm_card_visa_debit",
                brand="visa",
                last4="5556",
                funding="debit",
            )
        user = await get_user(session, user.id)
        pair = await open_session(
            session,
            user,
            DeviceInfo(install_id=uuid.uuid4().hex, name="pytest", platform="android"),
            "password",
        )
        if not new_device:
            await session.execute(
                update(Device)
                .where(Device.id == pair.device_id)
                .values(first_seen_at=utcnow() - timedelta(days=30))
                .execution_options(synchronize_session=False)
            )
    return UserHandle(
        user_id=pair.user_id,
        phone=phone,
        access_token=pair.access_token,
        headers={"Authorization": f"Bearer {pair.access_token}"},
        refresh_token=pair.refresh_token,
        session_id=pair.session_id,
        password=password,
        pin=pin,
        cccd=cccd,
        date_of_birth=date_of_birth if level >= 1 else None,
        full_name=full_name,
    )


async def token_with_claims(
    client_or_app: Any,
    *,
    roles: Iterable[str],
    duties: Iterable[str] = (),
    agency_id: str | None = None,
    merchant_id: str | None = None,
    identity_level: int = 2,
) -> dict[str, str]:
    """Headers with an access token stating exactly these claims (even combinations identity never issues,
    e.g. a duty without the admin role, to test a guard), for a real signed-in session: the session check
    refuses tokens of sessions identity does not know."""
    person = await make_user(client_or_app, pin=None)
    assert person.session_id is not None
    settings = _app_of(client_or_app).state.settings
    caller = Caller(
        user_id=person.user_id,
        session_id=person.session_id,
        roles=frozenset(roles),
        duties=frozenset(duties),
        identity_level=identity_level,
        agency_id=agency_id,
        merchant_id=merchant_id,
    )
    token, _ = issue_access_token(settings, caller)
    return {"Authorization": f"Bearer {token}"}


async def link_bank_account(
    client_or_app: Any, user_id: uuid.UUID, account_number: str = "0071000123456", bank_bin: str = "970436"
) -> uuid.UUID:
    """Link a bank account to ``user_id``'s wallet as if the bank had confirmed the holder (the sandbox
    bank's account suffixes pick payout outcomes: 0000 fails, 9999 times out then fails, 8888 times out but
    succeeds, 7777 stays pending)."""
    db: Database = _app_of(client_or_app).state.db

    async def run() -> uuid.UUID:
        async with db.transaction() as session:
            source = await record_source(
                session,
                user_id,
                kind="bank_account",
                fingerprint=f"bank:{bank_bin}:{account_number}",
                bank_bin=bank_bin,
                account_number=account_number,
                account_name="NGUYEN VAN AN",
                last4=account_number[-4:],
            )
            return source.id

    return await in_app(client_or_app, run)


_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def auto_idempotency_keys(monkeypatch: Any) -> None:
    """Every state-changing request an httpx client builds gets a fresh ``Idempotency-Key`` unless it
    carries one: for suites that test what a route does, not the key (each request is a new operation).
    The key's semantics on those routes are tested with explicit keys (modules setting
    ``EXPLICIT_IDEMPOTENCY_KEYS = True`` opt out)."""
    import httpx

    original = httpx.AsyncClient.build_request

    def build_request(self: httpx.AsyncClient, method: str, url: Any, **kwargs: Any) -> httpx.Request:
        request = original(self, method, url, **kwargs)
        if method.upper() in _STATE_CHANGING and "Idempotency-Key" not in request.headers:
            request.headers["Idempotency-Key"] = uuid.uuid4().hex
        return request

    monkeypatch.setattr(httpx.AsyncClient, "build_request", build_request)
