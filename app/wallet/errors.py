"""The wallet module's errors, declared once (stable codes; Vietnamese and English titles)."""

from __future__ import annotations

from app.core.errors import error_kind

__all__ = [
    "FUNDING_SOURCE_REQUIRED",
    "HOLD_NOT_ACTIVE",
    "IDENTITY_LEVEL_REQUIRED",
    "INSUFFICIENT_FUNDS",
    "LIMIT_EXCEEDED",
    "RECIPIENT_NOT_FOUND",
    "REFUND_EXCEEDS_PAYMENT",
    "SELF_TRANSFER",
    "WALLET_NOT_EMPTY",
    "WALLET_NOT_FOUND",
    "LedgerError",
]

INSUFFICIENT_FUNDS = error_kind("insufficient_funds", 422, "Số dư khả dụng không đủ", "Insufficient funds")
"""The wallet's available balance (balance minus pending holds) does not cover the amount; the problem
carries ``available`` (đồng)."""

HOLD_NOT_ACTIVE = error_kind(
    "hold_not_active", 409, "Khoản tạm giữ đã được xử lý", "The hold was already captured or released"
)

IDENTITY_LEVEL_REQUIRED = error_kind(
    "identity_level_required",
    403,
    "Cần xác thực danh tính mức 2",
    "Identity level 2 (verified) is required",
)
"""Moving money needs a verified identity (level 2); the problem carries ``required`` and ``current``."""

WALLET_NOT_FOUND = error_kind("wallet_not_found", 404, "Chưa mở ví", "No wallet is open")
"""The customer has not opened a wallet yet (``POST /api/v1/me/wallet`` opens it)."""

LIMIT_EXCEEDED = error_kind("limit_exceeded", 422, "Vượt hạn mức giao dịch", "Payment limit exceeded")
"""A payment limit refuses the amount; the problem carries ``limit`` (``per_transaction``, ``per_day``,
``per_month``, ``monthly_cap``, ``new_device_per_transaction`` or ``new_device_per_day``), ``category``,
``limit_amount`` and ``remaining`` (đồng that may still be paid under that limit)."""

RECIPIENT_NOT_FOUND = error_kind(
    "recipient_not_found", 404, "Không tìm thấy ví người nhận", "No wallet found for that phone number"
)
"""No active customer with an open wallet has that phone number."""

SELF_TRANSFER = error_kind(
    "self_transfer", 422, "Không thể chuyển cho chính mình", "Cannot transfer to yourself"
)

WALLET_NOT_EMPTY = error_kind(
    "wallet_not_empty", 409, "Ví còn số dư", "The wallet still holds money or pending amounts"
)
"""Closing the account is refused while the wallet's balance or held amount is not zero."""


FUNDING_SOURCE_REQUIRED = error_kind(
    "funding_source_required",
    409,
    "Ví chưa liên kết nguồn tiền",
    "Link your own debit card or bank account first",
)
"""A wallet with no linked debit card or bank account can neither pay nor transfer."""


class LedgerError(RuntimeError):
    """A programming error in a posting (unbalanced entry, unknown account, ...): never the client's fault."""


REFUND_EXCEEDS_PAYMENT = error_kind(
    "refund_exceeds_payment", 422, "Số tiền hoàn vượt quá số đã thanh toán", "The refund exceeds the payment"
)
"""The refunds of a payment never add up to more than was paid; the problem carries ``refundable``."""
