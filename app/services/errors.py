"""The public-service module's error codes (declared once; clients branch on ``code``)."""

from __future__ import annotations

from app.core.errors import error_kind

__all__ = [
    "DOCUMENT_TOO_LARGE",
    "DOSSIER_INCOMPLETE",
    "DOSSIER_LOCKED",
    "FEE_NOT_CONFIGURED",
    "ILLEGAL_TRANSITION",
    "INVALID_CALENDAR",
    "INVALID_FEE_SCHEDULE",
    "NO_NEXT_AGENCY",
    "NO_PROCESSING_TIME",
    "PROCEDURE_NOT_FOUND",
    "UNKNOWN_AGENCY",
    "UNKNOWN_FEE_CASE",
    "UNSUPPORTED_DOCUMENT_TYPE",
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

# --- Dossiers ---------------------------------------------------------------------------------------------

UNKNOWN_FEE_CASE = error_kind(
    "unknown_fee_case",
    422,
    "Trường hợp thu phí không có trong biểu phí",
    "No such fee case for this procedure",
)
DOCUMENT_TOO_LARGE = error_kind("document_too_large", 413, "Tệp quá lớn", "The file is too large")
UNSUPPORTED_DOCUMENT_TYPE = error_kind(
    "unsupported_document_type",
    415,
    "Chỉ nhận tệp PDF, JPEG hoặc PNG",
    "Only PDF, JPEG and PNG files are accepted",
)
DOSSIER_INCOMPLETE = error_kind(
    "dossier_incomplete", 409, "Hồ sơ chưa đủ giấy tờ bắt buộc", "Required documents are missing"
)
NO_NEXT_AGENCY = error_kind(
    "no_next_agency", 409, "Không còn cơ quan tiếp theo trong quy trình", "No next agency in the chain"
)
FEE_NOT_CONFIGURED = error_kind(
    "fee_not_configured",
    409,
    "Mức phí, lệ phí của thủ tục chưa được cấu hình",
    "The procedure's fee amount is not configured yet",
)
DOSSIER_LOCKED = error_kind(
    "dossier_locked",
    409,
    "Hồ sơ không thể thay đổi ở trạng thái này",
    "The dossier cannot be changed in its current status",
)
