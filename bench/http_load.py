"""The real transfer endpoint under load: ``POST /api/v1/me/wallet/transfers`` served by granian.

- ``seed``: in the (already migrated) app database, :data:`PAYERS` verified citizens with a payment PIN, a
  signed-in session on a device older than 24 h and a funded wallet, :data:`RECEIVERS` citizens with an
  open wallet, and one more receiver for the one-receiver case; writes their tokens and phones to a JSON
  file. Users are made with the test suite's factory (the same path as sign-in: session, device, token).
- ``server``: the app on granian (:data:`WORKERS` API processes, ``BENCH_WORKERS``), with
  the ``payments`` rate limit raised so that the bench measures the money path, not the limiter.
- ``load``: N clients, each its own keep-alive HTTP/1.1 connection and its own payer, sending transfers
  with the PIN and a fresh Idempotency-Key each; prints one JSON line (rate, p50, p99, client CPU/req).
  The client is a few lines of asyncio streams, so that the load generator costs little of the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

PAYERS = 64
RECEIVERS = 64
PIN = "246810"
FUNDS = 50_000_000
ROOT = Path(__file__).resolve().parent.parent


def server_env(url: str, redis_url: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": f"bench{port}:",
            # As in production (and bench.one_tap): no outbox dispatcher or scheduler inside the API process,
            # so the server's CPU per request is the requests' own.
            "RUN_WORKER_IN_PROCESS": "false",
            "RATE_LIMIT_PAYMENTS": "100000000/60",
            "RATE_LIMIT_DEFAULT": "100000000/60",
            "LOG_LEVEL": "WARNING",
            "DB_POOL_SIZE": "8",
            "HOST": "127.0.0.1",
            "PORT": str(port),
        }
    )
    return env


async def _seed(url: str, redis_url: str, out: Path) -> None:
    from app.core.settings import load_settings
    from app.main import create_app
    from app.wallet import ledger, service
    from app.wallet.ledger import AccountType, Entry, credit, debit
    from tests.factories import make_user

    settings = load_settings(server_env(url, redis_url, 65000))
    app = create_app(settings)
    async with app.lifespan():
        db = app.state.db
        payers, receivers = [], []
        for _ in range(PAYERS):
            user = await make_user(app, pin=PIN, password=None)
            async with db.transaction() as session:
                wallet = await service.wallet_account_id(session, user.user_id, create=True)
                bank = ledger.system_account(AccountType.GUARANTEE_BANK)
                await ledger.post(
                    session, Entry(kind="topup", postings=[debit(bank, FUNDS), credit(wallet, FUNDS)])
                )
            payers.append({"token": user.access_token, "phone": user.phone})
        for _ in range(RECEIVERS + 1):
            user = await make_user(app, pin=None, password=None)
            async with db.transaction() as session:
                await service.wallet_account_id(session, user.user_id, create=True)
            receivers.append(user.phone)
    people = {"payers": payers, "receivers": receivers[:-1], "hot": receivers[-1]}
    await asyncio.to_thread(out.write_text, json.dumps(people))


def seed(url: str, redis_url: str, out: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.http_load",
            "seed",
            "--url",
            url,
            "--redis",
            redis_url,
            "--out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )


WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
"""API processes (granian workers). Two: production runs several stateless API processes (DESIGN.md), and
this machine has two cores, which the app, PostgreSQL and the load generator share."""


def start_server(url: str, redis_url: str, port: int, workers: int = WORKERS) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "hue"), "serve", "--port", str(port), "--workers", str(workers)],
        env=server_env(url, redis_url, port),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            asyncio.run(_get(port, "/healthz"))
            return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("the app did not start")


async def _get(port: int, path: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    await reader.read()
    writer.close()


async def load(
    port: int,
    people: dict[str, Any],
    scenario: str,
    clients: int,
    seconds: float,
    warmup: float,
    server_pid: int | None = None,
) -> dict[str, float]:
    from bench.http_client import read_response
    from bench.measure import services_cpu_ms, services_cpu_seconds, statements, tree_cpu_seconds

    latencies: list[float] = []
    errors: dict[int, int] = {}
    sample: list[bytes] = []
    state = {"measuring": False, "stop": False}

    async def client(i: int) -> None:
        payer = people["payers"][i]
        rnd = random.Random(i)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        auth = f"Authorization: Bearer {payer['token']}\r\n".encode()
        while not state["stop"]:
            to = people["hot"] if scenario == "hot" else rnd.choice(people["receivers"])
            body = json.dumps({"phone": to, "amount": rnd.randint(1_000, 5_000), "pin": PIN}).encode()
            request = (
                b"POST /api/v1/me/wallet/transfers HTTP/1.1\r\nHost: bench\r\n"
                b"Content-Type: application/json\r\n"
                + auth
                + f"Idempotency-Key: {uuid.uuid4()}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            started = time.perf_counter()
            writer.write(request)
            status, answer = await read_response(reader)
            if state["measuring"]:
                if status == 201:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[status] = errors.get(status, 0) + 1
                    if not sample:
                        sample.append(answer[:300])
        writer.close()

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    await asyncio.sleep(warmup)
    server_cpu = tree_cpu_seconds(server_pid) if server_pid else 0.0
    services = services_cpu_seconds()
    sql = await statements("127.0.0.1", port, WORKERS)
    state["measuring"] = True
    began, cpu_began = time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    state["measuring"] = False
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    server_cpu = (tree_cpu_seconds(server_pid) if server_pid else float("nan")) - server_cpu
    answered = len(latencies) + sum(errors.values())
    services_ms = services_cpu_ms(services, answered)
    sql = await statements("127.0.0.1", port, WORKERS) - sql
    state["stop"] = True
    await asyncio.gather(*tasks)
    latencies.sort()
    n = len(latencies)
    if errors:
        print(f"errors {errors} e.g. {sample[0]!r}", file=sys.stderr)
    return {
        "count": n,
        "rate": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000 if n else 0.0,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else 0.0,
        "cpu_ms": cpu / n * 1000 if n else 0.0,
        # The server's CPU and statements per answer, over the measured window (answers finishing just
        # after the window make these slightly high, by at most `clients` requests' worth).
        "server_cpu_ms": server_cpu / answered * 1000 if answered else 0.0,
        "statements": sql / answered if answered else 0.0,
        **services_ms,
        "errors": float(sum(errors.values())),
    }


def run_load(
    port: int, people_file: Path, scenario: str, clients: int, seconds: int, server_pid: int | None = None
) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.http_load",
            "load",
            "--port",
            str(port),
            "--people",
            str(people_file),
            "--scenario",
            scenario,
            "--clients",
            str(clients),
            "--seconds",
            str(seconds),
            *(["--server-pid", str(server_pid)] if server_pid else []),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if out.stderr.strip():
        print(out.stderr.strip()[-500:], file=sys.stderr)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["seed", "load"])
    parser.add_argument("--url")
    parser.add_argument("--redis")
    parser.add_argument("--out")
    parser.add_argument("--port", type=int)
    parser.add_argument("--people")
    parser.add_argument("--scenario", choices=["transfer", "hot"], default="transfer")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--server-pid", type=int)
    args = parser.parse_args()
    if args.command == "seed":
        asyncio.run(_seed(args.url, args.redis, Path(args.out)))
        return
    people = json.loads(Path(args.people).read_text())
    result = asyncio.run(
        load(args.port, people, args.scenario, args.clients, args.seconds, args.warmup, args.server_pid)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
