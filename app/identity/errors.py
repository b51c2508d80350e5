"""The identity module's error codes (stable once published)."""

from __future__ import annotations

from app.core.errors import error_kind

__all__ = [
    "ACCOUNT_LOCKED",
    "CCCD_INVALID",
    "CCCD_TAKEN",
    "CLOSURE_REFUSED",
    "CONSENT_REQUIRED",
    "EKYC_REJECTED",
    "EKYC_UNAVAILABLE",
    "IDENTITY_LOCKED",
    "INVALID_CREDENTIALS",
    "INVALID_REFRESH_TOKEN",
    "OTP_COOLDOWN",
    "OTP_EXPIRED",
    "OTP_INVALID",
    "OTP_LOCKED",
    "PASSWORD_WEAK",
    "PHONE_INVALID",
    "PHONE_TAKEN",
    "PIN_INVALID",
    "PIN_LOCKED",
    "PIN_NOT_SET",
    "PIN_WEAK",
    "PROFILE_INCOMPLETE",
    "REFRESH_TOKEN_REUSED",
    "ROLE_CONFLICT",
    "SIGN_IN_LOCKED",
    "SMS_UNAVAILABLE",
]

PHONE_INVALID = error_kind("phone_invalid", 422, "Số điện thoại không hợp lệ", "Invalid phone number")
PHONE_TAKEN = error_kind(
    "phone_taken", 409, "Số điện thoại đã được đăng ký", "This phone number is already registered"
)
OTP_INVALID = error_kind("otp_invalid", 422, "Mã xác thực không đúng", "Wrong verification code")
"""Adds ``attempts_left``."""
OTP_EXPIRED = error_kind(
    "otp_expired", 422, "Mã xác thực đã hết hạn hoặc đã dùng", "Verification code expired or already used"
)
OTP_LOCKED = error_kind(
    "otp_locked", 423, "Nhập sai mã quá nhiều lần", "Too many wrong codes; request a new code later"
)
"""Adds ``retry_after`` (seconds) when the number itself is locked."""
OTP_COOLDOWN = error_kind(
    "otp_cooldown", 429, "Vui lòng chờ trước khi gửi lại mã", "Wait before requesting another code"
)
"""Adds ``retry_after`` (seconds); also the Retry-After header."""
SMS_UNAVAILABLE = error_kind(
    "sms_unavailable", 503, "Không gửi được tin nhắn, vui lòng thử lại", "SMS could not be sent; retry later"
)
INVALID_CREDENTIALS = error_kind(
    "invalid_credentials", 401, "Số điện thoại hoặc mật khẩu không đúng", "Wrong phone number or password"
)
SIGN_IN_LOCKED = error_kind(
    "sign_in_locked",
    423,
    "Tạm khóa đăng nhập do nhập sai nhiều lần",
    "Sign-in locked after repeated failures",
)
"""Adds ``retry_after`` (seconds)."""
ACCOUNT_LOCKED = error_kind("account_locked", 423, "Tài khoản đang bị khóa", "The account is locked")
INVALID_REFRESH_TOKEN = error_kind(
    "invalid_refresh_token",
    401,
    "Phiên đăng nhập không hợp lệ hoặc đã hết hạn",
    "Refresh token invalid or expired",
)
REFRESH_TOKEN_REUSED = error_kind(
    "refresh_token_reused",
    401,
    "Phiên đăng nhập đã bị thu hồi vì mã làm mới bị dùng lại",
    "A spent refresh token was reused; the whole session was revoked",
)
PASSWORD_WEAK = error_kind("password_weak", 422, "Mật khẩu quá yếu", "Password too weak")
CCCD_INVALID = error_kind("cccd_invalid", 422, "Số CCCD không hợp lệ", "Invalid citizen ID number")
CCCD_TAKEN = error_kind(
    "cccd_taken", 409, "Số CCCD đã được dùng cho tài khoản khác", "This citizen ID is used by another account"
)
IDENTITY_LOCKED = error_kind(
    "identity_locked",
    409,
    "Thông tin định danh đã được xác thực, không thể tự sửa",
    "Verified identity data cannot be changed by the user",
)
PROFILE_INCOMPLETE = error_kind(
    "profile_incomplete",
    409,
    "Cần khai báo họ tên, số CCCD và ngày sinh trước",
    "Declare full name, citizen ID and date of birth first",
)
EKYC_REJECTED = error_kind(
    "ekyc_rejected", 422, "Xác thực điện tử không thành công", "eKYC verification failed"
)
"""Adds ``reason``: ``document_mismatch``, ``face_mismatch``, ``not_live`` or ``unknown_session``."""
PIN_INVALID = error_kind("pin_invalid", 422, "Mã PIN không đúng", "Wrong PIN")
"""Adds ``attempts_left``."""
PIN_LOCKED = error_kind("pin_locked", 423, "Mã PIN tạm bị khóa", "PIN locked after too many wrong tries")
"""Adds ``locked_until`` (RFC 3339) and ``retry_after`` (seconds)."""
PIN_NOT_SET = error_kind("pin_not_set", 409, "Chưa thiết lập mã PIN thanh toán", "No payment PIN set")
ROLE_CONFLICT = error_kind(
    "role_conflict", 409, "Vai trò xung đột với vai trò hiện có", "Role conflicts with an existing role"
)
CLOSURE_REFUSED = error_kind(
    "closure_refused", 409, "Chưa thể đóng tài khoản", "The account cannot be closed yet"
)
"""Adds ``reasons``: a list of ``{code, detail}`` from the modules that refused."""
PIN_WEAK = error_kind(
    "pin_weak", 422, "Mã PIN quá dễ đoán", "PIN too easy to guess (repeated or consecutive digits)"
)
CONSENT_REQUIRED = error_kind(
    "consent_required",
    409,
    "Cần sự đồng ý của bạn cho mục đích này",
    "Your consent for this purpose is needed",
)
"""Adds ``purpose``."""
EKYC_UNAVAILABLE = error_kind(
    "ekyc_unavailable", 503, "Dịch vụ xác thực điện tử chưa sẵn sàng", "No eKYC provider is configured"
)
