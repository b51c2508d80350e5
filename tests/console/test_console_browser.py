"""The console in a real browser (issue 13, Must show): headless Debian chromium driven by Playwright, against
the app served by granian on a free port, on a SQLite database seeded with the demo data (`hue demo seed`).

- an officer takes the demo dossier from intake to approval (accept, start processing, approve with the
  result document) and the timeline shows each step;
- an officer cannot open admin pages;
- a forged form post without the CSRF token is refused and changes nothing;
- an admin signs in, the dashboard renders its charts, and the audit chain verifies; support tools (user
  lookup with lock/unlock, dead letters with retry) work from the keyboard and the mouse;
- a finance admin resolves a reconciliation exception by proposing a correcting entry, a second finance
  admin approves it (the first one's own approval is refused), and the dashboard renders its charts.

Screenshots of the main pages go to ``var/test-artifacts/console/`` (gitignored). The browser is Debian's
``/usr/bin/chromium`` (``make install`` installs it); Playwright's own browser downloads are never used.
Without chromium these tests are skipped and say why.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.migrate import upgrade
from app.core.settings import load_settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "console"
RESULT_PDF = (
    b"%PDF-1.4\n% Giay khai sinh (ket qua) - test\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF\n"
)

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (make install installs it with "
        "apt-get when it can); the console's browser tests need it",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency (make install)")


@dataclass
class Server:
    base: str
    creds: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(env: dict[str, str]) -> dict[str, Any]:
    """Migrate, load the demo data, and leave one dead letter in the outbox."""
    from app.core.db import Database
    from app.core.outbox import Dispatcher, HandlerRegistry, enqueue
    from app.demo import seed_demo

    settings = load_settings(env)
    upgrade(settings.database_url)

    async def run() -> dict[str, Any]:
        creds = await seed_demo(settings)

        async def down(_envelope: Any) -> None:
            raise ConnectionError("biller unreachable")

        db = Database(settings)
        try:
            handlers = HandlerRegistry()
            handlers.register("test.console_dead", down, max_attempts=1)
            async with db.transaction() as session:
                await enqueue(session, "test.console_dead", {"bill": 1})
            dispatcher = Dispatcher(db, handlers=handlers)
            while await dispatcher.dispatch_once():
                pass
        finally:
            await db.dispose()
        return creds

    return asyncio.run(run())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    var = tmp_path_factory.mktemp("console-var")
    port = _free_port()
    env = {
        "APP_ENV": "test",
        "VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite+aiosqlite:///{var}/hue.db",
        "RUN_WORKER_IN_PROCESS": "false",
        "LOG_LEVEL": "WARNING",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    creds = _seed(env)
    hue = Path(sys.executable).parent / "hue"
    log = (var / "server.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [str(hue), "serve"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start: " + (var / "server.log").read_text()[-2000:])
            time.sleep(0.2)
        yield Server(base, creds, env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _sign_in(browser: Any, server: Server, who: str) -> Any:
    person = server.creds[who]
    context = browser.new_context(
        base_url=server.base, viewport={"width": 1280, "height": 900}, locale="vi-VN"
    )
    page = context.new_page()
    page.goto("/console/")
    assert "/console/sign-in" in page.url, "an anonymous visitor is sent to the sign-in page"
    page.get_by_label("Số điện thoại").fill(person["phone"])
    page.get_by_label("Mật khẩu").fill(person["password"])
    page.get_by_label("Mật khẩu").press("Enter")
    page.wait_for_load_state()
    return page


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_officer_takes_a_dossier_from_intake_to_approval(browser: Any, server: Server) -> None:
    dossier = server.creds["dossiers"]["demo_dossier"]
    page = _sign_in(browser, server, "officer")
    assert page.url.endswith("/console/officer/dossiers")
    assert page.locator("html").get_attribute("lang") == "vi"
    _shot(page, "officer-queue")

    # The queue, filtered to what awaits intake (the filter works through htmx and without it).
    page.get_by_label("Lọc").select_option("receiving")
    row = page.locator("#queue-table tbody tr", has_text=dossier["code"])
    row.wait_for()
    assert "Mới đăng ký" in row.inner_text()
    row.get_by_role("link", name=dossier["code"]).click()
    page.wait_for_url(re.compile(r"/console/officer/dossiers/[0-9a-f-]{36}$"))
    assert page.locator("#dossier-status").get_attribute("data-status") == "receiving"
    assert page.locator("table").first.locator("tbody tr").count() >= 1, "the citizen's documents are listed"
    _shot(page, "officer-dossier-receiving")

    # Documents can be downloaded.
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Tải về")).first.click()
    assert download.value.suggested_filename.endswith(".pdf")

    # Accept at intake (no fee is collected first for a birth registration on time): -> new.
    page.locator("#accept-note").fill("Đủ giấy tờ")
    page.locator("#do-accept").click()
    page.wait_for_load_state()
    assert page.locator(".flash.ok").count() == 1
    assert page.locator("#dossier-status").get_attribute("data-status") == "new"

    # Start processing: -> processing.
    page.locator("#do-process").click()
    page.wait_for_load_state()
    assert page.locator("#dossier-status").get_attribute("data-status") == "processing"

    # Approve with the result document: -> releasing.
    page.locator("#approve-file").set_input_files(
        {"name": "giay-khai-sinh.pdf", "mimeType": "application/pdf", "buffer": RESULT_PDF}
    )
    page.locator("#approve-note").fill("Đã cấp giấy khai sinh")
    page.locator("#do-approve").click()
    page.wait_for_load_state()
    assert page.locator("#dossier-status").get_attribute("data-status") == "releasing"
    timeline = page.locator("#timeline tbody").inner_text()
    for step in ("receiving → new", "new → processing", "processing → releasing"):
        assert step in timeline, timeline
    assert "giay-khai-sinh.pdf" in page.content(), "the result is among the documents"
    _shot(page, "officer-dossier-approved")

    # Return the result at the desk: releasing -> done, once the dossier-results module is merged.
    if importlib.util.find_spec("app.services.results") is not None:
        page.locator("#do-return_result").click()
        page.wait_for_load_state()
        assert page.locator("#dossier-status").get_attribute("data-status") == "done"
        _shot(page, "officer-dossier-done")
    else:
        assert page.locator("#do-return_result").is_disabled(), "offered, but not before its module exists"
    page.context.close()


def test_an_officer_cannot_open_admin_pages(browser: Any, server: Server) -> None:
    page = _sign_in(browser, server, "officer")
    for path in ("/console/admin", "/console/admin/users", "/console/admin/audit", "/console/admin/outbox"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 403, path
        assert "không có quyền" in page.locator("main").inner_text()
    assert page.get_by_role("link", name="Tổng quan").count() == 0, "no admin entries in an officer's menu"
    _shot(page, "officer-forbidden")
    page.context.close()


def test_a_forged_post_without_the_csrf_token_is_refused(browser: Any, server: Server) -> None:
    page = _sign_in(browser, server, "officer")
    dossier_url = (
        page.locator("#queue-table a").first.get_attribute("href")
        if page.locator("#queue-table a").count()
        else None
    )
    assert dossier_url is not None
    page.goto(dossier_url)
    before = page.locator("#dossier-status").get_attribute("data-status")

    # The browser sends the officer's session cookie, but the form carries no (or a wrong) token.
    forged = page.context.request.post(dossier_url + "/stop", form={"reason": "forged"}, max_redirects=0)
    assert forged.status == 403
    wrong = page.context.request.post(
        dossier_url + "/stop", form={"reason": "forged", "csrf_token": "not-the-token"}, max_redirects=0
    )
    assert wrong.status == 403

    page.reload()
    assert page.locator("#dossier-status").get_attribute("data-status") == before, "nothing changed"
    assert "forged" not in page.locator("#timeline").inner_text()
    page.context.close()


def test_an_admin_signs_in_and_the_dashboard_renders_its_charts(browser: Any, server: Server) -> None:
    page = _sign_in(browser, server, "admin")
    assert page.url.endswith("/console/admin")
    for chart in ("#chart-dossiers", "#chart-users"):
        svg = page.locator(f"svg{chart}")
        assert svg.is_visible()
        assert svg.get_attribute("role") == "img"
    bars = page.locator("#chart-dossiers g.bar")
    assert bars.count() == 10, "one bar per portal status"
    assert int(page.locator("#fig-users").inner_text().replace(".", "")) >= 4
    _shot(page, "admin-dashboard")

    # Keyboard: the first Tab lands on the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"

    # English on the switch; the lang attribute follows.
    page.locator("#switch-lang").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    _shot(page, "admin-dashboard-en")

    # The audit trail: verify the chain (htmx swaps the report in).
    page.get_by_role("link", name="Audit trail").click()
    page.locator("#verify-chain").click()
    page.locator("#verify-report").wait_for()
    assert "intact" in page.locator("#verify-report").inner_text()
    assert page.locator("#audit-rows tbody tr").count() > 0
    _shot(page, "admin-audit")

    # Support: look the citizen up, lock, unlock.
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Phone number or account id").fill(server.creds["citizen"]["phone"])
    page.get_by_label("Phone number or account id").press("Enter")
    page.wait_for_load_state()
    assert page.locator("#account-status").get_attribute("data-status") == "active"
    page.locator("#do-lock").click()
    page.wait_for_load_state()
    assert page.locator("#account-status").get_attribute("data-status") == "locked"
    _shot(page, "admin-user-locked")
    page.locator("#do-unlock").click()
    page.wait_for_load_state()
    assert page.locator("#account-status").get_attribute("data-status") == "active"

    # Dead letters: one is waiting; retry puts it back in the queue.
    page.get_by_role("link", name="Dead letters").click()
    assert page.locator("#dead-letters tbody tr").count() == 1
    _shot(page, "admin-outbox")
    page.locator("#dead-letters button").first.click()
    page.wait_for_load_state()
    assert page.locator("#no-dead").is_visible()

    page.locator("#sign-out").click()
    page.wait_for_load_state()
    assert "/console/sign-in" in page.url
    assert page.goto("/console/admin") is not None
    assert "/console/sign-in" in page.url, "signed out means signed out"
    page.context.close()


def test_finance_resolves_a_reconciliation_exception_under_four_eyes_and_the_dashboard_charts(
    browser: Any, server: Server
) -> None:
    """The demo's reconciliation of today found a card charge the ledger never booked (200,000 đồng, fee
    2,000): the maker proposes the correcting entry, the maker's own approval is refused, the checker
    approves it, and the dashboard renders its charts (from the reports' headline figures)."""
    maker = _sign_in(browser, server, "finance_maker")
    maker.goto("/console/admin/recon")
    row = maker.locator("#exceptions tbody tr", has_text="ch_demo_unknown")
    assert "missing_in_ledger" in row.inner_text()
    _shot(maker, "finance-recon-exceptions")
    row.get_by_role("link").first.click()
    maker.wait_for_url(re.compile(r"/console/admin/recon/\d+$"))
    exception_url = maker.url
    assert maker.locator("#exception-status").get_attribute("data-status") == "open"

    # The maker proposes: the gateway holds the net, the fee is an expense, the citizen is not known yet.
    maker.get_by_label("Diễn giải").fill("Khoản thu thẻ chưa ghi sổ, chờ xác định người nạp")
    maker.get_by_label("Các dòng bút toán").fill(
        "gateway_clearing -198000\ngateway_fees -2000\nsuspense 200000"
    )
    maker.locator("#do-propose").click()
    maker.wait_for_load_state()
    assert maker.locator("#exception-status").get_attribute("data-status") == "proposed"
    assert maker.locator("#four-eyes").is_visible(), "the maker is told a second admin must approve"
    proposal = maker.locator("#proposal").inner_text()
    assert "suspense" in proposal
    assert "gateway_clearing" in proposal
    _shot(maker, "finance-recon-proposed")

    # The same admin cannot approve it: refused, said so, nothing posted.
    maker.locator("#do-approve").click()
    maker.wait_for_load_state()
    assert maker.locator(".flash.error").count() == 1
    assert "quản trị viên tài chính khác" in maker.locator(".flash.error").inner_text()
    assert maker.locator("#exception-status").get_attribute("data-status") == "proposed"
    _shot(maker, "finance-recon-self-approval-refused")

    # A second finance admin approves it: the correcting entry is posted and the exception resolved.
    checker = _sign_in(browser, server, "finance_checker")
    checker.goto(exception_url)
    assert checker.locator("#four-eyes").count() == 0
    checker.locator("#do-approve").click()
    checker.wait_for_load_state()
    assert checker.locator(".flash.ok").count() == 1
    assert checker.locator("#exception-status").get_attribute("data-status") == "resolved"
    _shot(checker, "finance-recon-resolved")

    # The audit trail has every step, the refused self-approval included.
    async def audit_actions() -> list[tuple[str, str]]:
        from sqlalchemy import select

        from app.core.audit_models import AuditEvent
        from app.core.db import Database

        db = Database(load_settings(server.env))
        try:
            async with db.read() as session:
                rows = await session.execute(
                    select(AuditEvent.action, AuditEvent.outcome)
                    .where(AuditEvent.object_type == "recon_exception")
                    .order_by(AuditEvent.seq)
                )
                return [(str(a), str(o)) for a, o in rows]
        finally:
            await db.dispose()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API runs an event loop in this thread
        actions = pool.submit(asyncio.run, audit_actions()).result()
    assert actions == [
        ("recon.correction_proposed", "success"),
        ("recon.correction_self_approval", "denied"),
        ("recon.correction_approved", "success"),
    ]

    # The dashboard renders its charts, the month's headline figures among them.
    checker.goto("/console/admin")
    for chart in ("#chart-dossiers", "#chart-users", "#chart-timeliness"):
        svg = checker.locator(f"svg{chart}")
        assert svg.is_visible(), chart
        assert svg.get_attribute("role") == "img"
    assert checker.locator("#chart-dossiers g.bar").count() == 10
    assert checker.locator("#chart-timeliness g.bar").count() == 3
    assert checker.locator("#fig-acceptance").is_visible()
    _shot(checker, "finance-dashboard")
    maker.context.close()
    checker.context.close()
