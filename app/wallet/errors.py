"""The wallet module's errors, declared once (stable codes; Vietnamese and English titles)."""

from __future__ import annotations

from app.core.errors import error_kind

__all__ = ["HOLD_NOT_ACTIVE", "INSUFFICIENT_FUNDS", "LedgerError"]

INSUFFICIENT_FUNDS = error_kind("insufficient_funds", 422, "Số dư khả dụng không đủ", "Insufficient funds")
"""The wallet's available balance (balance minus pending holds) does not cover the amount; the problem
carries ``available`` (đồng)."""

HOLD_NOT_ACTIVE = error_kind(
    "hold_not_active", 409, "Khoản tạm giữ đã được xử lý", "The hold was already captured or released"
)


class LedgerError(RuntimeError):
    """A programming error in a posting (unbalanced entry, unknown account, ...): never the client's fault."""
