"""The refusals of the bills module, declared once (stable codes, Vietnamese and English titles)."""

from __future__ import annotations

from app.core.errors import error_kind

__all__ = [
    "AMOUNT_NOT_ALLOWED",
    "BILLER_ERROR",
    "BILLER_NOT_FOUND",
    "BILLER_UNAVAILABLE",
    "BILL_ALREADY_PAID",
    "BILL_NOT_FOUND",
    "BILL_NOT_PAYABLE",
    "CUSTOMER_CODE_NOT_FOUND",
    "INVALID_BILLER",
    "INVALID_CUSTOMER_CODE",
    "MANDATE_NOT_FOUND",
    "PAYMENT_NOT_FOUND",
    "RECEIPT_NOT_FOUND",
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
BILL_ALREADY_PAID = error_kind(
    "bill_already_paid", 409, "Hóa đơn đã được thanh toán", "The bill is already paid"
)
"""Someone (maybe another device of the same person) paid this bill first; the problem carries ``bill_id``.
Nothing of the payment was done."""
BILL_NOT_PAYABLE = error_kind(
    "bill_not_payable", 409, "Hóa đơn không thể thanh toán", "The bill cannot be paid"
)
"""The bill was withdrawn by its biller, has expired, or its biller no longer accepts payments; the problem
carries ``bill_id`` and ``status``. Nothing of the payment was done."""
AMOUNT_NOT_ALLOWED = error_kind(
    "amount_not_allowed", 422, "Số tiền không phù hợp với hóa đơn", "The amount is not allowed for this bill"
)
"""The biller's amount rule refuses the amount given for this bill (``exact``: only the bill's amount;
``at_least``: the bill's amount or more; ``partial_allowed``: 1 đồng up to the bill's amount); the problem
carries ``bill_id``, ``amount_rule`` and ``bill_amount``. Nothing of the payment was done."""
PAYMENT_NOT_FOUND = error_kind("payment_not_found", 404, "Không tìm thấy giao dịch", "Payment not found")
RECEIPT_NOT_FOUND = error_kind("receipt_not_found", 404, "Không tìm thấy biên lai", "Receipt not found")
MANDATE_NOT_FOUND = error_kind(
    "mandate_not_found", 404, "Không tìm thấy lệnh tự động thanh toán", "Auto-pay mandate not found"
)
