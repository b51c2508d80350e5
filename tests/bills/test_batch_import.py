"""A biller's monthly CSV: every row checked, bad rows reported with line and reason, good rows imported,
and the same file imported twice changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from app.bills.batch_import import ImportFileError, RejectedRow, import_bill_file
from app.bills.models import Bill
from app.cli import cli
from app.core.db import Database
from app.core.settings import get_settings
from tests.conftest import Backend

HEADER = "bill_id,customer_code,period,amount,due_date,customer_name,description\n"
GOOD = [
    "HEP-001,VS00000001,2026-10,30000,2026-11-30,Nguyễn Văn An,Phí rác tháng 10\n",
    "HEP-002,vs 0000 0002,2026-10,25000,2026-11-30,Trần Thị Bình,\n",
    'HEP-003,VS00000003,2026-10,40000,2026-11-30,"Lê, Văn Châu","Phí rác, tháng 10"\n',
]
BAD = [
    ("HEP-004,VS0004,2026-10,30000,2026-11-30,Phạm Dũng,\n", "customer_code"),
    ("HEP-005,VS00000005,2026-13,30000,2026-11-30,Hồ Lan,\n", "period"),
    ("HEP-006,VS00000006,2026-10,30.000,2026-11-30,Võ Nam,\n", "amount"),
    ("HEP-007,VS00000007,2026-10,-5,2026-11-30,Võ Nam,\n", "amount"),
    ("HEP-008,VS00000008,2026-10,0,2026-11-30,Võ Nam,\n", "amount"),
    ("HEP-009,VS00000009,2026-10,30000,30/11/2026,Võ Nam,\n", "due_date"),
    ("HEP-010,VS00000010,2026-10,30000\n", "fields"),
    (",VS00000011,2026-10,30000,2026-11-30,Võ Nam,\n", "bill_id"),
]


def write(path: Path, lines: list[str], *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "".join(lines).encode())
    return path


async def count_bills(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Bill)) or 0)


async def test_good_rows_imported_bad_rows_reported(
    tmp_path: Path, db: Database, billers: dict[str, Any]
) -> None:
    lines = [HEADER, GOOD[0], BAD[0][0], GOOD[1], *(line for line, _ in BAD[1:]), GOOD[2]]
    rejected: list[RejectedRow] = []
    report = await import_bill_file(
        db, "HEPCO_BATCH", write(tmp_path / "t10.csv", lines, bom=True), on_reject=rejected.append
    )
    assert (report.rows, report.imported, report.already_present, report.rejected) == (11, 3, 0, 8)
    assert [r.line for r in rejected] == [3, *range(5, 12)]
    for row, (_, topic) in zip(rejected, BAD, strict=True):
        assert topic in row.reason, row
    async with db.read() as session:
        stored = {b.external_id: b for b in (await session.scalars(select(Bill))).all()}
    assert set(stored) == {"HEP-001", "HEP-002", "HEP-003"}
    assert stored["HEP-002"].customer_code == "VS00000002"
    assert stored["HEP-003"].customer_name == "Lê, Văn Châu"
    assert stored["HEP-002"].description is None
    assert {(b.status, b.source, b.amount > 0) for b in stored.values()} == {("unpaid", "batch", True)}


async def test_the_same_file_twice_changes_nothing(
    tmp_path: Path, db: Database, billers: dict[str, Any]
) -> None:
    path = write(tmp_path / "t10.csv", [HEADER, *GOOD])
    first = await import_bill_file(db, "HEPCO_BATCH", path)
    async with db.transaction() as session:  # one of them was paid in the meantime
        await session.execute(update(Bill).where(Bill.external_id == "HEP-001").values(status="paid"))
    again = await import_bill_file(db, "HEPCO_BATCH", path)
    assert (first.imported, first.already_present) == (3, 0)
    assert (again.imported, again.already_present, again.rejected) == (0, 3, 0)
    assert await count_bills(db) == 3
    async with db.read() as session:
        assert await session.scalar(select(Bill.status).where(Bill.external_id == "HEP-001")) == "paid"


async def test_large_files_go_through_in_chunks(
    tmp_path: Path, db: Database, billers: dict[str, Any]
) -> None:
    rows = [f"B-{i:05d},VS{i:08d},2026-10,{20000 + i},2026-11-30,Hộ {i},\n" for i in range(2500)]
    rows[1234] = "B-01234,VS01234,2026-10,1,2026-11-30,x,\n"
    seen: list[int] = []
    report = await import_bill_file(
        db,
        "HEPCO_BATCH",
        write(tmp_path / "big.csv", [HEADER, *rows]),
        chunk_size=300,
        on_progress=lambda b, r: seen.append(b),
    )
    assert (report.imported, report.rejected) == (2499, 1)
    assert seen == sorted(seen)
    assert seen[-1] == (tmp_path / "big.csv").stat().st_size
    assert await count_bills(db) == 2499


async def test_rows_with_bytes_that_are_not_utf8_are_refused_alone(
    tmp_path: Path, db: Database, billers: dict[str, Any]
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        HEADER.encode()
        + GOOD[0].encode()
        + b"HEP-X,VS00000099,2026-10,30000,2026-11-30,Nguy\xe1n,\n"
        + GOOD[1].encode()
    )
    rejected: list[RejectedRow] = []
    report = await import_bill_file(db, "HEPCO_BATCH", path, on_reject=rejected.append)
    assert (report.imported, report.rejected) == (2, 1)
    assert rejected[0].line == 3
    assert "UTF-8" in rejected[0].reason


UNIMPORTABLE = [
    ("HEPCO_BATCH", "", "empty"),
    ("HEPCO_BATCH", "bill_id,customer_code,amount\nX,VS00000001,1\n", "period"),
    ("EVN_CPC_HUE", HEADER, "fetch"),
    ("NOBODY", HEADER, "NOBODY"),
]


async def test_files_that_cannot_be_imported(tmp_path: Path, db: Database, billers: dict[str, Any]) -> None:
    for biller, content, problem in UNIMPORTABLE:
        with pytest.raises(ImportFileError) as caught:
            await import_bill_file(db, biller, write(tmp_path / "f.csv", [content]))
        assert problem in str(caught.value)
    assert await count_bills(db) == 0


def test_command_line(
    tmp_path: Path, backend_env: Backend, monkeypatch: pytest.MonkeyPatch, billers: dict[str, Any]
) -> None:
    monkeypatch.setenv("DATABASE_URL", backend_env.database_url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    try:
        good = write(tmp_path / "good.csv", [HEADER, *GOOD])
        runner = CliRunner()
        first = runner.invoke(cli, ["bills", "import", "--biller", "HEPCO_BATCH", str(good)])
        assert first.exit_code == 0, first.output
        assert "3 imported" in first.output
        again = runner.invoke(cli, ["bills", "import", "--biller", "HEPCO_BATCH", str(good)])
        assert "0 imported" in again.output
        assert "3 already present" in again.output

        mixed = write(tmp_path / "mixed.csv", [HEADER, BAD[1][0], GOOD[0]])
        rejects = tmp_path / "rejects.csv"
        partial = runner.invoke(
            cli, ["bills", "import", "--biller", "HEPCO_BATCH", "--rejects", str(rejects), str(mixed)]
        )
        assert partial.exit_code == 1
        assert "line 2:" in partial.output
        assert "1 rejected" in partial.output
        assert rejects.read_text().splitlines()[1].startswith("2,period")

        refused = runner.invoke(cli, ["bills", "import", "--biller", "EVN_CPC_HUE", str(good)])
        assert refused.exit_code == 2
    finally:
        get_settings.cache_clear()
