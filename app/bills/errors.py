"""The refusals of the bills module, declared once (stable codes, Vietnamese and English titles)."""

from __future__ import annotations

from app.core.errors import error_kind

__all__ = [
    "BILLER_ERROR",
    "BILLER_NOT_FOUND",
    "BILLER_UNAVAILABLE",
    "BILL_NOT_FOUND",
    "CUSTOMER_CODE_NOT_FOUND",
    "INVALID_BILLER",
    "INVALID_CUSTOMER_CODE",
    "SAVED_CODE_NOT_FOUND",
]

BILLER_NOT_FOUND = error_kind("biller_not_found", 404, "Không tìm thấy nhà cung cấp", "Biller not found")
INVALID_BILLER = error_kind(
    "invalid_biller", 422, "Cấu hình nhà cung cấp không hợp lệ", "Invalid biller configuration"
)
INVALID_CUSTOMER_CODE = error_kind(
    "invalid_customer_code", 422, "Mã khách hàng không đúng định dạng", "Invalid customer code"
)
CUSTOMER_CODE_NOT_FOUND = error_kind(
    "customer_code_not_found",
    404,
    "Nhà cung cấp không có khách hàng với mã này",
    "The biller has no customer with this code",
)
BILLER_UNAVAILABLE = error_kind(
    "biller_unavailable",
    503,
    "Hệ thống của nhà cung cấp tạm thời không phản hồi, vui lòng thử lại sau",
    "The biller's system is not answering; try again later",
)
BILLER_ERROR = error_kind(
    "biller_error",
    502,
    "Nhà cung cấp trả lời không hợp lệ",
    "The biller's system gave an invalid answer",
)
BILL_NOT_FOUND = error_kind("bill_not_found", 404, "Không tìm thấy hóa đơn", "Bill not found")
SAVED_CODE_NOT_FOUND = error_kind(
    "saved_code_not_found", 404, "Không tìm thấy mã khách hàng đã lưu", "Saved customer code not found"
)
