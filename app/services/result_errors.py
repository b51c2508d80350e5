"""Error codes of dossier results, return channels, apologies and ratings (issue 9)."""

from __future__ import annotations

from app.core.errors import WEBHOOK_SIGNATURE_INVALID, error_kind

__all__ = [
    "ALREADY_RATED",
    "CHANNEL_NOT_OFFERED",
    "RATING_NOT_OPEN",
    "RESULT_KEY_REVOKED",
    "RESULT_NOT_RELEASED",
    "RETURN_LOCKED",
    "WEBHOOK_SIGNATURE_INVALID",
]

RESULT_KEY_REVOKED = error_kind(
    "result_key_revoked",
    409,
    "Khóa ký kết quả của cơ quan đã bị thu hồi; cần khóa mới",
    "The agency's result-signing key is revoked; a new key is needed",
)
RESULT_NOT_RELEASED = error_kind(
    "result_not_released",
    409,
    "Kết quả chưa được trả (hồ sơ chưa xử lý xong hoặc chưa nộp phí)",
    "The result is not released yet (not processed, or a fee is unpaid)",
)
CHANNEL_NOT_OFFERED = error_kind(
    "channel_not_offered",
    422,
    "Thủ tục không trả kết quả qua hình thức này",
    "The procedure does not return results through this channel",
)
RETURN_LOCKED = error_kind(
    "return_locked",
    409,
    "Không thể đổi hoặc thực hiện hình thức nhận kết quả lúc này",
    "The return of the result cannot be changed or done now",
)
RATING_NOT_OPEN = error_kind(
    "rating_not_open",
    409,
    "Chỉ đánh giá sau khi có kết quả",
    "The service can be rated once the result is out",
)
ALREADY_RATED = error_kind(
    "already_rated", 409, "Hồ sơ này đã được đánh giá", "This dossier was already rated"
)
