"""PostgreSQL plumbing for the benchmarks: fresh databases, the app's schema and seed, pgbench runs."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
SHARED_BENCH = Path(os.environ.get("BENCH_SHARED", ROOT.parent / "shared" / "bench"))
"""The raw-SQL baselines: ``../shared/bench`` from the repository root (CI clones main beside shared/)."""
ADMIN_DSN = os.environ.get(
    "BENCH_DATABASE_URL", os.environ.get("TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
)
HOT_WALLET_BALANCE = 10**12
"""Every seeded wallet starts rich enough never to be refused during a run (like the pgbench schema)."""


def dsn_for(database: str) -> str:
    base, _, _ = ADMIN_DSN.replace("postgresql+asyncpg://", "postgresql://").rpartition("/")
    return f"{base}/{database}"


def sqlalchemy_url(database: str) -> str:
    return dsn_for(database).replace("postgresql://", "postgresql+asyncpg://", 1)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN.replace("postgresql+asyncpg://", "postgresql://"), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return name


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def load_reference_schema(database: str) -> None:
    """The baselines' own schema (100,000 accounts, 3,000,000 bills), exactly as the README loads it."""
    subprocess.run(
        [
            "psql",
            "-q",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            dsn_for(database),
            "-f",
            str(SHARED_BENCH / "schema.sql"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint()


def checkpoint() -> None:
    """Write out what the loads and seeds wrote, before anything is measured.

    Their WAL otherwise triggers a checkpoint (``checkpoint starting: wal`` in the server log) about a
    minute into the run, and its full-page writes raise PostgreSQL's CPU per request in whichever cell it
    lands: the one-client hot transfer measured 80/s and 8.5 ms of database CPU per request in two runs,
    and 217-329/s at 0.9-1.5 ms when replayed afterwards. Later checkpoints still come (that is the
    database's real cost under a steady write load), but not the seed's. ``CHECKPOINT`` needs a superuser
    (or pg_checkpoint); without one the benchmark goes on and says so."""
    try:
        asyncio.run(_admin("CHECKPOINT"))
    except asyncpg.InsufficientPrivilegeError:
        print("note: no CHECKPOINT (not a superuser): the first cells may pay for the seed's writes")


@dataclass(frozen=True)
class PgbenchResult:
    script: str
    clients: int
    tps: float
    latency_ms: float


_WARMED: set[tuple[str, str]] = set()
WARMUP_SECONDS = 4


def pgbench(database: str, script: str, clients: int, seconds: int) -> PgbenchResult:
    """``pgbench -n -M prepared -f SCRIPT -c N -j 2 -T S`` over TCP, as the baselines' README runs it.

    The first time a script meets a database it first runs :data:`WARMUP_SECONDS` unmeasured, as the app
    gets its own warm-up: on a database just loaded, the first 8 s of one_tap.sql measured 1,328 tps and
    the next three 3,414-3,429 (same machine, one after the other), so a cold baseline flattered the app's
    ratio by more than two."""
    if (database, script) not in _WARMED:
        pgbench_file(database, SHARED_BENCH / script, clients, WARMUP_SECONDS, label=script)
        _WARMED.add((database, script))
    return pgbench_file(database, SHARED_BENCH / script, clients, seconds, label=script)


def pgbench_file(
    database: str, path: Path, clients: int, seconds: int, label: str | None = None
) -> PgbenchResult:
    """:func:`pgbench` of any script file (e.g. the app's own statements, ``bench/app_sql.py``)."""
    if shutil.which("pgbench") is None:
        raise SystemExit("pgbench is not installed (apt-get install postgresql-client)")
    host_dsn = dsn_for(database)
    out = subprocess.run(
        [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-f",
            str(path),
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(seconds),
            host_dsn,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    tps = re.search(r"tps = ([0-9.]+)", out)
    latency = re.search(r"latency average = ([0-9.]+) ms", out)
    if tps is None or latency is None:
        raise RuntimeError(f"could not read pgbench output:\n{out}")
    return PgbenchResult(label or path.name, clients, float(tps.group(1)), float(latency.group(1)))
