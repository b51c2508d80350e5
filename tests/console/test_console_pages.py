"""The console's rules without a browser, on both backends: who may sign in, CSRF on every form post, and
access decided exactly as the API decides it (issue 13). The browser journeys are in test_console_browser.py.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.console.i18n import WORDS
from app.core.settings import Settings
from tests.factories import DEFAULT_PASSWORD, in_app, make_user

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "console" / "templates"


class Desk:
    """One browser: its own console cookie, and the CSRF token of the last page it read."""

    def __init__(self, client: AsyncTestClient[Litestar]) -> None:
        self.client = client
        self.cookie = ""
        self.csrf = ""

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.client.cookies.clear()
        headers = {"cookie": f"hue_console={self.cookie}"} if self.cookie else {}
        response = await self.client.request(method, path, headers=headers, follow_redirects=False, **kwargs)
        if match := re.search(r"hue_console=([^;]+)", response.headers.get("set-cookie", "")):
            self.cookie = match.group(1)
        if match := re.search(r'name="csrf_token" value="([^"]+)"', response.text):
            self.csrf = match.group(1)
        return response

    async def get(self, path: str) -> Any:
        return await self.request("GET", path)

    async def post(self, path: str, data: dict[str, str], *, token: bool = True) -> Any:
        body = {**data, "csrf_token": self.csrf} if token else data
        return await self.request("POST", path, data=body)

    async def sign_in(self, phone: str, password: str = DEFAULT_PASSWORD) -> Any:
        await self.get("/console/sign-in")
        return await self.post("/console/sign-in", {"phone": phone, "password": password})


async def _dossier_at(client: AsyncTestClient[Litestar], settings: Settings, agency: str) -> dict[str, Any]:
    """A submitted dossier (``receiving``) of a new citizen at ``agency``, as the demo seeds it."""
    from app.services.catalogue import HOLIDAYS_FILE, NATIONAL_CATALOGUE_FILE, load_json
    from app.services.demo import seed_dossiers
    from app.services.service import load_catalogue, load_holidays

    citizen = await make_user(client)
    db = client.app.state.db

    async def seed() -> dict[str, Any]:
        await load_catalogue(db, load_json(NATIONAL_CATALOGUE_FILE))
        await load_holidays(db, load_json(HOLIDAYS_FILE))
        creds: dict[str, Any] = {
            "citizen": {"user_id": str(citizen.user_id)},
            "officer": {"agency_id": agency},
        }
        await seed_dossiers(db, settings, creds)
        demo: dict[str, Any] = creds["dossiers"]["demo_dossier"]
        return demo

    return await in_app(client, seed)


async def test_only_staff_sign_in_and_every_form_needs_its_token(client: AsyncTestClient[Litestar]) -> None:
    citizen = await make_user(client)
    admin = await make_user(client, roles=("admin",), duties=("support",))
    desk = Desk(client)

    anonymous = await desk.get("/console/admin")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/sign-in?next=/console/admin"

    page = await desk.get("/console/sign-in")
    assert page.status_code == 200
    assert '<html lang="vi">' in page.text
    assert 'for="phone"' in page.text, "every field has a label"

    forged = await desk.post(
        "/console/sign-in", {"phone": admin.phone, "password": DEFAULT_PASSWORD}, token=False
    )
    assert forged.status_code == 403
    assert "Biểu mẫu đã hết hạn" in forged.text

    wrong = await desk.post("/console/sign-in", {"phone": admin.phone, "password": "not-the-password"})
    assert wrong.status_code == 401
    assert "/console/admin" not in wrong.headers.get("location", "")

    refused = await desk.sign_in(citizen.phone)
    assert refused.status_code == 403
    assert "chỉ dành cho cán bộ và quản trị viên" in refused.text
    assert (await desk.get("/console/admin")).status_code == 303, "a citizen gets no console session"

    signed = await desk.sign_in(admin.phone)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/console/admin"
    dashboard = await desk.get("/console/admin")
    assert dashboard.status_code == 200
    assert 'id="chart-dossiers"' in dashboard.text
    assert 'id="chart-users"' in dashboard.text
    assert dashboard.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in dashboard.headers["content-security-policy"]

    english = await desk.post("/console/language", {"lang": "en", "back": "/console/admin"})
    assert english.headers["location"] == "/console/admin"
    page = await desk.get("/console/admin")
    assert '<html lang="en">' in page.text
    assert "Dashboard" in page.text

    # An open redirect is not possible through the language switch or the sign-in's next.
    away = await desk.post("/console/language", {"lang": "vi", "back": "https://evil.example/"})
    assert away.headers["location"] == "/console/sign-in"


async def test_access_is_the_apis_and_ends_with_the_account(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    dossier = await _dossier_at(client, settings, "THUAN-HOA")
    url = f"/console/officer/dossiers/{dossier['id']}"
    officer = await make_user(client, roles=("officer",), agency_id="THUAN-HOA")
    elsewhere = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    support = await make_user(client, roles=("admin",), duties=("support",))
    finance = await make_user(client, roles=("admin",), duties=("finance",))

    other_desk = Desk(client)
    await other_desk.sign_in(elsewhere.phone)
    assert (await other_desk.get(url)).status_code == 404, "only the agency holding it sees it"
    queue = await other_desk.get("/console/officer/dossiers")
    assert dossier["code"] not in queue.text

    support_desk = Desk(client)
    await support_desk.sign_in(support.phone)
    seen = await support_desk.get(url)
    assert seen.status_code == 200, "support admins may read dossiers, as in the API"
    assert 'id="form-accept"' not in seen.text
    tried = await support_desk.post(f"{url}/accept", {"note": "x"})
    assert tried.status_code == 303
    after = await support_desk.get(url)
    assert 'data-status="receiving"' in after.text, "but not act on them"

    finance_desk = Desk(client)
    await finance_desk.sign_in(finance.phone)
    assert (await finance_desk.get("/console/admin")).status_code == 200
    assert (await finance_desk.get("/console/admin/users")).status_code == 403, "user lookup needs support"

    desk = Desk(client)
    await desk.sign_in(officer.phone)
    page = await desk.get(url)
    assert 'id="form-accept"' in page.text
    assert (await desk.get("/console/admin")).status_code == 403
    assert (await desk.post(f"{url}/deny", {"reason": "x"}, token=False)).status_code == 403
    assert (await desk.get("/console/officer/verify")).status_code == 200
    unknown = await desk.post(
        "/console/officer/verify",
        {
            "phone": "0905999999",
            "cccd": "046090000123",
            "full_name": "Lê Thị Hoa",
            "date_of_birth": "1990-01-02",
        },
    )
    assert unknown.status_code in (404, 422), "the identity service's answer, shown on the form"
    assert 'id="v-phone"' in unknown.text
    assert (await support_desk.get("/console/officer/verify")).status_code == 403, (
        "desk verification: officers"
    )
    accepted = await desk.post(f"{url}/accept", {"note": "Đủ giấy tờ"})
    assert accepted.status_code == 303
    assert 'data-status="new"' in (await desk.get(url)).text
    await desk.post(f"{url}/transfer", {"note": ""})
    refused = await desk.get(url)
    assert '<p class="flash error">' in refused.text, "the service's refusal is shown (no next agency)"
    assert 'data-status="new"' in refused.text
    await desk.post(f"{url}/process", {})
    await desk.post(f"{url}/request-supplement", {"reason": "Thiếu bản sao CCCD của người đi khai"})
    waiting = await desk.get(url)
    assert 'data-status="waiting"' in waiting.text
    assert "Thiếu bản sao CCCD" in waiting.text
    assert 'id="form-stop"' in waiting.text
    await desk.post(f"{url}/stop", {"reason": ""})
    assert 'data-status="waiting"' in (await desk.get(url)).text, "stopping needs a reason"
    await desk.post(f"{url}/stop", {"reason": "Không đủ điều kiện"})
    assert 'data-status="unresolved"' in (await desk.get(url)).text

    # Support locks the officer's account: the officer's console session ends on the next request.
    await support_desk.get(f"/console/admin/users?q={officer.user_id}")
    locked = await support_desk.post(f"/console/admin/users/{officer.user_id}/lock", {})
    assert locked.status_code == 303
    assert 'data-status="locked"' in (await support_desk.get(f"/console/admin/users?q={officer.phone}")).text
    ended = await desk.get(url)
    assert ended.status_code == 303
    assert ended.headers["location"].startswith("/console/sign-in")
    own = await support_desk.post(f"/console/admin/users/{support.user_id}/lock", {})
    assert own.status_code == 303
    assert "Không tự khóa" in (await support_desk.get("/console/admin/users?q=" + str(uuid.uuid4()))).text


def test_every_word_the_templates_use_exists_in_both_languages() -> None:
    used: set[str] = set()
    for template in TEMPLATES.rglob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_]+)["']\s*\)""", template.read_text()))
    used |= {"f_" + f for f in ("all", "receiving", "new", "processing", "waiting", "due_soon", "overdue")}
    used |= {"accept", "deny", "process", "transfer", "request_supplement", "set_fee", "approve", "stop"}
    used |= {"u_" + s for s in ("active", "locked", "closed")}
    used |= {"x_" + s for s in ("open", "proposed", "resolved", "closed", "all")}
    used |= {p + s for p in ("m_", "m_do_") for s in ("pending", "approved", "rejected", "suspended")} - {
        "m_do_pending",
        "m_do_approved",
        "m_do_rejected",
        "m_do_suspended",
    }
    used |= {"m_do_" + a for a in ("approve", "reject", "suspend", "reinstate")}
    missing = sorted(k for k in used if k not in WORDS or not all(WORDS[k]))
    assert not missing, missing


async def test_support_reviews_merchants_over_the_merchants_module(client: AsyncTestClient[Litestar]) -> None:
    """The installed merchant desk is the merchants module's: what the console decides, the API shows."""

    async def register(owner_headers: dict[str, str], name: str, tax_code: str) -> str:
        created = await client.post(
            "/api/v1/merchants",
            json={
                "name": name,
                "tax_code": tax_code,
                "mcc": "5812",
                "settlement_bank_bin": "970436",
                "settlement_account_number": "0041000123456",
                "settlement_account_name": "TRAN THI XUAN",
                "stores": [{"code": "QUAY-1", "name": "Quầy chính", "address": "11 Lý Thường Kiệt, Huế"}],
            },
            headers={**owner_headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    owner = await make_user(client, full_name="Trần Thị Xuân")
    other = await make_user(client, full_name="Lê Văn Hến")
    che = await register(owner.headers, "Quán Chè Hẻm", "3300101234-001")
    hen = await register(other.headers, "Cơm Hến Bà Hoa", "3300105678")
    support_user = await make_user(client, roles=("admin",), duties=("support",))
    finance = Desk(client)
    await finance.sign_in((await make_user(client, roles=("admin",), duties=("finance",))).phone)
    assert (await finance.get("/console/admin/merchants")).status_code == 403, "support duty, as the API"

    support = Desk(client)
    await support.sign_in(support_user.phone)

    async def acceptance_points() -> str:
        found = re.search(r'id="fig-acceptance">([^<]*)<', (await support.get("/console/admin")).text)
        assert found is not None
        return found.group(1)

    assert await acceptance_points() == "0", "a pending merchant's store takes no payment"
    pending = await support.get("/console/admin/merchants")
    assert pending.status_code == 200
    assert "Quán Chè Hẻm" in pending.text
    assert "Cơm Hến Bà Hoa" in pending.text
    assert owner.phone not in pending.text, "the owner's phone is masked"
    found = await support.get("/console/admin/merchants?q=3300101234-001")  # a branch code as typed
    assert "Quán Chè Hẻm" in found.text
    assert "Cơm Hến Bà Hoa" not in found.text
    assert "Cơm Hến Bà Hoa" in (await support.get(f"/console/admin/merchants?q={hen}")).text

    # Rejecting needs a reason (the module's rule): nothing changes without one
    assert (await support.post(f"/console/admin/merchants/{hen}/reject", {"reason": ""})).status_code == 303
    assert 'data-status="pending"' in (await support.get(f"/console/admin/merchants?q={hen}")).text
    await support.post(f"/console/admin/merchants/{hen}/reject", {"reason": "Mã số thuế không khớp"})
    assert (await support.post(f"/console/admin/merchants/{che}/approve", {})).status_code == 303
    assert 'data-status="approved"' in (await support.get(f"/console/admin/merchants?q={che}")).text
    assert await acceptance_points() == "1"

    # The API sees the same decisions
    async def listed(status: str) -> list[str]:
        response = await client.get(
            "/api/v1/admin/merchants", params={"status": status}, headers=support_user.headers
        )
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()]

    assert await listed("approved") == [che]
    assert await listed("rejected") == [hen]
    assert await listed("pending") == []
    mine = await client.get(f"/api/v1/merchants/{che}", headers=owner.headers)
    assert mine.json()["status"] == "approved"
    # Suspended: its store stops counting as an acceptance point
    await support.get(f"/console/admin/merchants?q={che}")
    await support.post(f"/console/admin/merchants/{che}/suspend", {"reason": "Khách phản ánh nhiều lần"})
    assert await listed("suspended") == [che]
    assert await acceptance_points() == "0"
