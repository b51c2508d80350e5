"""Purposes a citizen consents to (Decree 13/2023: consent per purpose, withdrawable), and the current text
version of each. Changing a text means a new version: consent given to an older version no longer counts."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PURPOSES", "ConsentPurpose"]


@dataclass(frozen=True, slots=True)
class ConsentPurpose:
    code: str
    version: str
    title_vi: str
    title_en: str
    required: bool
    """Needed to hold an account at all: withdrawing it means closing the account."""


PURPOSES: dict[str, ConsentPurpose] = {
    p.code: p
    for p in (
        ConsentPurpose(
            "account",
            "2025-01",
            "Xử lý dữ liệu cá nhân để mở và duy trì tài khoản, ví và dịch vụ công",
            "Processing personal data to run the account, the wallet and public services",
            required=True,
        ),
        ConsentPurpose(
            "ekyc",
            "2025-01",
            "Xử lý ảnh giấy tờ tùy thân và khuôn mặt để xác thực điện tử (eKYC)",
            "Processing ID document and face images for electronic identity verification (eKYC)",
            required=False,
        ),
        ConsentPurpose(
            "share_with_agencies",
            "2025-01",
            "Chia sẻ thông tin hồ sơ với cơ quan giải quyết thủ tục hành chính",
            "Sharing dossier data with the agencies handling a procedure",
            required=False,
        ),
        ConsentPurpose(
            "marketing",
            "2025-01",
            "Nhận thông tin khuyến mại từ đơn vị chấp nhận thanh toán",
            "Receiving promotions from merchants",
            required=False,
        ),
        ConsentPurpose(
            "analytics",
            "2025-01",
            "Dùng dữ liệu sử dụng ẩn danh để cải thiện dịch vụ",
            "Using anonymised usage data to improve the service",
            required=False,
        ),
    )
}
