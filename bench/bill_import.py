"""Benchmark: importing a biller's monthly batch file of 250,000 and 1,000,000 bills on PostgreSQL.

Runs the real command (``hue bills import``) in a child process per file and reports wall time, rows per
second and the child's peak resident memory (from ``wait4``), so memory flatness shows as the ratio of the
1,000,000-row peak to the 250,000-row peak. Then imports the 1,000,000-row file again: nothing may change.
Goal (issue 7): 1,000,000 rows in under 60 s, memory flat as the file grows.

    python -m bench.bill_import [--rows 250000,1000000] [--admin-url postgresql://root@127.0.0.1:5432/test]

A fresh database is created on the server of ``--admin-url`` (default ``BENCH_DATABASE_URL`` or the test
server), migrated, and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.bills.schemas import BillerIn, CustomerInput, SettlementAccount
from app.bills.service import put_biller
from app.core.db import Database
from app.core.migrate import upgrade
from app.core.settings import load_settings

__all__ = ["Run", "generate", "main", "run"]

BILLER = "BENCH_BATCH"
DEFAULT_ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Võ", "Đặng", "Hồ", "Tôn Thất"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Hà", "Hạnh", "Hoa", "Hùng", "Lan", "Long", "Mai", "Nam"]


@dataclass(frozen=True, slots=True)
class Run:
    label: str
    rows: int
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float
    """CPU time of the importing process (the rest of the wall time is the database's work)."""
    summary: str

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def generate(path: Path, rows: int, *, prefix: str) -> int:
    """Write a realistic sanitation-fee batch file of ``rows`` bills; returns its size in bytes."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("bill_id,customer_code,period,amount,due_date,customer_name,description\n")
        buffer: list[str] = []
        for i in range(rows):
            name = f"{FAMILY[i % len(FAMILY)]} Văn {GIVEN[(i // 7) % len(GIVEN)]}"
            amount = (20 + (i * 7919) % 21) * 1000
            buffer.append(
                f"{prefix}-{i:08d},VS{i:08d},2026-10,{amount},2026-11-30,{name},"
                f"Phí thu gom rác sinh hoạt tháng 10/2026\n"
            )
            if len(buffer) == 10_000:
                out.write("".join(buffer))
                buffer.clear()
        out.write("".join(buffer))
    return path.stat().st_size


def _import(database_url: str, path: Path, label: str, rows: int, extra: list[str]) -> Run:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "APP_ENV": "development"}
    command = [sys.executable, "-c", "from app.cli import main; main()", "bills", "import"]
    started = time.perf_counter()
    child = subprocess.Popen(
        [*command, "--biller", BILLER, *extra, str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"import failed ({child.returncode}):\n{output}")
    summary = next((line for line in reversed(output.splitlines()) if " rows in " in line), "").strip()
    return Run(label, rows, seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, summary)


async def _prepare(database_url: str) -> None:
    settings = load_settings({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"})
    db = Database(settings)
    try:
        await put_biller(
            db,
            BILLER,
            BillerIn(
                name="Benchmark sanitation fee biller",
                category="sanitation_fee",
                presentment="batch",
                amount_rule="exact",
                customer_input=CustomerInput(
                    label_vi="Mã hộ",
                    label_en="Household code",
                    pattern=r"^VS[0-9]{8}$",
                    min_length=10,
                    max_length=10,
                    example="VS00000001",
                ),
                settlement=SettlementAccount(
                    bank_bin="970418", account_number="5510000000003", account_name="X"
                ),
            ),
            production=False,
        )
    finally:
        await db.dispose()


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run(sizes: list[int], admin_url: str = DEFAULT_ADMIN_URL, extra: list[str] | None = None) -> list[Run]:
    """Create a database, import a file of each size (then the largest again), print and return the runs."""
    extra = extra or []
    name = f"hue_bench_bills_{uuid.uuid4().hex[:8]}"
    base = admin_url.rsplit("/", 1)[0]
    database_url = f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    runs: list[Run] = []
    try:
        upgrade(database_url)
        asyncio.run(_prepare(database_url))
        with tempfile.TemporaryDirectory(prefix="hue-bench-") as folder:
            files: list[tuple[int, Path]] = []
            for size in sizes:
                path = Path(folder) / f"bills_{size}.csv"
                megabytes = generate(path, size, prefix=f"B{size}") / 1e6
                print(f"generated {path.name}: {size:,} rows, {megabytes:.0f} MB", flush=True)
                files.append((size, path))
            for size, path in files:
                runs.append(_import(database_url, path, f"import {size:,}", size, extra))
                print(_line(runs[-1]), flush=True)
            size, path = files[-1]
            runs.append(_import(database_url, path, f"again {size:,}", size, extra))
            print(_line(runs[-1]), flush=True)
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    firsts = runs[: len(sizes)]
    if len(firsts) > 1:
        grow = firsts[-1].rows / firsts[0].rows
        ratio = firsts[-1].peak_rss_mb / firsts[0].peak_rss_mb
        print(f"peak RSS x{ratio:.2f} for x{grow:.0f} rows (flat is ~x1)")
    largest = firsts[-1]
    verdict = "meets" if largest.seconds < 60 else "misses"
    print(f"{largest.rows:,} rows in {largest.seconds:.1f} s: {verdict} the goal of < 60 s")
    return runs


def _line(r: Run) -> str:
    return (
        f"{r.label:>18}: {r.seconds:6.1f} s  {r.rate:9,.0f} rows/s  peak RSS {r.peak_rss_mb:6.1f} MB"
        f"  importer CPU {r.cpu_seconds:5.1f} s  | {r.summary}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bill_import", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="250000,1000000", help="comma-separated file sizes, ascending")
    parser.add_argument(
        "--admin-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL server to create the db on"
    )
    parser.add_argument("--writers", type=int, default=None, help="passed to hue bills import")
    parser.add_argument("--chunk-size", type=int, default=None, help="passed to hue bills import")
    args = parser.parse_args(argv)
    extra = []
    if args.writers is not None:
        extra += ["--writers", str(args.writers)]
    if args.chunk_size is not None:
        extra += ["--chunk-size", str(args.chunk_size)]
    run([int(n) for n in args.rows.split(",")], args.admin_url, extra)


if __name__ == "__main__":
    main()
