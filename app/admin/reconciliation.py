"""Three-way reconciliation of one business day (Asia/Ho_Chi_Minh), and the checks that run with it.

What is compared with the ledger, each line classified ``matched``, ``missing_in_ledger``,
``missing_at_gateway`` (missing at the other side: the gateway, the biller), ``amount_mismatch``,
``duplicate`` or ``status_mismatch``; every non-match becomes a :class:`ReconException` (unique per day,
source, kind and key, so reconciling a day again repeats nothing already known):

- **gateway**: the card gateway's settlement report, the Stripe ``balance_transactions`` list shape, fetched
  through a :class:`BalanceTransactionSource` or uploaded as the Stripe CSV export (``id, amount, fee, net,
  currency, type, source, created, status, reporting_category``). A line is matched to the ledger by its
  ``source`` (the charge / payment-intent / refund / payout id), which is the **journal entry's reference**
  (``Entry.reference``) of the entry that booked it. The entry's postings to the gateway-clearing mirror and
  to the gateway-fees expense give the ledger's net and fee (gross = net + fee): a top-up of 100,000 đồng
  with a 2,000 đồng fee is, as ``app.wallet.topup`` books it, one entry ``debit clearing 98,000 (the net);
  debit fees 2,000; credit wallet 100,000`` whose reference is the charge id ``ch_...`` (the line's
  ``source``), a refund ``credit clearing; debit wallet`` (``re_...``), a payout ``debit guarantee bank;
  credit clearing`` (``po_...``, booked by the reconciliation itself when the gateway's API reports it:
  :func:`_book_payouts`). Gross, fee and net are each compared. The
  lines are streamed into a temporary table (``COPY`` on PostgreSQL) and matched in one SQL statement, so
  memory stays flat however long the report is.
- **biller**: the billers' confirmations (uploaded CSV ``biller, reference, amount, status,
  biller_reference``; by default the answers the connectors recorded) against what the ledger paid each
  biller: the items of the day's bill payments, reference ``{payment reference}-{n}``.
- **bank**: the guarantee account's statement (uploaded CSV ``booked_on, reference, amount, description,
  balance`` or a :class:`BankStatementSource`) line by line against the ledger account that mirrors it; a
  mirror posting the bank has not booked yet is an item in transit, and the closing balances must agree
  once the items in transit are counted; wallet balances must be covered by the bank's balance.

Checks: the books (postings sum to zero, each balance equals its postings, the day's entries balanced), the
bank statement and coverage, and the day's journal sealed into the audit chain by one digest (sealed once
the day is over; a later run recomputes it, so a changed entry of a sealed day is reported).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from time import perf_counter
from typing import IO, Any, Protocol

import asyncpg
import structlog
from sqlalchemy import bindparam, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from app.admin.models import ReconException, ReconRun
from app.bills.models import Biller, BillPayment, BillPaymentItem
from app.core.audit import AuditActor, SealConflictError, record, seal_digest, sealed_digest
from app.core.db import UTCDateTime, utcnow
from app.core.errors import VALIDATION_FAILED, FieldError
from app.core.scheduler import DAILY, LOCAL_TZ, JobContext, cron, scheduled_job
from app.wallet import ledger
from app.wallet.ledger import AccountType, Posting
from app.wallet.ledger.postgres import asyncpg_connection
from app.wallet.models import LedgerAccount, LedgerBalanceDelta, LedgerEntry, LedgerPosting

__all__ = [
    "CORRECTION_KIND",
    "GATEWAY_CSV_COLUMNS",
    "KINDS",
    "PAYOUT_KIND",
    "BalanceTransactionSource",
    "BankLine",
    "BankStatement",
    "BankStatementSource",
    "BillerLine",
    "GatewayLine",
    "RunResult",
    "day_bounds",
    "install_bank_statements",
    "install_card_gateway",
    "iter_balance_transactions",
    "journal_digest",
    "parse_bank_csv",
    "parse_biller_csv",
    "parse_gateway_csv",
    "reconcile_day",
]

log = structlog.get_logger("app.admin.reconciliation")

KINDS = ("missing_in_ledger", "missing_at_gateway", "amount_mismatch", "duplicate", "status_mismatch")
"""The kinds of exception (``matched`` is the sixth outcome, and not an exception)."""
CORRECTION_KIND = "recon_correction"
"""Kind of the correcting entries; they may carry a gateway reference without counting as a duplicate."""
GATEWAY_CSV_COLUMNS = (
    "id",
    "amount",
    "fee",
    "net",
    "currency",
    "type",
    "source",
    "created",
    "status",
    "reporting_category",
)
SETTLED_STATUSES = ("available", "pending")
"""Statuses of a gateway balance transaction that agree with a booked (not reversed) entry."""
_WORK_MEM = "256MB"
"""``work_mem`` of a reconciliation's transaction on PostgreSQL (the matching sorts and hashes a report)."""
_STAGE_BATCH = 20_000
"""Lines copied per COPY (memory stays bounded by one batch)."""


# --- days -------------------------------------------------------------------------------------------------


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants where the Asia/Ho_Chi_Minh day ``day`` starts and ends."""
    start = datetime.combine(day, time(), tzinfo=LOCAL_TZ)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=LOCAL_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


# --- the outside reports ----------------------------------------------------------------------------------


class ReportError(ValueError):
    """An uploaded report that cannot be read: which line, and why."""

    def __init__(self, what: str, line: int, message: str) -> None:
        super().__init__(f"{what} line {line}: {message}")
        self.what = what
        self.line = line
        self.message = message

    def problem(self) -> Exception:
        return VALIDATION_FAILED(
            f"Tệp {self.what} không hợp lệ (dòng {self.line}): {self.message}",
            f"Invalid {self.what} file (line {self.line}): {self.message}",
            errors=[FieldError(field=self.what, source="body", message=f"line {self.line}: {self.message}")],
        )


@dataclass(frozen=True, slots=True)
class GatewayLine:
    """One Stripe balance transaction (amounts in đồng, VND being zero-decimal)."""

    id: str
    amount: int
    fee: int
    net: int
    currency: str
    type: str
    source: str
    created: int
    status: str
    reporting_category: str = ""

    @classmethod
    def from_stripe(cls, item: dict[str, Any]) -> GatewayLine:
        source = item.get("source")
        if isinstance(source, dict):  # expanded
            source = source.get("id")
        return cls(
            id=str(item["id"]),
            amount=int(item["amount"]),
            fee=int(item.get("fee") or 0),
            net=int(item["net"]),
            currency=str(item.get("currency") or "vnd"),
            type=str(item.get("type") or ""),
            source=str(source or ""),
            created=int(item.get("created") or 0),
            status=str(item.get("status") or ""),
            reporting_category=str(item.get("reporting_category") or ""),
        )


class BalanceTransactionSource(Protocol):
    """What reconciliation needs of the card gateway (``app.wallet.gateway.CardGateway`` has it)."""

    async def list_balance_transactions(
        self, created_gte: int, created_lt: int, limit: int = 100, starting_after: str | None = None
    ) -> dict[str, Any]:
        """One page, Stripe's list shape: ``{"object": "list", "data": [...], "has_more": bool}``."""
        ...


async def iter_balance_transactions(
    gateway: BalanceTransactionSource, created_gte: int, created_lt: int, *, page_size: int = 100
) -> AsyncIterator[GatewayLine]:
    """Every balance transaction created in ``[created_gte, created_lt)``, page after page."""
    starting_after: str | None = None
    while True:
        page = await gateway.list_balance_transactions(
            created_gte, created_lt, limit=page_size, starting_after=starting_after
        )
        data = page.get("data") or []
        for item in data:
            yield GatewayLine.from_stripe(item)
        if not page.get("has_more") or not data:
            return
        starting_after = str(data[-1]["id"])


def _int(value: str, what: str, line: int, column: str) -> int:
    try:
        return int(value.strip())
    except (ValueError, AttributeError):
        raise ReportError(what, line, f"{column} must be a whole number of đồng, got {value!r}") from None


def _rows(stream: IO[str], what: str, columns: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(stream)
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise ReportError(what, 1, "missing columns: " + ", ".join(missing))
    yield from enumerate(reader, start=2)


def parse_gateway_csv(stream: IO[str]) -> Iterator[GatewayLine]:
    """The lines of Stripe's balance-transaction CSV export (columns :data:`GATEWAY_CSV_COLUMNS`, any order;
    ``currency``, ``created`` and ``reporting_category`` optional). Streams: one line in memory at a time."""
    what = "gateway_report"
    reader = csv.reader(stream)
    header = next(reader, None) or []
    where = {name.strip(): index for index, name in enumerate(header)}
    missing = [c for c in ("id", "amount", "fee", "net", "type", "source", "status") if c not in where]
    if missing:
        raise ReportError(what, 1, "missing columns: " + ", ".join(missing))
    i_id, i_amount, i_fee, i_net = where["id"], where["amount"], where["fee"], where["net"]
    i_type, i_source, i_status = where["type"], where["source"], where["status"]
    i_currency, i_created, i_category = (
        where.get("currency"),
        where.get("created"),
        where.get("reporting_category"),
    )
    width = len(header)
    for n, row in enumerate(reader, start=2):
        if len(row) != width:
            if not row:
                continue
            raise ReportError(what, n, f"expected {width} fields, got {len(row)}")
        try:
            amount, fee, net = int(row[i_amount]), int(row[i_fee] or 0), int(row[i_net])
            created = int(row[i_created] or 0) if i_created is not None else 0
        except ValueError:
            raise ReportError(
                what, n, "amount, fee, net and created are whole numbers (đồng, seconds)"
            ) from None
        currency = row[i_currency].lower() if i_currency is not None and row[i_currency] else "vnd"
        if currency != "vnd":
            raise ReportError(what, n, f"currency {currency!r}: only vnd")
        if not row[i_id]:
            raise ReportError(what, n, "id is empty")
        yield GatewayLine(
            row[i_id],
            amount,
            fee,
            net,
            currency,
            row[i_type],
            row[i_source],
            created,
            row[i_status],
            row[i_category] if i_category is not None else "",
        )


@dataclass(frozen=True, slots=True)
class BillerLine:
    """One confirmation from a biller: our reference ``{payment reference}-{n}``, what it took, its answer."""

    biller: str
    reference: str
    amount: int
    status: str
    """``confirmed``, or ``refused`` / ``reversed`` (the biller did not keep the payment)."""
    biller_reference: str = ""


def parse_biller_csv(stream: IO[str]) -> list[BillerLine]:
    what = "biller_confirmations"
    lines = []
    for n, row in _rows(stream, what, ("biller", "reference", "amount", "status")):
        status = row["status"].strip().lower()
        if status not in ("confirmed", "refused", "reversed"):
            raise ReportError(what, n, "status is confirmed, refused or reversed")
        lines.append(
            BillerLine(
                biller=row["biller"].strip(),
                reference=row["reference"].strip(),
                amount=_int(row["amount"], what, n, "amount"),
                status=status,
                biller_reference=(row.get("biller_reference") or "").strip(),
            )
        )
    return lines


@dataclass(frozen=True, slots=True)
class BankLine:
    """One line of the guarantee account's statement: positive when money came into the account."""

    reference: str
    amount: int
    description: str = ""
    booked_on: date | None = None


@dataclass(frozen=True, slots=True)
class BankStatement:
    day: date
    closing_balance: int
    """The account's balance at the end of the day, as the bank states it."""
    lines: list[BankLine] = field(default_factory=list)


class BankStatementSource(Protocol):
    """Fetches the guarantee account's statement of a day from the partner bank."""

    async def statement(self, day: date) -> BankStatement | None:
        """The statement of ``day``, or None if the bank has not issued it yet."""
        ...


def parse_bank_csv(stream: IO[str], day: date) -> BankStatement:
    """A statement CSV (``booked_on, reference, amount, description, balance``: the running balance after
    each line); the last line's balance is the closing balance. A statement of a day without movement is one
    line with amount 0 carrying the balance."""
    what = "bank_statement"
    lines: list[BankLine] = []
    closing: int | None = None
    for n, row in _rows(stream, what, ("reference", "amount", "balance")):
        amount = _int(row["amount"], what, n, "amount")
        closing = _int(row["balance"], what, n, "balance")
        booked = None
        if row.get("booked_on"):
            try:
                booked = date.fromisoformat(row["booked_on"].strip())
            except ValueError:
                raise ReportError(what, n, "booked_on is YYYY-MM-DD") from None
        if amount:
            lines.append(BankLine(row["reference"].strip(), amount, row.get("description") or "", booked))
    if closing is None:
        raise ReportError(what, 1, "the statement has no line: give at least the closing balance")
    return BankStatement(day=day, closing_balance=closing, lines=lines)


# --- where a scheduled run gets its reports -------------------------------------------------------------

_card_gateway: BalanceTransactionSource | None = None
_bank_statements: BankStatementSource | None = None


def install_card_gateway(gateway: BalanceTransactionSource | None) -> None:
    """Let reconciliation fetch the gateway's settlement report (``CardGateway`` at startup)."""
    global _card_gateway
    _card_gateway = gateway


def install_bank_statements(source: BankStatementSource | None) -> None:
    """Let reconciliation fetch the guarantee account's statement."""
    global _bank_statements
    _bank_statements = source


def card_gateway() -> BalanceTransactionSource | None:
    return _card_gateway


def bank_statements() -> BankStatementSource | None:
    return _bank_statements


# --- the run ----------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    run: ReconRun
    exceptions: int
    """Exceptions this run added (those already known for the day are not repeated)."""


def _uuid_param(name: str, value: Any) -> Any:
    return bindparam(name, value, type_=Uuid())


def _time_param(name: str, value: datetime) -> Any:
    return bindparam(name, value, type_=UTCDateTime(timezone=True))


_STAGE_COLUMNS = (
    "id",
    "amount",
    "fee",
    "net",
    "currency",
    "type",
    "source",
    "created",
    "status",
    "reporting_category",
)
_REQUIRED_COLUMNS = ("id", "amount", "fee", "net", "type", "source", "status")
_PG_STAGE = (
    "CREATE TEMP TABLE recon_stage (line_no bigint GENERATED ALWAYS AS IDENTITY, id text, amount bigint, "
    "fee bigint, net bigint, currency text, type text, source text, created bigint, status text, "
    "reporting_category text) ON COMMIT DROP"
)
_SQLITE_STAGE = (
    "CREATE TEMP TABLE recon_stage (line_no INTEGER PRIMARY KEY, id TEXT, amount INTEGER, fee INTEGER, "
    "net INTEGER, currency TEXT, type TEXT, source TEXT, created INTEGER, status TEXT, "
    "reporting_category TEXT)"
)
_LINE_OF_COPY_ERROR = re.compile(r"line (\d+)")


async def _create_stage(session: AsyncSession) -> str:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(text(_PG_STAGE))
    else:
        await session.execute(text("DROP TABLE IF EXISTS temp.recon_stage"))
        await session.execute(text(_SQLITE_STAGE))
    return dialect


async def _stage_gateway(
    session: AsyncSession, lines: AsyncIterable[GatewayLine] | Iterable[GatewayLine]
) -> int:
    """Load report lines into the temporary table ``recon_stage`` in batches; returns how many."""
    dialect = await _create_stage(session)
    copy: Any = None
    if dialect == "postgresql":
        connection = await asyncpg_connection(session)

        async def copy_rows(rows: list[tuple[Any, ...]]) -> None:
            await connection.copy_records_to_table("recon_stage", records=rows, columns=_STAGE_COLUMNS)

        copy = copy_rows
    else:
        statement = text(
            "INSERT INTO recon_stage (id, amount, fee, net, currency, type, source, created, status, "
            "reporting_category) VALUES (:id, :amount, :fee, :net, :currency, :type, :source, :created, "
            ":status, :reporting_category)"
        )

        async def insert_rows(rows: list[tuple[Any, ...]]) -> None:
            await session.execute(statement, [dict(zip(_STAGE_COLUMNS, row, strict=True)) for row in rows])

        copy = insert_rows
    count = 0
    batch: list[tuple[Any, ...]] = []

    def add(line: GatewayLine) -> None:
        batch.append(
            (
                line.id,
                line.amount,
                line.fee,
                line.net,
                line.currency,
                line.type,
                line.source,
                line.created,
                line.status,
                line.reporting_category,
            )
        )

    if isinstance(lines, AsyncIterable):
        async for line in lines:
            add(line)
            if len(batch) >= _STAGE_BATCH:
                count += len(batch)
                await copy(batch)
                batch = []
    else:
        for line in lines:
            add(line)
            if len(batch) >= _STAGE_BATCH:
                count += len(batch)
                await copy(batch)
                batch = []
    if batch:
        count += len(batch)
        await copy(batch)
    if dialect == "postgresql":
        await session.execute(text("ANALYZE recon_stage"))
    return count


async def _stage_gateway_csv(session: AsyncSession, binary: IO[bytes]) -> int:
    """Load an uploaded CSV report into ``recon_stage``: on PostgreSQL the file's bytes go to ``COPY ... FROM
    STDIN (FORMAT csv)`` as they are read (the database parses them; nothing is kept in Python), elsewhere
    it is parsed line by line. Returns the number of lines."""
    what = "gateway_report"
    if session.get_bind().dialect.name != "postgresql":
        return await _stage_gateway(session, parse_gateway_csv(text_stream(binary)))
    header_line = binary.readline().decode("utf-8-sig")
    names = [name.strip() for name in next(csv.reader([header_line]), [])]
    unknown = [name for name in names if name not in _STAGE_COLUMNS]
    missing = [name for name in _REQUIRED_COLUMNS if name not in names]
    if unknown or missing or len(set(names)) != len(names):
        problem = []
        if missing:
            problem.append("missing columns: " + ", ".join(missing))
        if unknown:
            problem.append("unknown columns: " + ", ".join(unknown))
        raise ReportError(what, 1, "; ".join(problem) or "a column is repeated")
    await _create_stage(session)
    connection = await asyncpg_connection(session)

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := binary.read(1 << 20):
            yield chunk

    try:
        await connection.copy_to_table("recon_stage", source=chunks(), columns=names, format="csv")
    except asyncpg.PostgresError as exc:
        found = _LINE_OF_COPY_ERROR.search(str(getattr(exc, "context", None) or exc))
        line = int(found.group(1)) + 1 if found else 0
        raise ReportError(what, line, str(exc).split("\n")[0][:200]) from None
    bad = (
        await session.execute(
            text(
                "SELECT min(line_no) FILTER (WHERE id IS NULL OR id = ''), "
                "min(line_no) FILTER (WHERE lower(coalesce(currency, 'vnd')) <> 'vnd'), "
                "min(line_no) FILTER (WHERE amount IS NULL OR net IS NULL), count(*) FROM recon_stage"
            )
        )
    ).one()
    for index, message in enumerate(("id is empty", "only vnd", "amount and net are required")):
        if bad[index] is not None:
            raise ReportError(what, int(bad[index]) + 1, message)
    await session.execute(text("ANALYZE recon_stage"))
    return int(bad[3])


PAYOUT_KIND = "gateway_payout"
"""Kind of the entries booking the gateway's payouts to the guarantee account (see :func:`_book_payouts`)."""


async def _book_payouts(session: AsyncSession) -> list[str]:
    """Book the staged payouts (``type`` ``payout``, ``source`` ``po_...``) the ledger does not know yet.

    A payout is the gateway paying our balance out to the guarantee account: nobody else books it (top-ups
    book charges), and without it the clearing mirror would keep growing and the bank's ``po_`` line would
    have nothing to match. One entry per payout, reference = its id, kind :data:`PAYOUT_KIND`:
    ``credit gateway clearing -net; debit guarantee bank -amount; debit gateway fees fee`` (Stripe: amount
    and net negative), which the classification then matches like any line; the bank statement shows the
    money arriving (until then the posting is an item in transit). Only from the gateway's own API (the
    adapter), never from an uploaded file: an upload's unknown payout stays ``missing_in_ledger`` for a
    correction under four eyes. Returns the ids booked."""
    rows = (
        await session.execute(
            text(
                "SELECT source, amount, coalesce(fee, 0), net FROM recon_stage WHERE type = 'payout' "
                "AND substr(source, 1, 3) = 'po_' AND status IN ('available', 'pending') ORDER BY line_no"
            )
        )
    ).all()
    if not rows:
        return []
    sources = sorted({str(r[0]) for r in rows})
    known = set(
        await session.scalars(select(LedgerEntry.reference).where(LedgerEntry.reference.in_(sources)))
    )
    booked: list[str] = []
    clearing = ledger.system_account(AccountType.GATEWAY_CLEARING)
    bank = ledger.system_account(AccountType.GUARANTEE_BANK)
    fees = ledger.system_account(AccountType.GATEWAY_FEES)
    for source, amount, fee, net in rows:
        source, amount, fee, net = str(source), int(amount), int(fee), int(net)
        if source in known or amount >= 0 or net != amount - fee:
            continue  # booked already, or not a payout we can read: classified as it is
        postings = [Posting(clearing, -net), Posting(bank, amount)]
        if fee:
            postings.append(Posting(fees, -fee))
        await ledger.post(
            session,
            ledger.Entry(
                kind=PAYOUT_KIND,
                postings=postings,
                reference=source,
                description="Cổng thẻ chuyển về tài khoản đảm bảo / Gateway payout",
                metadata={"payout": source, "amount": amount, "fee": fee, "net": net},
            ),
        )
        known.add(source)
        booked.append(source)
    return booked


_CLASSIFY = """
WITH d AS (
    SELECT source, type, min(line_no) AS first_line
      FROM recon_stage GROUP BY source, type HAVING count(*) > 1
), g AS (
    SELECT s.line_no, s.id AS ext_id, s.source AS reference, s.amount, coalesce(s.fee, 0) AS fee, s.net,
           s.type, s.status,
           CASE WHEN d.first_line IS NOT NULL AND s.line_no <> d.first_line THEN 2 ELSE 1 END AS rn
      FROM recon_stage s LEFT JOIN d ON d.source = s.source AND d.type = s.type
), pe AS (
    SELECT e.id, e.reference, e.kind,
           CASE WHEN e.created_at >= :start AND e.created_at < :end THEN 1 ELSE 0 END AS in_day,
           SUM(CASE WHEN p.account_id = :clearing THEN p.amount ELSE 0 END) AS clearing,
           SUM(CASE WHEN p.account_id = :fees THEN p.amount ELSE 0 END) AS fees,
           MAX(CASE WHEN p.account_id = :clearing THEN 1 ELSE 0 END) AS touches
      FROM ledger_entries e
      JOIN ledger_postings p ON p.entry_id = e.id AND p.account_id IN (:clearing, :fees)
     WHERE e.reverses_id IS NULL AND e.reference IS NOT NULL
       AND (e.reference IN (SELECT source FROM recon_stage)
            OR (e.created_at >= :start AND e.created_at < :end))
     GROUP BY e.id, e.reference, e.kind, e.created_at
), l AS (
    SELECT pe.reference,
           SUM(CASE WHEN pe.kind <> :correction THEN 1 ELSE 0 END) AS entries,
           -SUM(pe.clearing) AS net,
           -SUM(pe.fees) AS fee,
           MAX(CASE WHEN r.id IS NULL THEN 0 ELSE 1 END) AS reversed,
           MAX(CASE WHEN pe.kind NOT IN (:correction, :payout) THEN pe.in_day * pe.touches ELSE 0 END)
               AS day_booked
      FROM pe
      LEFT JOIN (SELECT reverses_id AS id FROM ledger_entries WHERE reverses_id IS NOT NULL) r ON r.id = pe.id
     GROUP BY pe.reference
), c AS (
    SELECT g.line_no, g.ext_id, g.reference, g.amount, g.fee, g.net, g.status,
           l.net + l.fee AS l_gross, l.fee AS l_fee, l.net AS l_net,
           CASE WHEN l.reversed = 1 THEN 'reversed'
                WHEN l.reference IS NOT NULL THEN 'booked' END AS l_status,
           CASE
               WHEN g.rn > 1 THEN 'duplicate'
               WHEN l.reference IS NULL OR l.entries = 0 AND l.net + l.fee = 0 THEN 'missing_in_ledger'
               WHEN l.entries > 1 THEN 'duplicate'
               WHEN l.reversed = 1 OR g.status NOT IN ('available', 'pending') THEN 'status_mismatch'
               WHEN g.amount <> l.net + l.fee OR g.fee <> l.fee OR g.net <> l.net THEN 'amount_mismatch'
               ELSE 'matched'
           END AS outcome
      FROM g LEFT JOIN l ON l.reference = g.reference
    UNION ALL
    SELECT NULL, l.reference, l.reference, NULL, NULL, NULL, NULL, l.net + l.fee, l.fee, l.net, 'booked',
           'missing_at_gateway'
      FROM l
     WHERE l.day_booked = 1 AND l.reversed = 0
       AND l.reference NOT IN (SELECT source FROM recon_stage WHERE source IS NOT NULL)
)
"""

_INSERT_EXCEPTIONS = """
INSERT INTO recon_exceptions (run_id, day, source, kind, key, reference, ledger_gross, ledger_fee, ledger_net,
                              external_gross, external_fee, external_net, ledger_status, external_status,
                              status, created_at, updated_at)
SELECT :run_id, :day, 'gateway', c.outcome, c.ext_id, c.reference, c.l_gross, c.l_fee, c.l_net,
       c.amount, c.fee, c.net, c.l_status, c.status, 'open', :now, :now
  FROM c WHERE c.outcome <> 'matched'
ON CONFLICT (day, source, kind, key) DO NOTHING
"""


def _params(statement: str, **values: Any) -> Any:
    query = text(statement)
    binds = []
    for name, value in values.items():
        if name in ("clearing", "fees"):
            binds.append(_uuid_param(name, value))
        elif name in ("now", "start", "end"):
            binds.append(_time_param(name, value))
        else:
            binds.append(bindparam(name, value))
    return query.bindparams(*binds)


async def _match_gateway(
    session: AsyncSession, run: ReconRun, start: datetime, end: datetime, now: datetime
) -> dict[str, int]:
    """Classify the staged lines (writing the exceptions); returns the number of lines per outcome."""
    values: dict[str, Any] = {
        "clearing": ledger.system_account(AccountType.GATEWAY_CLEARING),
        "fees": ledger.system_account(AccountType.GATEWAY_FEES),
        "correction": CORRECTION_KIND,
        "payout": PAYOUT_KIND,
    }
    values["start"], values["end"] = start, end
    written = {"run_id": run.id, "day": run.day, "now": now}
    counts: dict[str, int] = {}
    if session.get_bind().dialect.name == "postgresql":
        # One pass over the report: the exceptions are written by a data-modifying CTE of the count.
        # constant SQL, every value is a bound parameter
        statement = (
            _CLASSIFY.rstrip()  # noqa: S608
            + ", ins AS ("
            + _INSERT_EXCEPTIONS.strip()
            + " RETURNING 1) SELECT outcome, count(*), (SELECT count(*) FROM ins) FROM c GROUP BY outcome"
        )
        rows = (await session.execute(_params(statement, **values, **written))).all()
        for outcome, n, _ in rows:
            counts[str(outcome)] = int(n)
    else:
        rows = (
            await session.execute(
                _params(_CLASSIFY + "SELECT outcome, count(*) FROM c GROUP BY outcome", **values)  # noqa: S608
            )
        ).all()
        counts = {str(outcome): int(n) for outcome, n in rows}
        await session.execute(_params(_CLASSIFY + _INSERT_EXCEPTIONS, **values, **written))
    await session.execute(text("DROP TABLE IF EXISTS recon_stage"))
    return counts


async def _recorded_confirmations(session: AsyncSession, start: datetime, end: datetime) -> list[BillerLine]:
    """The answers the billers' connectors gave about the day's payments (the default biller report)."""
    expected = await _expected_items(session, start, end, [])
    return [
        BillerLine(
            biller=item.biller, reference=ref, amount=item.amount, status=item.answer, biller_reference=""
        )
        for ref, item in expected.items()
        if item.answer in ("confirmed", "refused")
    ]


@dataclass(slots=True)
class _Item:
    biller: str
    amount: int
    status: str
    """``paid`` (kept: paid or confirmed) or ``refunded``."""
    answer: str
    """What the connector recorded: ``confirmed``, ``refused`` (refunded with a reason) or ``none``."""
    day_of_run: bool


async def _expected_items(
    session: AsyncSession, start: datetime, end: datetime, other_refs: list[str]
) -> dict[str, _Item]:
    """What the ledger paid to billers: each item of the day's bill payments (and of the payments named by
    ``other_refs``), by reference ``{payment reference}-{n}``."""
    place = (
        func.row_number()
        .over(partition_by=BillPaymentItem.payment_id, order_by=BillPaymentItem.id)
        .label("n")
    )
    base = (
        select(
            BillPayment.reference,
            BillPayment.paid_at,
            place,
            BillPaymentItem.amount,
            BillPaymentItem.status,
            BillPaymentItem.refund_reason,
            Biller.code,
        )
        .join(BillPaymentItem, BillPaymentItem.payment_id == BillPayment.id)
        .join(Biller, Biller.id == BillPaymentItem.biller_id)
        .join(LedgerEntry, LedgerEntry.id == BillPayment.entry_id)  # only what the ledger booked
    )
    day_filter = (BillPayment.paid_at >= start) & (BillPayment.paid_at < end)
    condition = day_filter | BillPayment.reference.in_(other_refs) if other_refs else day_filter
    items: dict[str, _Item] = {}
    for reference, paid_at, n, amount, status, reason, code in await session.execute(base.where(condition)):
        refunded = status == "refunded"
        answer = "confirmed" if status == "confirmed" else ("refused" if refunded and reason else "none")
        items[f"{reference}-{n}"] = _Item(
            biller=code,
            amount=int(amount),
            status="refunded" if refunded else "paid",
            answer=answer,
            day_of_run=start <= paid_at < end,
        )
    return items


@dataclass(slots=True)
class _NewException:
    source: str
    kind: str
    key: str
    reference: str | None = None
    party: str | None = None
    ledger_gross: int | None = None
    external_gross: int | None = None
    ledger_status: str | None = None
    external_status: str | None = None


async def _match_billers(
    session: AsyncSession, lines: list[BillerLine], start: datetime, end: datetime
) -> tuple[dict[str, int], list[_NewException]]:
    refs = sorted({line.reference.rsplit("-", 1)[0] for line in lines if "-" in line.reference})
    expected = await _expected_items(session, start, end, refs)
    counts: dict[str, int] = defaultdict(int)
    found: list[_NewException] = []
    seen: set[str] = set()
    for line in lines:
        item = expected.get(line.reference)
        base = _NewException(
            "biller",
            "matched",
            line.reference,
            line.reference,
            line.biller,
            item.amount if item else None,
            line.amount,
            item.status if item else None,
            line.status,
        )
        if line.reference in seen:
            base.kind = "duplicate"
            base.key = f"{line.reference}#{line.biller_reference or len(seen)}"
        elif item is None:
            base.kind = "missing_in_ledger"
        elif (line.status == "confirmed") != (item.status == "paid"):
            base.kind = "status_mismatch"
        elif line.amount != item.amount:
            base.kind = "amount_mismatch"
        seen.add(line.reference)
        counts[base.kind] += 1
        if base.kind != "matched":
            found.append(base)
    for reference, item in expected.items():
        if item.day_of_run and item.status == "paid" and reference not in seen:
            counts["missing_at_gateway"] += 1
            found.append(
                _NewException(
                    "biller",
                    "missing_at_gateway",
                    reference,
                    reference,
                    item.biller,
                    item.amount,
                    None,
                    "paid",
                )
            )
    return dict(counts), found


async def _check_bank(
    session: AsyncSession, statement: BankStatement, start: datetime, end: datetime
) -> tuple[dict[str, Any], list[_NewException]]:
    """The statement against the mirror account, line by line, and the coverage of wallet balances."""
    mirror = ledger.system_account(AccountType.GUARANTEE_BANK)
    rows = await session.execute(
        select(LedgerEntry.reference, LedgerEntry.id, LedgerPosting.amount)
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(
            LedgerPosting.account_id == mirror, LedgerEntry.created_at >= start, LedgerEntry.created_at < end
        )
        .order_by(LedgerPosting.id)
    )
    booked: dict[str, int] = defaultdict(int)
    for reference, entry_id, amount in rows:
        booked[reference or str(entry_id)] += -int(amount)  # a debit to the mirror is money in at the bank
    banked: dict[str, int] = defaultdict(int)
    for line in statement.lines:
        banked[line.reference] += line.amount
    found: list[_NewException] = []
    in_transit: list[dict[str, Any]] = [
        {"reference": ref, "amount": amount} for ref, amount in booked.items() if ref not in banked
    ]
    matched = 0
    for ref, amount in banked.items():
        if ref not in booked:
            found.append(_NewException("bank", "missing_in_ledger", ref, ref, None, None, amount))
        elif booked[ref] != amount:
            found.append(_NewException("bank", "amount_mismatch", ref, ref, None, booked[ref], amount))
        else:
            matched += 1
    mirror_closing = -int(
        await session.scalar(
            select(func.coalesce(func.sum(LedgerPosting.amount), 0))
            .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
            .where(LedgerPosting.account_id == mirror, LedgerEntry.created_at < end)
        )
        or 0
    )
    transit_total = sum(int(item["amount"]) for item in in_transit)
    unexplained = statement.closing_balance - (mirror_closing - transit_total)
    unexplained -= sum(e.external_gross or 0 for e in found if e.kind == "missing_in_ledger")
    unexplained -= sum(
        (e.external_gross or 0) - (e.ledger_gross or 0) for e in found if e.kind == "amount_mismatch"
    )
    wallets = int(
        await session.scalar(
            select(func.coalesce(func.sum(LedgerPosting.amount), 0))
            .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
            .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
            .where(LedgerAccount.type == AccountType.CITIZEN_WALLET.value, LedgerEntry.created_at < end)
        )
        or 0
    )
    check = {
        "ran": True,
        "statement_closing": statement.closing_balance,
        "mirror_closing": mirror_closing,
        "lines": len(statement.lines),
        "matched": matched,
        "in_transit": in_transit[:100],
        "in_transit_count": len(in_transit),
        "in_transit_total": transit_total,
        "unexplained": unexplained,
        "explained": unexplained == 0 and not found,
        "wallet_balances": wallets,
        "covered": wallets <= statement.closing_balance,
        "coverage_margin": statement.closing_balance - wallets,
    }
    return check, found


_HOURLY_DIGESTS_PG = """
WITH lines AS (
    SELECT e.created_at, e.id,
           e.id::text || '|' || (extract(epoch FROM e.created_at) * 1000000)::bigint::text || '|' || e.kind
           || '|' || coalesce(e.reference, '') || '|' || e.description
           || '|' || coalesce(e.reverses_id::text, '')
           || '|' || string_agg(p.account_id::text || ':' || p.amount::text, ',' ORDER BY p.id) AS line
      FROM ledger_entries e
      JOIN ledger_postings p ON p.entry_id = e.id
     WHERE e.created_at >= $1 AND e.created_at < $2
     GROUP BY e.id
)
SELECT floor(extract(epoch FROM created_at - $1) / 3600)::int AS hour, count(*) AS entries,
       encode(sha256(convert_to(string_agg(line, E'\\n' ORDER BY created_at, id), 'UTF8')), 'hex') AS digest
  FROM lines
 GROUP BY 1
 ORDER BY 1
"""


def _entry_line(entry: tuple[Any, ...], postings: list[str]) -> str:
    entry_id, created_at, kind, reference, description, reverses = entry
    micros = (created_at.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    head = f"{entry_id}|{micros}|{kind}|{reference or ''}|{description}|{reverses or ''}"
    return head + "|" + ",".join(postings)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def journal_digest(session: AsyncSession, day: date) -> tuple[str, int]:
    """SHA-256 of the day's journal, and its number of entries. Anything changed in those rows (an entry's
    id, time, kind, reference, description, or any of its postings) changes the digest.

    Each entry is one canonical line ``id|epoch µs|kind|reference|description|reverses|account:amount,...``
    (postings in id order); each hour of the day (counted from the local midnight) is the SHA-256 of its
    lines joined by newlines in (created_at, id) order; the day's digest is the SHA-256 of the lines
    ``hour:entries:hour digest``. On PostgreSQL the hourly digests are computed by the database in one
    statement (a day of a million entries never crosses to Python); elsewhere here, the same way.
    """
    start, end = day_bounds(day)
    hours: list[tuple[int, int, str]] = []
    if session.get_bind().dialect.name == "postgresql":
        connection = await asyncpg_connection(session)
        for record_ in await connection.fetch(_HOURLY_DIGESTS_PG, start, end):
            hours.append((int(record_["hour"]), int(record_["entries"]), str(record_["digest"])))
    else:
        rows = await session.execute(
            select(
                LedgerEntry.id,
                LedgerEntry.created_at,
                LedgerEntry.kind,
                LedgerEntry.reference,
                LedgerEntry.description,
                LedgerEntry.reverses_id,
                LedgerPosting.account_id,
                LedgerPosting.amount,
            )
            .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
            .where(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
            .order_by(LedgerEntry.created_at, LedgerEntry.id, LedgerPosting.id)
        )
        buckets: dict[int, list[str]] = defaultdict(list)
        current: tuple[Any, ...] | None = None
        postings: list[str] = []

        def flush() -> None:
            if current is not None:
                hour = int((current[1].astimezone(UTC) - start).total_seconds() // 3600)
                buckets[hour].append(_entry_line(current, postings))

        for entry_id, created_at, kind, reference, description, reverses, account_id, amount in rows:
            if current is None or current[0] != entry_id:
                flush()
                current, postings = (entry_id, created_at, kind, reference, description, reverses), []
            postings.append(f"{account_id}:{int(amount)}")
        flush()
        for hour in sorted(buckets):
            text_ = "\n".join(buckets[hour]).encode()
            hours.append((hour, len(buckets[hour]), hashlib.sha256(text_).hexdigest()))
    day_digest = hashlib.sha256("".join(f"{h}:{n}:{d}\n" for h, n, d in hours).encode())
    return day_digest.hexdigest(), sum(n for _, n, _ in hours)


async def _seal(session: AsyncSession, day: date, now: datetime) -> dict[str, Any]:
    """Seal the day's journal once the day is over; on a later run, compare it with what was sealed."""
    label = f"ledger.journal:{day.isoformat()}"
    if day_bounds(day)[1] > now:
        return {"state": "day_open", "label": label}
    digest, entries = await journal_digest(session, day)
    sealed = await sealed_digest(session, label)
    if sealed is None:
        return {"state": "to_seal", "label": label, "digest": digest, "entries": entries}
    if sealed == digest:
        return {"state": "intact", "label": label, "digest": digest, "entries": entries}
    return {"state": "changed", "label": label, "digest": digest, "sealed": sealed, "entries": entries}


async def _known(session: AsyncSession, day: date) -> int:
    query = select(func.count()).select_from(ReconException).where(ReconException.day == day)
    return int(await session.scalar(query) or 0)


async def _check_books(session: AsyncSession, start: datetime, end: datetime) -> dict[str, Any]:
    """The ledger's invariants that matter to a day's reconciliation, each in one pass: every posting sums to
    zero, the day's entries are balanced, every account's balance equals the sum of its postings, no wallet
    is below zero. (:func:`ledger.check_books` also re-walks every posting's running balance: a sort of the
    whole journal, left to the ledger's own tests and to an admin asking for it.)"""
    total = int(await session.scalar(select(func.coalesce(func.sum(LedgerPosting.amount), 0))) or 0)
    unbalanced = list(
        await session.scalars(
            select(LedgerPosting.entry_id)
            .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
            .where(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
            .group_by(LedgerPosting.entry_id)
            .having(or_(func.sum(LedgerPosting.amount) != 0, func.count() < 2))
            .limit(20)
        )
    )
    posted = (
        select(LedgerPosting.account_id, func.sum(LedgerPosting.amount).label("amount"))
        .group_by(LedgerPosting.account_id)
        .subquery()
    )
    pending = (
        select(LedgerBalanceDelta.account_id, func.sum(LedgerBalanceDelta.amount).label("amount"))
        .group_by(LedgerBalanceDelta.account_id)
        .subquery()
    )
    stored = LedgerAccount.balance + func.coalesce(pending.c.amount, 0)
    summed = func.coalesce(posted.c.amount, 0)
    mismatches = (
        await session.execute(
            select(LedgerAccount.id, stored, summed)
            .outerjoin(posted, posted.c.account_id == LedgerAccount.id)
            .outerjoin(pending, pending.c.account_id == LedgerAccount.id)
            .where(stored != summed)
            .limit(20)
        )
    ).all()
    negative = int(
        await session.scalar(
            select(func.count())
            .select_from(LedgerAccount)
            .where(~LedgerAccount.allow_negative, LedgerAccount.balance - LedgerAccount.held < 0)
        )
        or 0
    )
    return {
        "ok": total == 0 and not unbalanced and not mismatches and not negative,
        "postings_total": total,
        "unbalanced_entries": [str(e) for e in unbalanced],
        "balance_mismatches": [
            {"account_id": str(a), "stored": int(st), "postings": int(su)} for a, st, su in mismatches
        ],
        "negative_wallets": negative,
    }


async def reconcile_day(
    session: AsyncSession,
    day: date,
    *,
    trigger: str = "on_demand",
    actor: AuditActor | None = None,
    gateway_lines: AsyncIterable[GatewayLine] | Iterable[GatewayLine] | None = None,
    gateway_csv: IO[bytes] | None = None,
    biller_lines: list[BillerLine] | None = None,
    bank_statement: BankStatement | None = None,
    now: datetime | None = None,
    check_books: bool = True,
) -> RunResult:
    """Reconcile ``day`` in the session's transaction (see the module docstring).

    Reports not given are fetched: the gateway's through the installed card gateway (skipped if none), the
    billers' from the confirmations the connectors recorded, the bank's through the installed statement
    source (skipped if none). The audit rows (the run, the seal) are written last.
    """
    moment = now or utcnow()
    start, end = day_bounds(day)
    actor = actor or AuditActor.system("recon.daily")
    run = ReconRun(day=day, trigger=trigger, started_by=actor.id, started_at=moment, counts={}, checks={})
    session.add(run)
    await session.flush()
    counts: dict[str, Any] = {}
    checks: dict[str, Any] = {"sources": {}}
    known_before = await _known(session, day)
    timings: dict[str, float] = {}
    clock = perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now_ = perf_counter()
        timings[phase] = round((now_ - clock) * 1000, 1)
        clock = now_

    # 1. gateway
    if session.get_bind().dialect.name == "postgresql":
        # big sorts and hashes stay in memory; no JIT compilation for a statement run once
        await session.execute(text(f"SET LOCAL work_mem = '{_WORK_MEM}'"))
        await session.execute(text("SET LOCAL jit = off"))
    if gateway_csv is not None:
        checks["sources"]["gateway"] = "upload"
        lines = await _stage_gateway_csv(session, gateway_csv)
        lap("gateway_stage")
        counts["gateway"] = {"lines": lines, **await _match_gateway(session, run, start, end, moment)}
        lap("gateway_match")
    elif gateway_lines is None and (gateway := card_gateway()) is not None:
        gateway_lines = iter_balance_transactions(gateway, int(start.timestamp()), int(end.timestamp()))
        checks["sources"]["gateway"] = "adapter"
    elif gateway_lines is not None:
        checks["sources"]["gateway"] = "upload"
    if gateway_lines is not None:
        lines = await _stage_gateway(session, gateway_lines)
        lap("gateway_stage")
        if checks["sources"]["gateway"] == "adapter":
            checks["payouts_booked"] = await _book_payouts(session)
        counts["gateway"] = {"lines": lines, **await _match_gateway(session, run, start, end, moment)}
        lap("gateway_match")
    elif gateway_csv is None:
        checks["sources"]["gateway"] = "none"

    # 2. billers
    if biller_lines is None:
        biller_lines = await _recorded_confirmations(session, start, end)
        checks["sources"]["biller"] = "recorded"
    else:
        checks["sources"]["biller"] = "upload"
    biller_counts, found = await _match_billers(session, biller_lines, start, end)
    counts["biller"] = {"lines": len(biller_lines), **biller_counts}
    lap("billers")

    # 3. bank statement and coverage
    if bank_statement is None and (source := bank_statements()) is not None:
        bank_statement = await source.statement(day)
        checks["sources"]["bank"] = "fetched"
    elif bank_statement is not None:
        checks["sources"]["bank"] = "upload"
    if bank_statement is not None:
        checks["bank"], bank_found = await _check_bank(session, bank_statement, start, end)
        found += bank_found
        counts["bank"] = {"lines": len(bank_statement.lines), "exceptions": len(bank_found)}
    else:
        checks["sources"]["bank"] = "none"
        checks["bank"] = {"ran": False}

    if found:
        known = await session.execute(
            select(ReconException.source, ReconException.kind, ReconException.key).where(
                ReconException.day == day
            )
        )
        stored = {(str(source), str(kind), str(key)) for source, kind, key in known}
        rows = [
            {
                "run_id": run.id,
                "day": day,
                "source": f.source,
                "kind": f.kind,
                "key": f.key[:160],
                "reference": f.reference,
                "party": f.party,
                "ledger_gross": f.ledger_gross,
                "external_gross": f.external_gross,
                "ledger_status": f.ledger_status,
                "external_status": f.external_status,
                "status": "open",
                "created_at": moment,
                "updated_at": moment,
            }
            for f in found
            if (f.source, f.kind, f.key[:160]) not in stored
        ]
        if rows:
            upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            await session.execute(  # a run of the same day at the same moment may have written them
                upsert(ReconException).on_conflict_do_nothing(
                    index_elements=["day", "source", "kind", "key"]
                ),
                rows,
            )

    lap("bank")
    # 4. the books and the seal
    if check_books:
        checks["books"] = await _check_books(session, start, end)
        lap("books")
    checks["seal"] = await _seal(session, day, moment)
    lap("seal_digest")
    checks["timings_ms"] = timings

    open_exceptions = int(
        await session.scalar(
            select(func.count())
            .select_from(ReconException)
            .where(ReconException.day == day, ReconException.status.in_(("open", "proposed")))
        )
        or 0
    )
    checks["open_exceptions"] = open_exceptions
    added = await _known(session, day) - known_before
    healthy = (
        open_exceptions == 0
        and checks.get("books", {"ok": True})["ok"]
        and checks["seal"]["state"] != "changed"
        and (not checks["bank"]["ran"] or (checks["bank"]["explained"] and checks["bank"]["covered"]))
    )
    run.counts = counts
    run.checks = checks
    run.status = "balanced" if healthy else "attention"
    run.finished_at = utcnow()
    await session.flush()
    await record(
        session,
        actor=actor,
        action="recon.run",
        object_type="recon_run",
        object_id=str(run.id),
        details={
            "day": day.isoformat(),
            "status": run.status,
            "new_exceptions": added,
            "seal": checks["seal"]["state"],
            "payouts_booked": checks.get("payouts_booked", []),
        },
    )
    if checks["seal"]["state"] == "changed":
        await record(
            session,
            actor=actor,
            action="recon.seal_mismatch",
            object_type="ledger_day",
            object_id=day.isoformat(),
            outcome="failure",
            details={"sealed": checks["seal"]["sealed"], "recomputed": checks["seal"]["digest"]},
        )
    elif checks["seal"]["state"] == "to_seal":
        try:
            await seal_digest(
                session,
                checks["seal"]["label"],
                checks["seal"]["digest"],
                details={"entries": checks["seal"]["entries"]},
            )
            checks["seal"]["state"] = "sealed"
        except SealConflictError:  # pragma: no cover - sealed meanwhile by another run, with another digest
            checks["seal"]["state"] = "changed"
            run.status = "attention"
        run.checks = dict(checks)
        await session.flush()
    log.info("recon_run", day=day.isoformat(), status=run.status, new_exceptions=added)
    return RunResult(run=run, exceptions=added)


def text_stream(binary: IO[bytes]) -> IO[str]:
    """Read an uploaded file (bytes) as UTF-8 text, a BOM tolerated, for the CSV readers."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


@scheduled_job("recon.daily", trigger=cron(hour=2, minute=30), period=DAILY)
async def reconcile_yesterday(ctx: JobContext) -> None:
    """Every night at 02:30: reconcile the day before with what can be fetched, and seal its journal. A
    standalone worker has no ``create_app`` to install the card gateway, so the job takes the process's
    own."""
    if card_gateway() is None:
        from app.wallet.gateway import get_card_gateway

        install_card_gateway(get_card_gateway())
    day = ctx.local_time.date() - timedelta(days=1)
    async with ctx.db.transaction() as session:
        await reconcile_day(session, day, trigger="scheduled")
