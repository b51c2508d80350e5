"""Reconciliation of a test day: a synthetic ledger, the gateway's report, the billers' confirmations and the
guarantee account's statement, with one planted case of each kind of mismatch.

Reference convention assumed for top-ups (the card-gateway module is not merged yet): the gateway's
payment-intent / charge id is the journal entry's ``reference``; the entry debits the gateway-clearing mirror
by the gross, credits the wallet, and books the gateway's fee (debit fees, credit clearing) in the same entry.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from app.admin import corrections
from app.admin.corrections import ProposedPosting
from app.admin.models import ReconException
from app.admin.reconciliation import (
    BankLine,
    BankStatement,
    BillerLine,
    GatewayLine,
    day_bounds,
    reconcile_day,
)
from app.bills.models import Bill, BillPayment, BillPaymentItem
from app.bills.payments import payable_account
from app.bills.schemas import BillerIn, CustomerInput, SettlementAccount
from app.bills.service import put_biller
from app.core.audit import verify_chain
from app.core.db import Database, new_id, utcnow
from app.core.errors import AppError
from app.core.scheduler import LOCAL_TZ
from app.core.security import Caller
from app.core.settings import Settings
from app.wallet import ledger
from app.wallet.ledger import AccountType, Entry, credit, debit

CLEARING = ledger.system_account(AccountType.GATEWAY_CLEARING)
FEES = ledger.system_account(AccountType.GATEWAY_FEES)
BANK = ledger.system_account(AccountType.GUARANTEE_BANK)
SUSPENSE = ledger.system_account(AccountType.SUSPENSE)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    try:
        yield database
    finally:
        await database.dispose()


def finance_admin() -> Caller:
    return Caller(
        user_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        roles=frozenset({"admin"}),
        duties=frozenset({"finance"}),
    )


def topup(wallet: uuid.UUID, reference: str, gross: int, fee: int) -> Entry:
    """A card top-up as the convention books it: gross to the wallet, the gateway's fee as an expense."""
    postings = [debit(CLEARING, gross), credit(wallet, gross)]
    if fee:
        postings += [debit(FEES, fee), credit(CLEARING, fee)]
    return Entry(kind="topup", postings=postings, reference=reference)


def payout(reference: str, amount: int) -> Entry:
    return Entry(
        kind="gateway_payout", postings=[debit(BANK, amount), credit(CLEARING, amount)], reference=reference
    )


def line(txn: str, source: str, amount: int, fee: int = 0, kind: str = "charge") -> GatewayLine:
    created = int(utcnow().timestamp())
    return GatewayLine(txn, amount, fee, amount - fee, "vnd", kind, source, created, "available", kind)


async def build_test_day(db: Database) -> dict[str, object]:
    """The ledger of the day, and the three outside reports (see the module docstring for the plants)."""
    biller, _ = await put_biller(
        db,
        "RECON_WATER",
        BillerIn(
            name="Cấp nước Huế (test)",
            category="water",
            presentment="batch",
            amount_rule="exact",
            customer_input=CustomerInput(
                label_vi="Mã KH",
                label_en="Customer",
                pattern=r"^W[0-9]{6}$",
                min_length=7,
                max_length=7,
                example="W000001",
            ),
            settlement=SettlementAccount(
                bank_bin="970418", account_number="5510000000011", account_name="HUEWACO"
            ),
        ),
        production=False,
    )
    async with db.transaction() as session:
        alice = await ledger.ensure_account(session, AccountType.CITIZEN_WALLET, uuid.uuid4())
        binh = await ledger.ensure_account(session, AccountType.CITIZEN_WALLET, uuid.uuid4())
        await ledger.post(
            session,
            Entry(
                kind="capital",
                postings=[debit(BANK, 2_000_000), credit(SUSPENSE, 2_000_000)],
                reference="cap_1",
            ),
        )
        await ledger.post(session, topup(alice, "pi_ok1", 500_000, 5_000))
        await ledger.post(session, topup(binh, "pi_ok2", 300_000, 3_000))
        await ledger.post(session, topup(alice, "pi_fee", 200_000, 2_000))  # the gateway says 2,500
        await ledger.post(session, topup(alice, "pi_dup", 100_000, 1_000))  # listed twice by the gateway
        await ledger.post(session, topup(binh, "pi_late", 80_000, 800))  # not in the gateway's report
        reversed_topup = await ledger.post(session, topup(binh, "pi_void", 50_000, 0))
        await ledger.reverse(session, reversed_topup.entry_id, description="top-up cancelled")
        await ledger.post(session, payout("po_1", 700_000))
        await ledger.post(session, payout("po_2", 200_000))  # not on the bank statement yet: in transit
        # a bill payment of two water bills: the first confirmed, the second refused by the biller
        payable = await payable_account(session, biller)
        posted = await ledger.post(
            session,
            Entry(
                kind="bill_payment",
                postings=[debit(alice, 90_000), credit(payable, 60_000), credit(payable, 30_000)],
                reference="HP-RECON-1",
            ),
        )
        payment = BillPayment(
            id=new_id(),
            payer_id=uuid.uuid4(),
            reference="HP-RECON-1",
            total=90_000,
            entry_id=posted.entry_id,
            paid_at=posted.created_at,
        )
        session.add(payment)
        for n, (amount, status) in enumerate([(60_000, "confirmed"), (30_000, "paid")], start=1):
            bill = Bill(
                id=new_id(),
                biller_id=biller.id,
                customer_code=f"W00000{n}",
                external_id=f"RECON-{n}",
                period="2026-10",
                amount=amount,
                status="paid",
                source="batch",
            )
            session.add(bill)
            await session.flush()
            session.add(
                BillPaymentItem(
                    id=new_id(),
                    payment_id=payment.id,
                    bill_id=bill.id,
                    biller_id=biller.id,
                    amount=amount,
                    payable_account_id=payable,
                    status=status,
                )
            )
    gateway = [
        line("txn_1", "pi_ok1", 500_000, 5_000),
        line("txn_2", "pi_ok2", 300_000, 3_000),
        line("txn_3", "pi_fee", 200_000, 2_500),
        line("txn_4a", "pi_dup", 100_000, 1_000),
        line("txn_4b", "pi_dup", 100_000, 1_000),
        line("txn_5", "pi_ghost", 150_000, 1_500),
        line("txn_6", "po_1", -700_000, 0, "payout"),
        line("txn_7", "po_2", -200_000, 0, "payout"),
    ]
    billers = [
        BillerLine("RECON_WATER", "HP-RECON-1-1", 60_000, "confirmed", "HUEWACO-9001"),
        BillerLine("RECON_WATER", "HP-RECON-1-2", 30_000, "refused", ""),
    ]
    bank = BankStatement(
        day=datetime.now(LOCAL_TZ).date(),
        closing_balance=2_700_000,
        lines=[BankLine("cap_1", 2_000_000, "Vốn"), BankLine("po_1", 700_000, "Stripe payout")],
    )
    return {"gateway": gateway, "billers": billers, "bank": bank}


async def test_a_test_day_finds_exactly_the_planted_mismatches_and_corrections_balance_the_books(
    db: Database,
) -> None:
    reports = await build_test_day(db)
    today = datetime.now(LOCAL_TZ).date()

    async with db.transaction() as session:
        result = await reconcile_day(
            session,
            today,
            gateway_lines=reports["gateway"],  # type: ignore[arg-type]
            biller_lines=reports["billers"],  # type: ignore[arg-type]
            bank_statement=reports["bank"],  # type: ignore[arg-type]
        )
    run = result.run
    async with db.read() as session:
        found = {(e.source, e.kind, e.key): e for e in (await session.scalars(select(ReconException))).all()}
    assert set(found) == {
        ("gateway", "missing_in_ledger", "txn_5"),
        ("gateway", "missing_at_gateway", "pi_late"),
        ("gateway", "amount_mismatch", "txn_3"),
        ("gateway", "duplicate", "txn_4b"),
        ("biller", "status_mismatch", "HP-RECON-1-2"),
    }
    mismatch = found[("gateway", "amount_mismatch", "txn_3")]
    assert (mismatch.ledger_gross, mismatch.ledger_fee, mismatch.ledger_net) == (200_000, 2_000, 198_000)
    assert (mismatch.external_gross, mismatch.external_fee, mismatch.external_net) == (
        200_000,
        2_500,
        197_500,
    )
    assert run.counts["gateway"]["matched"] == 5  # pi_ok1, pi_ok2, pi_dup (first line), po_1, po_2
    assert run.counts["gateway"]["lines"] == 8
    assert run.counts["biller"]["matched"] == 1
    bank = run.checks["bank"]
    assert bank["explained"]
    assert bank["covered"]
    assert bank["in_transit"] == [{"reference": "po_2", "amount": 200_000}]
    assert bank["wallet_balances"] == 500_000 + 200_000 + 100_000 - 90_000 + 300_000 + 80_000
    assert run.checks["books"]["ok"]
    assert run.checks["seal"]["state"] == "day_open"
    assert run.status == "attention"

    # resolve: corrections under maker-checker, the rest closed with a note
    maker, checker = finance_admin(), finance_admin()
    ghost = found[("gateway", "missing_in_ledger", "txn_5")].id
    fee = mismatch.id
    async with db.transaction() as session:
        await corrections.propose(
            session,
            ghost,
            maker,
            description="Unclaimed card payment to suspense",
            postings=[
                ProposedPosting("gateway_clearing", -148_500),
                ProposedPosting("gateway_fees", -1_500),
                ProposedPosting("suspense", 150_000),
            ],
        )
        await corrections.propose(
            session,
            fee,
            maker,
            description="Gateway fee difference",
            postings=[ProposedPosting("gateway_fees", -500), ProposedPosting("gateway_clearing", 500)],
        )
    with pytest.raises(AppError) as refused:
        async with db.transaction() as session:
            await corrections.approve(session, ghost, maker)
    assert refused.value.kind.code == "recon_four_eyes"
    async with db.transaction() as session:
        await corrections.approve(session, ghost, checker)
        await corrections.approve(session, fee, checker)
        for key in [
            ("gateway", "duplicate", "txn_4b"),
            ("gateway", "missing_at_gateway", "pi_late"),
            ("biller", "status_mismatch", "HP-RECON-1-2"),
        ]:
            await corrections.close(session, found[key].id, checker, note="explained")

    # the books balance, and the same day reconciled again is balanced with nothing new
    async with db.transaction() as session:
        again = await reconcile_day(
            session,
            today,
            gateway_lines=reports["gateway"],  # type: ignore[arg-type]
            biller_lines=reports["billers"],  # type: ignore[arg-type]
            bank_statement=reports["bank"],  # type: ignore[arg-type]
        )
    assert again.exceptions == 0
    assert again.run.checks["books"]["ok"]
    assert again.run.counts["gateway"]["matched"] == 7  # the two corrected lines now match
    assert again.run.status == "balanced"
    async with db.read() as session:
        assert (await ledger.check_books(session)).ok
        assert await ledger.balance(session, SUSPENSE) == ledger.Balance(SUSPENSE, 2_150_000, 0)

    # after the day: the journal is sealed once; a changed entry of the sealed day is detected
    tomorrow = day_bounds(today)[1] + timedelta(hours=3)
    async with db.transaction() as session:
        sealed = await reconcile_day(session, today, now=tomorrow, check_books=False)
    assert sealed.run.checks["seal"]["state"] == "sealed"
    async with db.transaction() as session:
        intact = await reconcile_day(session, today, now=tomorrow, check_books=False)
    assert intact.run.checks["seal"]["state"] == "intact"
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE ledger_entries SET description = 'edited' WHERE reference = 'pi_ok1'")
        )
    async with db.transaction() as session:
        changed = await reconcile_day(session, today, now=tomorrow, check_books=False)
    assert changed.run.checks["seal"]["state"] == "changed"
    assert changed.run.status == "attention"
    async with db.read() as session:
        assert (await verify_chain(session, keys=db.settings.audit_keys)).ok
        assert datetime.now(UTC) < tomorrow


class FakeCardGateway:
    """Stands in for ``app.wallet.gateway.CardGateway``: Stripe's balance-transaction list, page by page."""

    def __init__(self, items: list[dict[str, object]]) -> None:
        self.items = items
        self.calls: list[tuple[int, int, int, str | None]] = []

    async def list_balance_transactions(
        self, created_gte: int, created_lt: int, limit: int = 100, starting_after: str | None = None
    ) -> dict[str, object]:
        self.calls.append((created_gte, created_lt, limit, starting_after))
        chosen = [i for i in self.items if created_gte <= int(i["created"]) < created_lt]  # type: ignore[call-overload]
        if starting_after is not None:
            chosen = chosen[[i["id"] for i in chosen].index(starting_after) + 1 :]
        return {"object": "list", "data": chosen[:limit], "has_more": len(chosen) > limit}


async def test_the_nightly_run_fetches_the_report_through_the_gateway_page_by_page(db: Database) -> None:
    from app.admin import reconciliation
    from app.core.scheduler import JobContext

    async with db.transaction() as session:
        wallet = await ledger.ensure_account(session, AccountType.CITIZEN_WALLET, uuid.uuid4())
        for n in range(5):
            await ledger.post(session, topup(wallet, f"pi_night{n}", 10_000 * (n + 1), 100))
        voided = await ledger.post(session, topup(wallet, "pi_voided", 40_000, 0))
        await ledger.reverse(session, voided.entry_id)
    now = int(utcnow().timestamp())
    items: list[dict[str, object]] = [
        {
            "id": f"txn_n{n}",
            "object": "balance_transaction",
            "amount": 10_000 * (n + 1),
            "fee": 100,
            "net": 10_000 * (n + 1) - 100,
            "currency": "vnd",
            "type": "charge",
            "source": f"pi_night{n}",
            "created": now,
            "status": "available" if n else "pending",
            "reporting_category": "charge",
        }
        for n in range(5)
    ]
    items.append(
        {
            "id": "txn_void",
            "amount": 40_000,
            "fee": 0,
            "net": 40_000,
            "currency": "vnd",
            "type": "charge",
            "source": "pi_voided",
            "created": now,
            "status": "available",
            "reporting_category": "charge",
        }
    )
    items.append(  # another day: never asked for
        {
            "id": "txn_old",
            "amount": 1,
            "fee": 0,
            "net": 1,
            "currency": "vnd",
            "type": "charge",
            "source": "pi_old",
            "created": now - 3 * 86400,
            "status": "available",
            "reporting_category": "charge",
        }
    )
    gateway = FakeCardGateway(items)
    reconciliation.install_card_gateway(gateway)
    try:
        today = datetime.now(LOCAL_TZ).date()
        tomorrow_local = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=LOCAL_TZ)
        ctx = JobContext(
            name="recon.daily",
            period_key=(today + timedelta(days=1)).isoformat(),
            scheduled_for=(tomorrow_local + timedelta(hours=2, minutes=30)).astimezone(UTC),
            db=db,
            settings=db.settings,
        )
        await reconciliation.reconcile_yesterday(ctx)
    finally:
        reconciliation.install_card_gateway(None)
    start, end = day_bounds(today)
    assert [c[3] for c in gateway.calls] == [None]  # 6 lines fit one page of 100
    assert gateway.calls[0][:2] == (int(start.timestamp()), int(end.timestamp()))
    async with db.read() as session:
        found = {(e.kind, e.key) for e in (await session.scalars(select(ReconException))).all()}
    assert found == {("status_mismatch", "txn_void")}  # settled by the gateway, cancelled in our books

    pages = FakeCardGateway(items)
    lines = [line async for line in reconciliation.iter_balance_transactions(pages, 0, 2**40, page_size=2)]
    assert [line.id for line in lines] == [str(i["id"]) for i in items]
    assert [c[3] for c in pages.calls] == [None, "txn_n1", "txn_n3", "txn_void"]
