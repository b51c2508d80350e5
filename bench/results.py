"""Benchmark of issue 9: issuing and checking signed results, and a month of statistics on PostgreSQL.

1. CPU only: rendering the result PDF (QR code, embedded original), signing and verifying a result.
2. PostgreSQL: ``--dossiers`` dossiers of one agency spread over November 2026 (5 procedures, a rating for
   one in ten), then the month's statistics ``--repeat`` times: wall and CPU ms per computation and database
   round trips, against the raw-SQL baseline (one aggregate query over the same rows: the least any
   implementation must read), run in the same process on the same database.

    python -m bench.results [--dossiers 20000] [--repeat 5]

No ``../shared/bench`` baseline covers this work, so the baseline is the aggregate query above. The machine
is shared: rates are taken under load; the CPU ms and round trips are the stable figures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics as stats_
import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, insert, text

from app.core.db import Database
from app.core.migrate import upgrade
from app.core.settings import KeyRing, load_settings
from app.services.catalogue import HOLIDAYS_FILE, NATIONAL_CATALOGUE_FILE, load_json
from app.services.dossier_models import Dossier
from app.services.result_models import DossierRating
from app.services.results import render_result_pdf
from app.services.service import load_catalogue, load_holidays
from app.services.signing import result_content, sign_result, verify_result
from app.services.statistics import agency_statistics
from bench.pg import create_database, drop_database, sqlalchemy_url

__all__ = ["main"]

HUE = ZoneInfo("Asia/Ho_Chi_Minh")
AGENCY = "PHU-XUAN"
PROCEDURES = ["1.001193", "1.000656", "1.000894", "1.004873", "2.000635"]


def _cpu_part() -> None:
    content = result_content(
        result_id=str(uuid.uuid4()),
        sha256="0" * 64,
        dossier_code="PHU-XUAN-261123-0001",
        procedure_code="1.001193",
        procedure_name="Đăng ký khai sinh",
        holder="Nguyễn Văn An",
        agency_code=AGENCY,
        agency_name="UBND phường Phú Xuân",
        issued_at=datetime(2026, 11, 23, 9, tzinfo=HUE),
    )
    original = b"%PDF-1.4\n" + random.randbytes(20_000) + b"\n%%EOF\n"
    render_result_pdf(
        content,
        verify_url="https://x/api/v1/results/1",
        original=original,
        original_type="application/pdf",
        original_name="kq.pdf",
    )  # warm fonts
    n = 20
    start = time.process_time()
    for _ in range(n):
        render_result_pdf(
            content,
            verify_url="https://x/api/v1/results/1",
            original=original,
            original_type="application/pdf",
            original_name="kq.pdf",
        )
    render_ms = (time.process_time() - start) * 1000 / n
    ring = KeyRing.parse("RESULT_KEYS", f"k1:{'s' * 40}")
    kid, signature = sign_result(ring, content)
    n = 2000
    start = time.process_time()
    for _ in range(n):
        sign_result(ring, content)
    sign_us = (time.process_time() - start) * 1e6 / n
    start = time.process_time()
    for _ in range(n):
        verify_result(ring, content, kid, signature, revoked=False)
    verify_us = (time.process_time() - start) * 1e6 / n
    print(f"result PDF render (20 KB original, QR): {render_ms:.1f} CPU ms each")
    print(f"sign: {sign_us:.0f} CPU µs each; verify: {verify_us:.0f} CPU µs each")


async def _seed(db: Database, count: int) -> None:
    await load_catalogue(db, load_json(NATIONAL_CATALOGUE_FILE))
    await load_holidays(db, load_json(HOLIDAYS_FILE))
    rng = random.Random(9)
    month = datetime(2026, 11, 1, 7, tzinfo=HUE)
    rows: list[dict[str, Any]] = []
    ratings: list[dict[str, Any]] = []
    for n in range(count):
        accepted = month + timedelta(days=rng.randrange(28), minutes=rng.randrange(600))
        finished = accepted + timedelta(hours=rng.randrange(4, 200)) if rng.random() < 0.8 else None
        dossier_id = uuid.uuid4()
        rows.append(
            {
                "id": dossier_id,
                "created_at": accepted,
                "code": f"{AGENCY}-B-{n:08d}",
                "procedure_code": PROCEDURES[n % len(PROCEDURES)],
                "applicant_id": uuid.uuid4(),
                "status": "done" if finished else "processing",
                "chain": [AGENCY],
                "chain_position": 0,
                "agency_code": AGENCY,
                "fee_amount": 50_000 if n % 3 == 0 else None,
                "fee_payment_id": uuid.uuid4() if n % 6 == 0 else None,
                "accepted_at": accepted,
                "received_at": accepted,
                "due_at": accepted + timedelta(days=5),
                "due_provisional": False,
                "paused_seconds": 0,
                "supplement_requests": int(rng.random() < 0.05),
                "finished_at": finished,
                "submission_channel": "online" if n % 4 else "desk",
                "updated_at": accepted,
            }
        )
        if finished and n % 10 == 0:
            ratings.append(
                {
                    "id": uuid.uuid4(),
                    "created_at": finished,
                    "dossier_id": dossier_id,
                    "agency_code": AGENCY,
                    "procedure_code": rows[-1]["procedure_code"],
                    "scores": {},
                    "total": rng.randrange(19),
                    "rated_by": uuid.uuid4(),
                }
            )
    async with db.transaction() as session:
        for start in range(0, len(rows), 2000):
            await session.execute(insert(Dossier), rows[start : start + 2000])
        if ratings:
            await session.execute(insert(DossierRating), ratings)


BASELINE = """
SELECT procedure_code,
       count(*) FILTER (WHERE accepted_at >= :s AND accepted_at < :e),
       count(*) FILTER (WHERE accepted_at >= :s AND accepted_at < :e AND submission_channel = 'online'),
       count(*) FILTER (WHERE finished_at >= :s AND finished_at < :e AND finished_at::date <= due_at::date),
       avg(extract(epoch FROM finished_at - received_at))
           FILTER (WHERE finished_at >= :s AND finished_at < :e)
FROM dossiers WHERE agency_code = :a AND ((accepted_at >= :s AND accepted_at < :e)
                                          OR (finished_at >= :s AND finished_at < :e))
GROUP BY procedure_code
"""


def _pg_part(count: int, repeat: int) -> None:
    name = create_database("bench_results")
    try:
        upgrade(sqlalchemy_url(name))
        asyncio.run(_measure(name, count, repeat))
    finally:
        drop_database(name)


async def _measure(name: str, count: int, repeat: int) -> None:
    settings = load_settings(
        {"DATABASE_URL": sqlalchemy_url(name), "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
    )
    db = Database(settings)
    try:
        t0 = time.perf_counter()
        await _seed(db, count)
        print(f"seeded {count} dossiers in {time.perf_counter() - t0:.1f} s")
        trips = 0

        def count_trip(*_: Any) -> None:
            nonlocal trips
            trips += 1

        event.listen(db.engine.sync_engine, "before_cursor_execute", count_trip)
        walls: list[float] = []
        cpus: list[float] = []
        trip_counts: list[int] = []
        sql_walls: list[float] = []
        start = datetime(2026, 11, 1, tzinfo=HUE)
        end = datetime(2026, 12, 1, tzinfo=HUE)
        for _ in range(repeat):
            trips = 0
            w, c = time.perf_counter(), time.process_time()
            async with db.read() as session:
                out = await agency_statistics(
                    session, settings, AGENCY, date(2026, 11, 1), date(2026, 11, 30)
                )
            walls.append((time.perf_counter() - w) * 1000)
            cpus.append((time.process_time() - c) * 1000)
            trip_counts.append(trips)
            w = time.perf_counter()
            async with db.read() as session:
                (await session.execute(text(BASELINE), {"s": start, "e": end, "a": AGENCY})).all()
            sql_walls.append((time.perf_counter() - w) * 1000)
        wall, sql = stats_.median(walls), stats_.median(sql_walls)
        print(
            f"statistics of a month ({out.total.received} received, {out.total.finished} finished, "
            f"{out.total.ratings} ratings): median {wall:.0f} ms wall, {stats_.median(cpus):.0f} CPU ms, "
            f"{max(trip_counts)} round trips; SQL aggregate baseline {sql:.0f} ms; ratio {wall / sql:.1f}x "
            "(taken under load from other engineers' runs)"
        )
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dossiers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    _cpu_part()
    _pg_part(args.dossiers, args.repeat)


if __name__ == "__main__":
    main()
