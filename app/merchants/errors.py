"""The merchants module's errors, declared once (stable codes; Vietnamese and English titles)."""

from __future__ import annotations

from app.core.errors import error_kind

__all__ = [
    "API_KEY_INVALID",
    "MERCHANT_NOT_ACCEPTING",
    "MERCHANT_NOT_FOUND",
    "MERCHANT_STATE",
    "MERCHANT_TAX_CODE_TAKEN",
    "ORDER_EXPIRED",
    "ORDER_NOT_FOUND",
    "ORDER_NOT_PAYABLE",
    "PAYMENT_NOT_FOUND",
    "QR_AMOUNT_REQUIRED",
    "QR_INVALID",
    "QR_UNKNOWN_MERCHANT",
    "REFUND_EXCEEDS_PAID",
    "STORE_NOT_FOUND",
]

MERCHANT_NOT_FOUND = error_kind(
    "merchant_not_found", 404, "Không tìm thấy đơn vị chấp nhận", "No such merchant"
)
STORE_NOT_FOUND = error_kind("store_not_found", 404, "Không tìm thấy điểm bán", "No such store")
MERCHANT_STATE = error_kind(
    "merchant_state",
    409,
    "Trạng thái đơn vị không cho phép thao tác này",
    "Not allowed in the merchant's state",
)
"""The problem carries ``status`` (the merchant's current state)."""
MERCHANT_TAX_CODE_TAKEN = error_kind(
    "merchant_tax_code_taken", 409, "Mã số thuế đã được đăng ký", "This tax code is already registered"
)
QR_INVALID = error_kind("qr_invalid", 422, "Mã QR không hợp lệ", "Not a valid VietQR code")
"""The scanned text is not a VietQR we can read (``reason``: ``bad_crc``, ``bad_length``, ``bad_tlv``,
``not_vietqr``, ``bad_currency``, ``bad_amount``, ``amount_mismatch``)."""
QR_UNKNOWN_MERCHANT = error_kind(
    "qr_unknown_merchant",
    404,
    "Mã QR không thuộc đơn vị chấp nhận nào của Hue-S",
    "No Hue-S merchant for this QR",
)
MERCHANT_NOT_ACCEPTING = error_kind(
    "merchant_not_accepting",
    409,
    "Đơn vị này hiện không nhận thanh toán",
    "This merchant is not taking payments",
)
QR_AMOUNT_REQUIRED = error_kind(
    "qr_amount_required", 422, "Hãy nhập số tiền cần thanh toán", "Type the amount to pay"
)
"""A static QR carries no amount: the payer types it (a positive whole number of đồng)."""
ORDER_NOT_FOUND = error_kind("order_not_found", 404, "Không tìm thấy đơn hàng", "No such order")
ORDER_EXPIRED = error_kind("order_expired", 422, "Mã QR đã hết hạn", "This QR code has expired")
ORDER_NOT_PAYABLE = error_kind(
    "order_not_payable",
    409,
    "Đơn hàng đã được thanh toán hoặc đã hủy",
    "This order is already paid or cancelled",
)
PAYMENT_NOT_FOUND = error_kind(
    "merchant_payment_not_found", 404, "Không tìm thấy giao dịch", "No such payment"
)
REFUND_EXCEEDS_PAID = error_kind(
    "refund_exceeds_paid",
    422,
    "Số tiền hoàn vượt quá số đã thanh toán",
    "The refund exceeds what is left to refund",
)
"""The problem carries ``refundable`` (đồng still refundable on the payment)."""
API_KEY_INVALID = error_kind("api_key_invalid", 401, "Khóa API không hợp lệ", "Invalid or revoked API key")
