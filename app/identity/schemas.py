"""What the identity API reads and writes (msgspec structs; requests refuse unknown fields)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "AccountClose",
    "AddressIn",
    "AdminUserView",
    "CodeRequest",
    "CodeSent",
    "ConsentDecision",
    "ConsentOut",
    "ConsentPurposeOut",
    "DeskVerification",
    "DevSms",
    "DeviceIn",
    "DeviceOut",
    "EkycIn",
    "IdentityDeclaration",
    "OtpSignIn",
    "PasswordChange",
    "PasswordChanged",
    "PasswordSignIn",
    "PinChange",
    "PinState",
    "Profile",
    "RefreshIn",
    "Registration",
    "RoleOut",
    "SignedOut",
    "StaffCreate",
    "StepUpCodeRequest",
    "Tokens",
]

Phone = Annotated[
    str,
    Meta(
        min_length=9,
        max_length=24,
        description="Vietnamese mobile number, e.g. `0905123456` or `+84905123456`",
        examples=["0905123456"],
    ),
]
Code = Annotated[str, Meta(pattern=r"^[0-9]{6}$", description="The 6-digit code received by SMS")]
Pin = Annotated[str, Meta(pattern=r"^[0-9]{6}$", description="6-digit payment PIN")]
Password = Annotated[str, Meta(min_length=8, max_length=128, description="8-128 characters, not only digits")]
ChallengeId = Annotated[uuid.UUID, Meta(description="`challenge_id` from the code request")]
Cccd = Annotated[
    str,
    Meta(
        pattern=r"^[0-9 .]{12,16}$",
        description="12-digit citizen ID number (CCCD); spaces and dots are ignored",
        examples=["046090001234"],
    ),
]
FullName = Annotated[str, Meta(min_length=2, max_length=200, description="Full name as on the CCCD")]


class DeviceIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The app installation signing in."""

    install_id: Annotated[
        str,
        Meta(
            min_length=8,
            max_length=128,
            pattern=r"^[A-Za-z0-9._:-]+$",
            description="Random id the app generates once per installation and keeps",
        ),
    ]
    name: Annotated[str, Meta(min_length=1, max_length=100, description="Shown in the device list")]
    platform: Annotated[Literal["android", "ios", "web"], Meta(description="The app's platform")]


class CodeRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    phone: Phone
    purpose: Annotated[Literal["register", "sign_in"], Meta(description="What the code will be used for")]


class StepUpCodeRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    purpose: Annotated[
        Literal["pin_change", "password_change", "close_account"],
        Meta(description="The sensitive action the code will confirm; sent to the account's own phone"),
    ]


class CodeSent(msgspec.Struct, kw_only=True):
    """A code was sent (or, for privacy, the same answer when the number cannot use this purpose)."""

    challenge_id: Annotated[uuid.UUID, Meta(description="Send it back with the code")]
    expires_at: Annotated[datetime, Meta(description="The code is valid until then (5 minutes)")]
    resend_after: Annotated[int, Meta(description="Seconds before another code may be requested")]
    attempts_allowed: Annotated[int, Meta(description="Wrong codes allowed before the code is dead")]
    code_length: Annotated[int, Meta(description="Digits in the code")] = 6


class Registration(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    challenge_id: ChallengeId
    code: Code
    device: Annotated[DeviceIn, Meta(description="The installation registering")]
    consents: Annotated[
        list[Annotated[str, Meta(max_length=40)]],
        Meta(
            max_length=10,
            description=(
                "Consent purposes accepted (see `GET /api/v1/consent-purposes`); `account` is required"
            ),
        ),
    ]
    password: (
        Annotated[
            str,
            Meta(min_length=8, max_length=128, description="Optional: without one, sign in with SMS codes"),
        ]
        | None
    ) = None


class PasswordSignIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    phone: Phone
    password: Annotated[str, Meta(min_length=1, max_length=128, description="The account password")]
    device: Annotated[DeviceIn, Meta(description="The installation signing in")]


class OtpSignIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    challenge_id: ChallengeId
    code: Code
    device: Annotated[DeviceIn, Meta(description="The installation signing in")]


class RefreshIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    refresh_token: Annotated[
        str, Meta(min_length=10, max_length=200, description="The latest refresh token of this session")
    ]


class Tokens(msgspec.Struct, kw_only=True):
    """A signed-in session's tokens. Keep the refresh token in secure storage; it works once."""

    access_token: Annotated[str, Meta(description="JWT for `Authorization: Bearer`")]
    token_type: Annotated[Literal["Bearer"], Meta(description="Always `Bearer`")] = "Bearer"  # noqa: S105
    expires_in: Annotated[int, Meta(description="Seconds the access token lives (900)")]
    refresh_token: Annotated[
        str,
        Meta(description="Opaque; exchange it once at `/auth/refresh`; reusing a spent one ends the session"),
    ]
    refresh_expires_at: Annotated[datetime, Meta(description="When the refresh token stops working")]
    user_id: Annotated[uuid.UUID, Meta(description="The signed-in account")]
    session_id: Annotated[uuid.UUID, Meta(description="This sign-in session (the token's `sid`)")]
    device_id: Annotated[uuid.UUID, Meta(description="The device of this session")]
    device_is_new: Annotated[
        bool, Meta(description="First seen less than 24 hours ago: some money actions are limited")
    ]


class SignedOut(msgspec.Struct, kw_only=True):
    signed_out_sessions: Annotated[int, Meta(description="How many sessions were ended")]


class AddressIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Postal address for results and documents sent by post."""

    line: Annotated[str, Meta(min_length=3, max_length=300, description="House number, street, hamlet")]
    commune: Annotated[str, Meta(min_length=2, max_length=120, description="Commune or ward (xã / phường)")]
    province: Annotated[str, Meta(min_length=2, max_length=120, description="Province or city")]
    postal_code: (
        Annotated[str, Meta(pattern=r"^[0-9]{5,6}$", description="Vietnamese postal code (5 or 6 digits)")]
        | None
    ) = None


class IdentityDeclaration(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    full_name: FullName
    cccd: Cccd
    date_of_birth: Annotated[date, Meta(description="Must agree with the CCCD's century and year digits")]


class RoleOut(msgspec.Struct, kw_only=True):
    role: Annotated[
        str, Meta(description="`citizen`, `merchant_owner`, `merchant_cashier`, `officer` or `admin`")
    ]
    scope: Annotated[
        str, Meta(description="Admin duty, officer's agency or staff's merchant; empty for citizens")
    ]


class Profile(msgspec.Struct, kw_only=True):
    """The signed-in person's own account."""

    user_id: Annotated[uuid.UUID, Meta(description="Account id")]
    phone: Annotated[str, Meta(description="E.164 mobile number")]
    full_name: Annotated[str | None, Meta(description="As declared or verified")]
    cccd_masked: Annotated[str | None, Meta(description="Citizen ID with all but the last 4 digits hidden")]
    date_of_birth: Annotated[date | None, Meta(description="Date of birth")]
    address: Annotated[AddressIn | None, Meta(description="Postal address")]
    identity_level: Annotated[
        int, Meta(ge=0, le=2, description="0 phone only, 1 CCCD declared, 2 verified (needed to move money)")
    ]
    verified_at: Annotated[datetime | None, Meta(description="When level 2 was reached")]
    verification_method: Annotated[str | None, Meta(description="`desk` or `ekyc`")]
    has_password: Annotated[bool, Meta(description="Whether password sign-in is possible")]
    roles: Annotated[list[RoleOut], Meta(description="Roles with their scopes")]
    created_at: Annotated[datetime, Meta(description="Account opened")]


class AdminUserView(msgspec.Struct, kw_only=True):
    """What support staff see of an account (personal numbers masked)."""

    user_id: Annotated[uuid.UUID, Meta(description="Account id")]
    phone_masked: Annotated[str | None, Meta(description="Phone with middle digits hidden")]
    full_name: Annotated[str | None, Meta(description="Full name")]
    cccd_masked: Annotated[str | None, Meta(description="Citizen ID, last 4 digits")]
    identity_level: Annotated[int, Meta(description="0, 1 or 2")]
    status: Annotated[str, Meta(description="`active`, `locked` or `closed`")]
    roles: Annotated[list[RoleOut], Meta(description="Roles with their scopes")]
    created_at: Annotated[datetime, Meta(description="Account opened")]


class PinState(msgspec.Struct, kw_only=True):
    is_set: Annotated[bool, Meta(description="Whether a payment PIN exists")]
    locked_until: Annotated[datetime | None, Meta(description="Set while the PIN is locked")]
    attempts_left: Annotated[int, Meta(description="Wrong tries left before the lock")]


class PinChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    challenge_id: ChallengeId
    code: Code
    pin: Pin


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    challenge_id: ChallengeId
    code: Code
    password: Password


class PasswordChanged(msgspec.Struct, kw_only=True):
    signed_out_sessions: Annotated[int, Meta(description="Other sessions ended by the change")]


class ConsentPurposeOut(msgspec.Struct, kw_only=True):
    purpose: Annotated[str, Meta(description="Stable code of the purpose")]
    version: Annotated[str, Meta(description="Current version of the text")]
    title_vi: Annotated[str, Meta(description="Text shown to the person (Vietnamese)")]
    title_en: Annotated[str, Meta(description="Text shown to the person (English)")]
    required: Annotated[bool, Meta(description="Needed to hold an account")]


class ConsentOut(msgspec.Struct, kw_only=True):
    purpose: Annotated[str, Meta(description="Stable code of the purpose")]
    granted: Annotated[bool, Meta(description="Consent currently given for the current text version")]
    version: Annotated[str | None, Meta(description="Text version last decided on; null if never asked")]
    current_version: Annotated[str, Meta(description="Current text version")]
    decided_at: Annotated[datetime | None, Meta(description="When the last decision was recorded")]


class ConsentDecision(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    granted: Annotated[bool, Meta(description="true to give consent, false to withdraw it")]


class DeviceOut(msgspec.Struct, kw_only=True):
    device_id: Annotated[uuid.UUID, Meta(description="Use it to remove the device")]
    name: Annotated[str, Meta(description="Name the app gave")]
    platform: Annotated[str, Meta(description="`android`, `ios` or `web`")]
    first_seen_at: Annotated[datetime, Meta(description="First sign-in from it")]
    last_seen_at: Annotated[datetime, Meta(description="Last sign-in or token refresh")]
    is_new: Annotated[bool, Meta(description="First seen less than 24 hours ago")]
    is_current: Annotated[bool, Meta(description="The device making this request")]
    active_sessions: Annotated[int, Meta(description="Signed-in sessions on it")]


class EkycIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    provider_reference: Annotated[
        str,
        Meta(
            min_length=4,
            max_length=128,
            description=(
                "Session reference returned by the eKYC SDK. "
                "Sandbox: `sbx-<12-digit CCCD>-<match|mismatch|spoof>`"
            ),
            examples=["sbx-046090001234-match"],
        ),
    ]


class AccountClose(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    challenge_id: ChallengeId
    code: Code


class DeskVerification(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What the officer reads from the person's card at the desk."""

    phone: Phone
    cccd: Cccd
    full_name: FullName
    date_of_birth: Annotated[date, Meta(description="Date of birth on the card")]


class StaffCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Create a staff account (or give the role to an existing account with this phone)."""

    phone: Phone
    full_name: FullName
    role: Annotated[
        Literal["officer", "admin"], Meta(description="Officer (needs agency_id) or admin (duty)")
    ]
    agency_id: (
        Annotated[str, Meta(min_length=1, max_length=64, description="Officers: the agency they serve")]
        | None
    ) = None
    duty: Annotated[
        Literal["support", "finance", "superadmin"] | None, Meta(description="Admins: their duty")
    ] = None
    password: (
        Annotated[
            str,
            Meta(
                min_length=8, max_length=128, description="Initial password of a new account (required then)"
            ),
        ]
        | None
    ) = None


class DevSms(msgspec.Struct, kw_only=True):
    phone: Annotated[str, Meta(description="Recipient")]
    text: Annotated[str, Meta(description="Message text")]
    code: Annotated[str | None, Meta(description="The 6-digit code in it, if any")]
    sent_at: Annotated[datetime, Meta(description="When it was sent")]
