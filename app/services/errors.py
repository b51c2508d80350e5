"""The public-service module's error codes (declared once; clients branch on ``code``)."""

from __future__ import annotations

from app.core.errors import error_kind

__all__ = [
    "ILLEGAL_TRANSITION",
    "INVALID_CALENDAR",
    "INVALID_FEE_SCHEDULE",
    "NO_PROCESSING_TIME",
    "PROCEDURE_NOT_FOUND",
    "UNKNOWN_AGENCY",
]

ILLEGAL_TRANSITION = error_kind(
    "illegal_transition",
    409,
    "Không thể chuyển trạng thái hồ sơ",
    "This dossier cannot move to that status",
)
PROCEDURE_NOT_FOUND = error_kind(
    "procedure_not_found", 404, "Không tìm thấy thủ tục hành chính", "No such procedure"
)
UNKNOWN_AGENCY = error_kind(
    "unknown_agency", 422, "Cơ quan không có trong danh mục", "The agency is not in the catalogue"
)
INVALID_FEE_SCHEDULE = error_kind(
    "invalid_fee_schedule", 422, "Biểu phí, lệ phí không hợp lệ", "Invalid fee schedule"
)
INVALID_CALENDAR = error_kind(
    "invalid_calendar", 422, "Lịch nghỉ lễ không hợp lệ", "Invalid holiday schedule"
)
NO_PROCESSING_TIME = error_kind(
    "no_processing_time",
    409,
    "Thủ tục chưa có thời hạn giải quyết",
    "The procedure has no processing time set",
)
