"""The console's browser session: a signed cookie, its CSRF token, the language and flash messages.

The cookie holds no secret, only ids: ``{kid}.{payload}.{mac}`` where the payload is base64url JSON and the
MAC is HMAC-SHA256 under a key derived from the JWT key of that id (the same keys that sign the API's access
tokens, so rotating ``JWT_KEYS`` rotates this too; an unknown kid or a bad MAC is an empty session). What it
proves — "this browser signed in as user U in identity session S" — is checked against the database on
every request (:func:`app.identity.staff.caller_of_session`), so signing out, locking the account or taking a
role away ends console access at once. A signed-in session also expires after ``IDLE_SECONDS`` without a
request.

CSRF: a synchronizer token kept in the session and sent back by every form (hidden field ``csrf_token``) or
htmx request (header ``X-CSRF-Token``); see :func:`app.console.web.csrf_guard`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.core.settings import Settings

__all__ = ["COOKIE_NAME", "IDLE_SECONDS", "ConsoleSession", "dump_cookie", "load_cookie"]

COOKIE_NAME = "hue_console"
IDLE_SECONDS = 8 * 3600
"""A signed-in console session ends after this long without a request (a desk's working day)."""
COOKIE_MAX_AGE = 30 * 24 * 3600
"""How long the browser keeps the cookie (language and device id survive signing out)."""
_LABEL = b"hue-console-session/v1"


@dataclass
class ConsoleSession:
    """What the cookie carries."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    lang: str = "vi"
    device: str = field(default_factory=lambda: "console-" + secrets.token_hex(8))
    user_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    seen: int = 0
    flashes: list[tuple[str, str]] = field(default_factory=list)
    dirty: bool = True

    def flash(self, kind: str, message: str) -> None:
        """A message shown once on the next page (``kind``: ``ok`` or ``error``)."""
        self.flashes.append((kind, message))
        self.dirty = True

    def take_flashes(self) -> list[tuple[str, str]]:
        out, self.flashes = self.flashes, []
        if out:
            self.dirty = True
        return out

    def sign_in(self, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
        """A new CSRF token with every sign-in (no token fixation)."""
        self.user_id, self.session_id = user_id, session_id
        self.csrf = secrets.token_urlsafe(24)
        self.seen = int(time.time())
        self.dirty = True

    def sign_out(self) -> None:
        self.user_id = self.session_id = None
        self.csrf = secrets.token_urlsafe(24)
        self.dirty = True

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None and self.session_id is not None

    def touch(self) -> None:
        """Keep a signed-in session alive (written at most once a minute)."""
        now = int(time.time())
        if now - self.seen >= 60:
            self.seen = now
            self.dirty = True

    def expired(self) -> bool:
        return self.signed_in and int(time.time()) - self.seen > IDLE_SECONDS


def _key(settings: Settings, kid: str) -> bytes | None:
    secret = settings.jwt_keys.get(kid)
    if secret is None:
        return None
    return hmac.new(secret, _LABEL, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def dump_cookie(settings: Settings, state: ConsoleSession) -> str:
    payload: dict[str, Any] = {"c": state.csrf, "l": state.lang, "d": state.device, "t": state.seen}
    if state.user_id and state.session_id:
        payload["u"], payload["s"] = str(state.user_id), str(state.session_id)
    if state.flashes:
        payload["f"] = state.flashes[-5:]
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    kid = settings.jwt_keys.active_kid
    key = _key(settings, kid)
    assert key is not None
    mac = _b64(hmac.new(key, f"{kid}.{body}".encode(), hashlib.sha256).digest())
    return f"{kid}.{body}.{mac}"


def load_cookie(settings: Settings, raw: str | None) -> ConsoleSession:
    """The session the cookie states, or a fresh anonymous one when it is absent, forged or stale."""
    if not raw:
        return ConsoleSession()
    try:
        kid, body, mac = raw.split(".")
        key = _key(settings, kid)
        if key is None:
            return ConsoleSession()
        expected = _b64(hmac.new(key, f"{kid}.{body}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, mac):
            return ConsoleSession()
        data = json.loads(_unb64(body))
        state = ConsoleSession(
            csrf=str(data["c"]),
            lang="en" if data.get("l") == "en" else "vi",
            device=str(data.get("d") or ConsoleSession().device),
            seen=int(data.get("t", 0)),
            flashes=[(str(k), str(m)) for k, m in data.get("f", [])],
            dirty=False,
        )
        if data.get("u") and data.get("s"):
            state.user_id, state.session_id = uuid.UUID(data["u"]), uuid.UUID(data["s"])
        if kid != settings.jwt_keys.active_kid:
            state.dirty = True
        return state
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        return ConsoleSession()
