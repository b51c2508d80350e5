"""``make bench``: the money paths' throughput and latency, next to the raw-SQL baselines in the same run.

For each client count (1, 16, 64 by default), interleaved so that both see the same machine:
- ``pgbench -n -M prepared -f ../shared/bench/transfer.sql -c N -j 2 -T S`` against a fresh database loaded
  with ``schema.sql``, then the app's transfer between two random wallets;
- ``hot.sql`` (every payment to one receiving account, whose balance row is locked), then the app's payment
  from a random wallet to one shop.
The app side runs against its own fresh, migrated database with 10,000 funded wallets. At the end the app
database's books are checked (postings sum to zero, every balance equals its postings, no wallet below
zero), so a fast but wrong ledger cannot pass.

App paths (``--paths``, default ``http,appsql,service``):
- ``http``: the real endpoint, ``POST /api/v1/me/wallet/transfers`` on granian (identity level, PIN,
  limits, idempotency key, recipient lookup by phone, inbox notice, one posting), one payer per client
  (``bench/http_load.py``). In ``hot`` every payer sends to ONE citizen's wallet: a wallet is a locked
  account, so this is the same serial lock as hot.sql, behind much more work per request;
- ``service``: below HTTP (``bench/service_load.py``), ``Database.transaction()`` + ``ledger.post``; its
  ``hot`` pays one shop (a receive-only account, never locked);
- ``sql``: asyncpg pool + BEGIN / ledger_post / COMMIT (the floor under it);
- ``appsql``: the HTTP transfer's own two statements (its context read and ``wallet_transfer``, the texts
  imported from the app) run by pgbench on the app's database, each client its own payer as over HTTP
  (``bench/app_sql.py``): the HTTP path's ceiling if the API process cost nothing. Its p50 column is
  pgbench's average latency (pgbench prints no percentiles).

At the end, for each client count, ``http / appsql`` (the share of its own SQL's rate the HTTP path keeps:
what Python costs) and ``appsql / baseline`` (the share of the raw-SQL baseline the product's required SQL
work keeps: idempotency claim and row, usage limits, the posting, the notification).

Options: ``--seconds``, ``--clients 1,16,64``, ``--runs N`` (medians), ``--paths``, ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import app_sql
from bench.http_load import run_load, start_server
from bench.http_load import seed as seed_http
from bench.measure import CORES, cpu_bound
from bench.pg import (
    SHARED_BENCH,
    checkpoint,
    create_database,
    drop_database,
    load_reference_schema,
    pgbench,
    sqlalchemy_url,
)
from bench.seed import WALLETS, seed_app_database

REDIS_URL = os.environ.get("BENCH_REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
HTTP_PORT = int(os.environ.get("BENCH_HTTP_PORT", "18431"))

BASELINE = {"transfer": "transfer.sql", "hot": "hot.sql"}


@dataclass
class Cell:
    """Every run's figures for one (scenario, path, clients)."""

    rate: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    statements: list[float] = field(default_factory=list)
    db_cpu: list[float] = field(default_factory=list)
    redis_cpu: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)

    def median(self, values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")


def app_load(database: str, path: str, scenario: str, clients: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.service_load",
            "--url",
            sqlalchemy_url(database),
            "--path",
            path,
            "--scenario",
            scenario,
            "--clients",
            str(clients),
            "--seconds",
            str(seconds),
            "--pool",
            str(min(max(clients, 2), 20)),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def app_sql_load(database: str, scenario: str, clients: int, seconds: int) -> dict[str, float]:
    ran = app_sql.run(database, scenario, clients, seconds)
    return {"rate": ran.tps, "p50_ms": ran.latency_ms, "p99_ms": float("nan"), "cpu_ms": float("nan")}


def print_shares(cells: dict[tuple[str, str, int], Cell]) -> None:
    """Where the gap to the baseline goes: Python (http / appsql), the product's SQL (appsql / baseline)."""
    lines = []
    for (scenario, path, n), cell in cells.items():
        own = cells.get((scenario, "appsql", n))
        if path != "http" or own is None:
            continue
        http, ceiling, base = cell.median(cell.rate), own.median(own.rate), own.median(own.baseline)
        lines.append(
            f"{scenario:9s} c={n:<3d} http {http:6.0f}/s = {http / ceiling:.2f} of its own SQL "
            f"({ceiling:.0f}/s), which is {ceiling / base:.2f} of {BASELINE[scenario]} ({base:.0f}/s)"
        )
    if lines:
        print("\nwhere the gap goes (http / appsql: Python's share; appsql / baseline: the SQL's share):")
        print("\n".join(lines))


def check_books(database: str) -> tuple[bool, str]:
    from app.core.db import Database
    from app.core.settings import load_settings
    from app.wallet import ledger

    async def run() -> tuple[bool, str]:
        db = Database(load_settings({"DATABASE_URL": sqlalchemy_url(database), "LOG_LEVEL": "WARNING"}))
        try:
            folded = await ledger.fold_balance_deltas(db)
            async with db.read() as session:
                report = await ledger.check_books(session)
        finally:
            await db.dispose()
        detail = "all postings sum to zero, every balance equals its postings, no wallet below zero"
        return report.ok, f"{folded} deltas folded; " + (detail if report.ok else repr(report)[:2000])

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--paths", default="http,appsql,service")
    parser.add_argument("--scenarios", default="transfer,hot")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    paths = args.paths.split(",")
    scenarios = args.scenarios.split(",")

    print(f"baselines from {SHARED_BENCH}", flush=True)
    started = time.perf_counter()
    reference = create_database("hue_bench_ref")
    app = create_database("hue_bench_app")
    server = None
    people = Path(tempfile.mkdtemp(prefix="hue_bench_")) / "people.json"
    try:
        load_reference_schema(reference)
        seed_app_database(app)
        if "http" in paths or "appsql" in paths:
            seed_http(sqlalchemy_url(app), REDIS_URL, people)
        if "appsql" in paths:
            app_sql.prepare(app, people)
        checkpoint()
        if "http" in paths:
            server = start_server(sqlalchemy_url(app), REDIS_URL, HTTP_PORT)
        print(f"databases ready in {time.perf_counter() - started:.0f} s ({WALLETS} wallets)", flush=True)
        cells: dict[tuple[str, str, int], Cell] = {}
        for run in range(args.runs):
            for n in clients:
                for scenario in scenarios:
                    base = pgbench(reference, BASELINE[scenario], n, args.seconds)
                    for path in paths:
                        if path == "http":
                            pid = server.pid if server is not None else None
                            result = run_load(HTTP_PORT, people, scenario, n, args.seconds, pid)
                        elif path == "appsql":
                            result = app_sql_load(app, scenario, n, args.seconds)
                        else:
                            result = app_load(app, path, scenario, n, args.seconds)
                        cell = cells.setdefault((scenario, path, n), Cell())
                        cell.rate.append(result["rate"])
                        cell.p50.append(result["p50_ms"])
                        cell.p99.append(result["p99_ms"])
                        cell.cpu.append(result["cpu_ms"])
                        cell.server_cpu.append(result.get("server_cpu_ms", float("nan")))
                        cell.statements.append(result.get("statements", float("nan")))
                        cell.db_cpu.append(result.get("db_cpu_ms", float("nan")))
                        cell.redis_cpu.append(result.get("redis_cpu_ms", float("nan")))
                        cell.baseline.append(base.tps)
                        ratio = result["rate"] / base.tps
                        print(
                            f"run {run + 1} {scenario:8s} {path:7s} c={n:<3d} app {result['rate']:7.0f}/s "
                            f"p50 {result['p50_ms']:6.1f} ms p99 {result['p99_ms']:6.1f} ms | "
                            f"{BASELINE[scenario]} {base.tps:7.0f} tps | ratio {ratio:.2f}"
                            + (
                                f" | server {result['server_cpu_ms']:.2f} CPU ms/req,"
                                f" {result['statements']:.1f} statements/req;"
                                f" database {result['db_cpu_ms']:.2f},"
                                f" Redis {result['redis_cpu_ms']:.2f} CPU ms/req"
                                if "server_cpu_ms" in result
                                else ""
                            ),
                            flush=True,
                        )
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
            server = None
        ok, books = check_books(app)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            drop_database(reference)
            drop_database(app)
    print()
    print(f"Medians of {args.runs} run(s), {args.seconds} s each (paths: see --help)")
    header = f"{'scenario':9s} {'path':8s} {'clients':>7s} {'app/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s}"
    header += f" {'cpu ms':>7s} {'srv cpu':>7s} {'db cpu':>7s} {'redis':>6s} {'bound':>6s} {'stmts':>6s}"
    header += f" {'baseline':>12s} {'tps':>7s} {'ratio':>6s}"
    print(header)
    for (scenario, path, n), cell in cells.items():
        rate, tps = cell.median(cell.rate), cell.median(cell.baseline)
        ratio = statistics.median([r / b for r, b in zip(cell.rate, cell.baseline, strict=True)])
        p50, p99, cpu = cell.median(cell.p50), cell.median(cell.p99), cell.median(cell.cpu)
        server_cpu = cell.median(cell.server_cpu) if cell.server_cpu else float("nan")
        stmts = cell.median(cell.statements) if cell.statements else float("nan")
        db_cpu, redis_cpu = cell.median(cell.db_cpu), cell.median(cell.redis_cpu)
        bound = cpu_bound(cpu, server_cpu, db_cpu, redis_cpu)
        print(
            f"{scenario:9s} {path:8s} {n:7d} {rate:8.0f} {p50:7.1f} {p99:7.1f}"
            f" {cpu:7.2f} {server_cpu:7.2f} {db_cpu:7.2f} {redis_cpu:6.2f} {bound:6.0f} {stmts:6.1f}"
            f" {BASELINE[scenario]:>12s} {tps:7.0f} {ratio:6.2f}"
        )
    print(
        "cpu ms: the load generator's CPU per request (http) or the whole service process's (service, sql);"
        " srv cpu: the HTTP server's CPU per request; db cpu / redis: PostgreSQL's and Redis's CPU per"
        " request;"
        f" bound: {CORES} cores / the four CPU figures, the rate the machine allows that request at all;"
        " stmts: database statements per request (/metrics)."
    )
    print_shares(cells)
    print(
        f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores shared with other work: rates are noisy)"
    )
    print(f"\nbooks balanced after the runs: {'yes' if ok else 'NO'} ({books})")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
