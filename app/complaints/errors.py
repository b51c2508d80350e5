"""Error kinds of complaints."""

from __future__ import annotations

from app.core.errors import error_kind

__all__ = [
    "COMPLAINT_EXISTS",
    "COMPLAINT_NOT_FOUND",
    "COMPLAINT_STATE",
    "NOTHING_TO_DISPUTE",
    "PAYMENT_KIND_UNKNOWN",
    "PAYMENT_NOT_DISPUTABLE",
]

COMPLAINT_NOT_FOUND = error_kind(
    "complaint_not_found", 404, "Không tìm thấy khiếu nại", "Complaint not found"
)
COMPLAINT_EXISTS = error_kind(
    "complaint_exists", 409, "Giao dịch này đã có khiếu nại", "This payment already has a complaint"
)
"""One complaint per payment; the problem carries ``complaint_id`` of the existing one."""
COMPLAINT_STATE = error_kind(
    "complaint_state", 409, "Khiếu nại không ở trạng thái cho phép thao tác này", "Not allowed in this state"
)
"""The step does not follow from the complaint's status (``status`` in the problem)."""
PAYMENT_KIND_UNKNOWN = error_kind(
    "payment_kind_unknown", 422, "Loại giao dịch không được hỗ trợ", "Unknown payment kind"
)
PAYMENT_NOT_DISPUTABLE = error_kind(
    "payment_not_disputable", 404, "Không tìm thấy giao dịch của bạn", "No such payment of yours"
)
"""No payment of this kind and id made by the caller (someone else's is not revealed)."""
NOTHING_TO_DISPUTE = error_kind(
    "nothing_to_dispute", 422, "Số tiền khiếu nại không hợp lệ", "Invalid disputed amount"
)
"""The disputed amount must be 1 đồng up to what is left to refund (``refundable`` in the problem)."""
