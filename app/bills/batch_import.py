"""Importing a biller's monthly batch file (CSV) of bills: streamed, validated row by row, idempotent.

The file has a header row naming its columns (any order; unknown columns are ignored):
``bill_id, customer_code, period, amount, due_date`` are required, ``customer_name, description`` optional.
``period`` is ``YYYY-MM``, ``amount`` a whole number of đồng, ``due_date`` ``YYYY-MM-DD``. UTF-8, with or
without a byte-order mark (as spreadsheets save it).

Every row is checked; a bad row is reported with its line and reason and skipped, good rows are imported.
Bills are keyed by the biller's ``bill_id``: importing the same file again changes nothing, and a bill
already known (even paid since) is never overwritten. Memory stays flat whatever the file's size: the file
is read as a stream and written in chunks, each chunk its own transaction (so an interrupted import can
simply be run again). PostgreSQL receives each chunk with ``COPY`` into a temporary table and one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING``; SQLite with a chunked ``executemany``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
import uuid
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.bills.customer_codes import code_checker, normalise_code
from app.bills.models import Bill
from app.bills.schemas import CustomerInput
from app.bills.service import customer_input, get_biller
from app.core.db import Database, new_id, utcnow
from app.core.errors import AppError

__all__ = ["ImportFileError", "ImportReport", "RejectedRow", "import_bill_file"]

REQUIRED_COLUMNS = ("bill_id", "customer_code", "period", "amount", "due_date")
OPTIONAL_COLUMNS = ("customer_name", "description")
MAX_AMOUNT = 100_000_000_000
_PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

Row = tuple[str, str, str, int, date, str | None, str | None]
"""A valid row: customer_code, external_id, period, amount, due_date, customer_name, description."""


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unknown biller, not a batch biller, missing columns)."""


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int
    """Line of the file (1 is the header)."""
    reason: str


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    """Data rows read."""
    imported: int = 0
    """New bills stored."""
    already_present: int = 0
    """Valid rows whose bill was already known (same biller and bill_id): left as they were."""
    rejected: int = 0
    seconds: float = 0.0
    ignored_columns: list[str] = field(default_factory=list)


def _text_ok(value: str) -> bool:
    """False when the value holds bytes that were not UTF-8 (decoded as lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Validator:
    """Turns one CSV record into a row to store, or says what is wrong with it (as fast as it can: it runs
    for every row of files of millions)."""

    def __init__(self, header: list[str], rule: CustomerInput) -> None:
        names = [h.strip().lower() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise ImportFileError(f"the header lacks the column(s) {', '.join(missing)}")
        self.width = len(names)
        known = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        self.ignored = [n for n in names if n not in known]
        self.at_id, self.at_code, self.at_period, self.at_amount, self.at_due = (
            names.index(c) for c in REQUIRED_COLUMNS
        )
        self.at_name = names.index("customer_name") if "customer_name" in names else None
        self.at_description = names.index("description") if "description" in names else None
        self.rule = rule
        self.check_code = code_checker(rule)
        self.periods: set[str] = set()
        self.dates: dict[str, date] = {}

    def _code_problem(self, raw: str) -> ValueError:
        try:
            normalise_code(self.rule, raw)
        except AppError as exc:
            return ValueError(f"customer_code {raw.strip()!r}: {exc.detail_en}")
        return ValueError("customer_code is not valid UTF-8")

    def _period(self, raw: str) -> str:
        period = raw.strip()
        if _PERIOD.fullmatch(period) is None:
            raise ValueError(f"period {period!r} is not a month written YYYY-MM")
        if len(self.periods) < 1000:
            self.periods.add(raw)
        return period

    def _due(self, raw: str) -> date:
        text = raw.strip()
        try:
            if _DATE.fullmatch(text) is None:
                raise ValueError
            due = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"due_date {text!r} is not a date written YYYY-MM-DD") from None
        if len(self.dates) < 1000:
            self.dates[raw] = due
        return due

    def _text(self, record: list[str], position: int | None, name: str, limit: int) -> str | None:
        if position is None:
            return None
        value = record[position].strip()
        if len(value) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
        if not (value.isascii() or _text_ok(value)):
            raise ValueError(f"{name} is not valid UTF-8")
        return value or None

    def row(self, record: list[str]) -> Row:
        if len(record) != self.width:
            raise ValueError(f"expected {self.width} fields, found {len(record)}")
        external_id = record[self.at_id].strip()
        if not 0 < len(external_id) <= 64:
            raise ValueError("bill_id must have 1 to 64 characters")
        if not (external_id.isascii() or _text_ok(external_id)):
            raise ValueError("bill_id is not valid UTF-8")
        raw_code = record[self.at_code]
        code = self.check_code(raw_code)
        if code is None or not (code.isascii() or _text_ok(code)):
            raise self._code_problem(raw_code)
        period = record[self.at_period]
        if period not in self.periods:
            period = self._period(period)
        raw_amount = record[self.at_amount].strip()
        if not (raw_amount.isascii() and raw_amount.isdigit()):
            raise ValueError(f"amount {raw_amount!r} is not a whole number of đồng")
        amount = int(raw_amount)
        if not 0 < amount <= MAX_AMOUNT:
            raise ValueError(f"amount {amount} is not between 1 and {MAX_AMOUNT:,} đồng")
        raw_due = record[self.at_due]
        due = self.dates.get(raw_due) or self._due(raw_due)
        return (
            code,
            external_id,
            period,
            amount,
            due,
            self._text(record, self.at_name, "customer_name", 200),
            self._text(record, self.at_description, "description", 300),
        )


@dataclass(slots=True)
class _Chunk:
    rows: list[Row]
    rejected: list[RejectedRow]
    bytes_read: int = 0


def _chunks(
    path: Path, rule: CustomerInput, report: ImportReport, chunk_size: int
) -> Generator[_Chunk, None, None]:
    """The file in chunks of ``chunk_size`` records: the valid rows, and the bad ones with their reasons.

    Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``) so that only the rows holding
    them are refused, not the whole file.
    """
    with (
        path.open("rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="") as stream,
    ):
        reader = csv.reader(stream, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError("the file is empty") from None
        validator = _Validator(header, rule)
        report.ignored_columns = validator.ignored
        chunk = _Chunk([], [])
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                chunk.rejected.append(RejectedRow(reader.line_num, f"not readable as CSV: {exc}"))
            else:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                try:
                    chunk.rows.append(validator.row(record))
                except ValueError as exc:
                    chunk.rejected.append(RejectedRow(reader.line_num, str(exc)))
            if len(chunk.rows) + len(chunk.rejected) >= chunk_size:
                chunk.bytes_read = raw.tell()
                yield chunk
                chunk = _Chunk([], [])
        chunk.bytes_read = raw.tell()
        if chunk.rows or chunk.rejected:
            yield chunk


_PG_INSERT = """
INSERT INTO bills (id, created_at, updated_at, biller_id, customer_code, external_id, period, amount,
                   due_date, status, customer_name, description, source)
SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
              placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid,
       now(), now(), $1, customer_code, external_id, period, amount, due_date, 'unpaid',
       customer_name, description, 'batch'
FROM bill_import_stage
ON CONFLICT (biller_id, external_id) DO NOTHING
"""
"""Ids are UUIDv7 made by PostgreSQL (millisecond time, version 7, random bits), like
:func:`app.core.db.new_id` makes them in Python: the time bytes of ``clock_timestamp()`` over the first six
bytes of a random UUID, whose version nibble 4 (0100) becomes 7 (0111)."""
_STAGE_COLUMNS = (
    "customer_code",
    "external_id",
    "period",
    "amount",
    "due_date",
    "customer_name",
    "description",
)


class _PostgresWriter:
    """COPY each chunk into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING into bills."""

    def __init__(self, db: Database, biller_id: uuid.UUID) -> None:
        self.dsn = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.biller_id = biller_id
        self.conn: Any = None

    async def open(self) -> None:
        self.conn = await asyncpg.connect(self.dsn, server_settings={"application_name": "hue-bill-import"})
        await self.conn.execute(
            "CREATE TEMPORARY TABLE bill_import_stage (customer_code text, external_id text, period text,"
            " amount bigint, due_date date, customer_name text, description text) ON COMMIT DELETE ROWS"
        )

    async def write(self, rows: list[Row]) -> int:
        for attempt in range(3):
            try:
                async with self.conn.transaction():
                    await self.conn.copy_records_to_table(
                        "bill_import_stage", records=rows, columns=_STAGE_COLUMNS
                    )
                    status = await self.conn.execute(_PG_INSERT, self.biller_id)
                return int(status.rsplit(" ", 1)[1])
            except asyncpg.exceptions.DeadlockDetectedError:
                # Two chunks of one file holding the same bill ids, stored side by side: run it again.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


class _SqliteWriter:
    """A chunked executemany of INSERT ... ON CONFLICT DO NOTHING, one transaction per chunk."""

    def __init__(self, db: Database, biller_id: uuid.UUID) -> None:
        self.db = db
        self.biller_id = biller_id
        self.statement = sqlite_insert(Bill).on_conflict_do_nothing(
            index_elements=[Bill.biller_id, Bill.external_id]
        )

    async def open(self) -> None:
        return None

    async def write(self, rows: list[Row]) -> int:
        now = utcnow()
        params = [
            {
                "id": new_id(),
                "created_at": now,
                "updated_at": now,
                "biller_id": self.biller_id,
                "customer_code": code,
                "external_id": external_id,
                "period": period,
                "amount": amount,
                "due_date": due,
                "status": "unpaid",
                "customer_name": name,
                "description": description,
                "source": "batch",
            }
            for code, external_id, period, amount, due, name, description in rows
        ]
        async with self.db.transaction() as session:
            before = await session.scalar(text("SELECT total_changes()"))
            await session.execute(self.statement, params)
            after = await session.scalar(text("SELECT total_changes()"))
        return int(after or 0) - int(before or 0)

    async def close(self) -> None:
        return None


async def import_bill_file(
    db: Database,
    biller_code: str,
    path: Path,
    *,
    chunk_size: int = 10_000,
    writers: int = 2,
    on_progress: Callable[[int, ImportReport], None] | None = None,
    on_reject: Callable[[RejectedRow], None] | None = None,
) -> ImportReport:
    """Import ``path`` for the batch biller ``biller_code``.

    ``on_progress(bytes_read, report)`` is called after each chunk, ``on_reject(row)`` for every bad row, both
    in the caller's event loop. On PostgreSQL ``writers`` connections store chunks side by side (the server's
    work dominates); SQLite has one writer.
    Raises :class:`ImportFileError` when the file as a whole cannot be imported.
    """
    started = time.perf_counter()
    async with db.read() as session:
        try:
            biller = await get_biller(session, biller_code)
        except AppError as exc:
            raise ImportFileError(f"no active biller {biller_code}") from exc
    if biller.presentment != "batch":
        raise ImportFileError(
            f"biller {biller_code} presents its bills by {biller.presentment}, not by batch file"
        )
    report = ImportReport()
    rule = customer_input(biller)
    chunks = _chunks(path, rule, report, chunk_size)
    parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bill-import")
    loop = asyncio.get_running_loop()
    writers = 1 if db.is_sqlite else max(1, writers)
    queue: asyncio.Queue[_Chunk | None] = asyncio.Queue(maxsize=writers)
    bytes_done = 0

    async def read() -> None:
        # Rows are read and checked in a thread while the database stores the previous chunks.
        while (chunk := await loop.run_in_executor(parser, next, chunks, None)) is not None:
            report.rows += len(chunk.rows) + len(chunk.rejected)
            report.rejected += len(chunk.rejected)
            if on_reject is not None:
                for rejected in chunk.rejected:
                    on_reject(rejected)
            await queue.put(chunk)
        for _ in range(writers):
            await queue.put(None)

    async def write() -> None:
        nonlocal bytes_done
        writer = _SqliteWriter(db, biller.id) if db.is_sqlite else _PostgresWriter(db, biller.id)
        await writer.open()
        try:
            while (chunk := await queue.get()) is not None:
                if chunk.rows:
                    inserted = await writer.write(chunk.rows)
                    report.imported += inserted
                    report.already_present += len(chunk.rows) - inserted
                bytes_done = max(bytes_done, chunk.bytes_read)
                if on_progress is not None:
                    on_progress(bytes_done, report)
        finally:
            await writer.close()

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(read())
            for _ in range(writers):
                group.create_task(write())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    finally:
        parser.shutdown(wait=True)
        chunks.close()
    report.seconds = time.perf_counter() - started
    return report
