"""Vietnamese mobile numbers: parsed with ``phonenumbers`` and kept in E.164 (``+84...``)."""

from __future__ import annotations

import functools

import phonenumbers

__all__ = ["mask_phone", "normalize_phone", "try_normalize_phone"]

_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


@functools.lru_cache(maxsize=8192)
def try_normalize_phone(raw: str) -> str | None:
    """``+84xxxxxxxxx`` for a valid Vietnamese mobile number (written ``09..``, ``849..`` or ``+849..``,
    spaces and dots allowed), else ``None``. Landlines and foreign numbers are refused: codes go by SMS.

    Remembered per spelling (a pure function of it): parsing cost ~0.13 ms of every transfer by phone."""
    text = raw.strip()
    if not text or len(text) > 24:
        return None
    if text.startswith("84") and not text.startswith("+"):
        text = "+" + text
    try:
        number = phonenumbers.parse(text, "VN")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 84 or not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(raw: str) -> str:
    """Like :func:`try_normalize_phone` but raises ``phone_invalid``."""
    from app.identity.errors import PHONE_INVALID

    phone = try_normalize_phone(raw)
    if phone is None:
        raise PHONE_INVALID(
            "Số điện thoại di động Việt Nam không hợp lệ", "Not a valid Vietnamese mobile number"
        )
    return phone


def mask_phone(phone: str) -> str:
    """``+84905***456``: enough for a person to recognise their own number."""
    if len(phone) < 8:
        return "***"
    return phone[:6] + "*" * (len(phone) - 9) + phone[-3:]
