"""The console's words, Vietnamese first, English on the switch. One table: a missing English word falls
back to Vietnamese, a missing key shows itself (a test renders every page in both languages)."""

from __future__ import annotations

from collections.abc import Callable

from app.core.errors import AppError

__all__ = ["LANGS", "WORDS", "error_text", "translator"]

LANGS = ("vi", "en")

WORDS: dict[str, tuple[str, str]] = {
    "app_name": ("Hue-S · Bảng điều khiển", "Hue-S · Console"),
    "skip": ("Bỏ qua, đến nội dung chính", "Skip to main content"),
    "nav": ("Điều hướng chính", "Main navigation"),
    "sign_in": ("Đăng nhập", "Sign in"),
    "sign_out": ("Đăng xuất", "Sign out"),
    "sign_in_title": ("Đăng nhập cho cán bộ và quản trị viên", "Sign in for officers and admins"),
    "phone": ("Số điện thoại", "Phone number"),
    "password": ("Mật khẩu", "Password"),
    "signed_in_as": ("Đang đăng nhập", "Signed in as"),
    "signed_out": ("Đã đăng xuất.", "Signed out."),
    "session_ended": (
        "Phiên làm việc đã kết thúc, vui lòng đăng nhập lại.",
        "Your session ended; sign in again.",
    ),
    "language": ("Ngôn ngữ", "Language"),
    "switch_lang": ("English", "Tiếng Việt"),
    # officer
    "queue": ("Hồ sơ của đơn vị", "Agency dossiers"),
    "queue_title": ("Hàng đợi hồ sơ", "Dossier queue"),
    "filter": ("Lọc", "Filter"),
    "apply": ("Áp dụng", "Apply"),
    "f_all": ("Tất cả", "All"),
    "f_receiving": ("Chờ tiếp nhận", "Awaiting intake"),
    "f_new": ("Đã tiếp nhận", "Accepted"),
    "f_processing": ("Đang xử lý", "Processing"),
    "f_waiting": ("Chờ bổ sung", "Waiting for supplement"),
    "f_due_soon": ("Sắp đến hạn", "Due soon"),
    "f_overdue": ("Quá hạn", "Overdue"),
    "code": ("Mã hồ sơ", "Dossier code"),
    "procedure": ("Thủ tục", "Procedure"),
    "status": ("Trạng thái", "Status"),
    "agency": ("Cơ quan", "Agency"),
    "submitted": ("Nộp lúc", "Submitted"),
    "due": ("Hạn xử lý", "Due"),
    "provisional": ("tạm tính", "provisional"),
    "none": ("Không có hồ sơ nào.", "No dossiers."),
    "next_page": ("Trang sau", "Next page"),
    "open": ("Mở", "Open"),
    "dossier": ("Hồ sơ", "Dossier"),
    "documents": ("Giấy tờ", "Documents"),
    "purpose": ("Loại", "Kind"),
    "timeline": ("Quá trình xử lý", "Timeline"),
    "download": ("Tải về", "Download"),
    "fee": ("Phí, lệ phí", "Fee"),
    "fee_none": ("Không thu", "None"),
    "chain": ("Các cơ quan xử lý", "Handling agencies"),
    "reason": ("Lý do", "Reason"),
    "note": ("Ghi chú", "Note"),
    "actions": ("Thao tác", "Actions"),
    "no_actions": ("Không có thao tác nào ở trạng thái này.", "No action in this status."),
    "accept": ("Tiếp nhận", "Accept"),
    "deny": ("Từ chối tiếp nhận", "Deny at intake"),
    "process": ("Bắt đầu xử lý", "Start processing"),
    "transfer": ("Chuyển cơ quan tiếp theo", "Transfer to next agency"),
    "request_supplement": ("Yêu cầu bổ sung", "Request supplement"),
    "set_fee": ("Đặt phí thu sau", "Set fee collected after"),
    "amount": ("Số tiền (đồng)", "Amount (đồng)"),
    "approve": ("Duyệt, kèm kết quả", "Approve with result"),
    "result_file": ("Tệp kết quả (PDF, JPEG, PNG)", "Result file (PDF, JPEG, PNG)"),
    "stop": ("Dừng xử lý", "Stop processing"),
    "return_result": ("Trả kết quả", "Return result"),
    "return_pending": (
        "Trả kết quả sẽ có khi mô-đun kết quả hồ sơ được hợp nhất.",
        "Returning the result arrives with the dossier-results module.",
    ),
    "done_ok": ("Đã thực hiện.", "Done."),
    "verify_desk": ("Xác thực tại quầy", "Verify at the desk"),
    "cccd": ("Số CCCD", "Citizen ID number"),
    "full_name": ("Họ và tên", "Full name"),
    "dob": ("Ngày sinh", "Date of birth"),
    "verified": ("Đã xác thực danh tính (mức 2).", "Identity verified (level 2)."),
    # admin
    "dashboard": ("Tổng quan", "Dashboard"),
    "users": ("Người dùng", "Users"),
    "outbox": ("Thư chưa gửi được", "Dead letters"),
    "audit": ("Nhật ký kiểm toán", "Audit trail"),
    "reconciliation": ("Đối soát", "Reconciliation"),
    "merchants": ("Đơn vị chấp nhận", "Merchants"),
    "coming": ("Sắp có", "Coming"),
    "users_total": ("Tài khoản", "Accounts"),
    "users_verified": ("Đã xác thực mức 2", "Verified (level 2)"),
    "users_locked": ("Đang bị khóa", "Locked"),
    "wallets": ("Ví điện tử", "Wallets"),
    "wallet_balance": ("Tổng số dư ví", "Total wallet balance"),
    "acceptance_points": ("Điểm chấp nhận thanh toán QR đang hoạt động", "Active QR acceptance points"),
    "bills_paid": ("Hóa đơn đã thanh toán theo loại", "Bills paid by category"),
    "bills_count": ("số hóa đơn", "bills"),
    "dossiers_by_status": ("Hồ sơ theo trạng thái", "Dossiers by status"),
    "chart_empty": ("Chưa có số liệu.", "No figures yet."),
    "this_month": ("Tháng này", "This month"),
    "share_paid_online": ("Hóa đơn đến hạn đã trả qua ứng dụng", "Due bills paid through the app"),
    "timeliness": ("Hồ sơ trả kết quả: sớm, đúng hạn, trễ hạn", "Dossiers finished: early, on time, late"),
    "t_early": ("Sớm hạn", "Early"),
    "t_on_time": ("Đúng hạn", "On time"),
    "t_late": ("Trễ hạn", "Late"),
    "lookup": ("Tra cứu", "Look up"),
    "lookup_hint": ("Số điện thoại hoặc mã tài khoản", "Phone number or account id"),
    "not_found": ("Không tìm thấy.", "Not found."),
    "level": ("Mức định danh", "Identity level"),
    "roles": ("Vai trò", "Roles"),
    "created": ("Tạo lúc", "Created"),
    "u_active": ("Đang hoạt động", "Active"),
    "u_locked": ("Đang bị khóa", "Locked"),
    "u_closed": ("Đã đóng", "Closed"),
    "lock": ("Khóa tài khoản", "Lock account"),
    "unlock": ("Mở khóa", "Unlock"),
    "topic": ("Chủ đề", "Topic"),
    "attempts": ("Số lần thử", "Attempts"),
    "last_error": ("Lỗi gần nhất", "Last error"),
    "retry": ("Gửi lại", "Retry"),
    "no_dead": ("Không có thư nào bị kẹt.", "No dead letters."),
    "search": ("Tìm", "Search"),
    "action": ("Hành động", "Action"),
    "actor": ("Người thực hiện", "Actor"),
    "object": ("Đối tượng", "Object"),
    "outcome": ("Kết quả", "Outcome"),
    "when": ("Thời điểm", "When"),
    "since": ("Từ", "Since"),
    "until": ("Đến", "Until"),
    "verify_chain": ("Kiểm tra toàn vẹn chuỗi", "Verify the chain"),
    "chain_ok": ("Chuỗi kiểm toán toàn vẹn", "The audit chain is intact"),
    "chain_bad": ("Chuỗi kiểm toán có dấu hiệu bị sửa", "The audit chain shows tampering"),
    "rows_checked": ("Số dòng đã kiểm tra", "Rows checked"),
    # reconciliation (desk installed by the reconciliation module)
    "exception": ("Chênh lệch", "Exception"),
    "no_exceptions": ("Không có chênh lệch nào.", "No exceptions."),
    "x_open": ("Chưa xử lý", "Open"),
    "x_proposed": ("Chờ duyệt điều chỉnh", "Correction proposed"),
    "x_resolved": ("Đã điều chỉnh", "Resolved"),
    "x_closed": ("Đã đóng", "Closed"),
    "x_all": ("Tất cả", "All"),
    "day": ("Ngày", "Day"),
    "source": ("Nguồn", "Source"),
    "kind": ("Loại", "Kind"),
    "reference": ("Tham chiếu", "Reference"),
    "ledger_amount": ("Theo sổ cái", "Per ledger"),
    "external_amount": ("Theo đối tác", "Per partner"),
    "proposal": ("Đề xuất bút toán điều chỉnh", "Proposed correcting entry"),
    "account": ("Tài khoản", "Account"),
    "proposed_by": ("Người đề xuất", "Proposed by"),
    "propose": ("Đề xuất điều chỉnh", "Propose a correction"),
    "description": ("Diễn giải", "Description"),
    "postings": ("Các dòng bút toán", "Postings"),
    "postings_help": (
        "Mỗi dòng: tài khoản rồi số tiền có dấu (dương là ghi có), ví dụ: suspense -50000",
        "One a line: account, then signed amount (positive credits), e.g. suspense -50000",
    ),
    "approve_correction": ("Duyệt điều chỉnh", "Approve the correction"),
    "four_eyes": (
        "Bạn là người đề xuất: một quản trị viên tài chính khác phải duyệt.",
        "You proposed it: another finance admin must approve it.",
    ),
    "reject": ("Từ chối đề xuất", "Reject the proposal"),
    "close_exception": ("Đóng chênh lệch", "Close the exception"),
    # merchants (desk installed by the merchants module)
    "merchant": ("Đơn vị", "Merchant"),
    "merchant_hint": ("Tên, mã số thuế hoặc mã đơn vị", "Name, tax code or merchant id"),
    "tax_code": ("Mã số thuế", "Tax code"),
    "m_pending": ("Chờ duyệt", "Pending"),
    "m_approved": ("Đã duyệt", "Approved"),
    "m_rejected": ("Bị từ chối", "Rejected"),
    "m_suspended": ("Tạm ngừng", "Suspended"),
    "m_do_approve": ("Duyệt", "Approve"),
    "m_do_reject": ("Từ chối", "Reject"),
    "m_do_suspend": ("Tạm ngừng", "Suspend"),
    "m_do_reinstate": ("Cho hoạt động lại", "Reinstate"),
    # errors
    "err_title": ("Có lỗi", "Error"),
    "err_403": ("Bạn không có quyền mở trang này.", "You are not allowed to open this page."),
    "err_404": ("Không tìm thấy trang hoặc đối tượng.", "Page or object not found."),
    "err_csrf": (
        "Biểu mẫu đã hết hạn hoặc không hợp lệ. Vui lòng tải lại trang và thử lại.",
        "The form expired or is not valid. Reload the page and try again.",
    ),
    "err_500": ("Đã có lỗi hệ thống. Vui lòng thử lại sau.", "Something went wrong. Try again later."),
    "back_home": ("Về trang đầu", "Back to start"),
}


def translator(lang: str) -> Callable[[str], str]:
    index = 1 if lang == "en" else 0

    def t(key: str) -> str:
        words = WORDS.get(key)
        if words is None:
            return key
        return words[index] or words[0]

    return t


def error_text(exc: AppError, lang: str) -> str:
    """The problem's detail, in the console's language."""
    return exc.detail_en if lang == "en" else exc.detail_vi
