"""What a request costs the server, measured from outside it: CPU and database statements.

Rates on a shared machine swing with the other processes' load; CPU time per request and statements per
request do not, so the benchmarks print them next to the rates:
- :func:`tree_cpu_seconds`: user + system CPU of the server process and all its descendants (granian runs
  its workers as child processes), from ``/proc``; the database server's CPU is not in it.
- :func:`services_cpu_seconds`: the same for every PostgreSQL and Redis server process on the machine
  (``postgres``, ``redis-server``), so that a request's whole cost is printed: server + database + Redis +
  load generator. Their sum bounds the rate: ``2 cores / CPU per request``, whatever the code does with
  its time. Processes that end inside the window (pgbench's backends, an autovacuum worker) are missed, so
  measure the app's own window, whose pool connections live through it.
- :func:`statements`: the app's ``hue_db_statements_total`` counter from ``/metrics`` (every SQLAlchemy
  statement plus the money paths' raw driver calls; BEGIN/COMMIT are not counted).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 2


def cpu_bound(*ms_per_request: float) -> float:
    """The most requests per second the machine's cores allow when each costs these CPU milliseconds."""
    return CORES * 1000 / sum(ms_per_request)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants (0 if it is gone)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
        todo += _children(current)
    return total


def services_cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of the database and Redis server processes: ``{"db": ..., "redis": ...}``."""
    found = {"db": 0.0, "redis": 0.0}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        name = head.split("(", 1)[1]
        kind = "db" if name.startswith("postgres") else "redis" if name.startswith("redis-server") else ""
        if kind:
            fields = tail.split()
            found[kind] += (int(fields[11]) + int(fields[12])) / _TICK
    return found


def services_cpu_ms(before: dict[str, float], answered: int) -> dict[str, float]:
    """CPU ms per answer of the database and Redis since ``before`` (:func:`services_cpu_seconds`)."""
    after = services_cpu_seconds()
    return {
        f"{kind}_cpu_ms": (after[kind] - before[kind]) / answered * 1000 if answered else float("nan")
        for kind in after
    }


async def statements(host: str, port: int, workers: int = 2, tries: int = 40) -> float:
    """The server's ``hue_db_statements_total``, summed over its worker processes: each answers /metrics
    with its own counter and its pid (``hue_process_id``), and a new connection may land on any of them, so
    this asks until it has heard ``workers`` distinct processes (or ``tries`` times)."""
    seen: dict[float, float] = {}
    for _ in range(tries):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        body = await reader.read()
        writer.close()
        values = {}
        for line in body.decode(errors="replace").splitlines():
            for name in ("hue_db_statements_total", "hue_process_id"):
                if line.startswith(name + " "):
                    values[name] = float(line.split()[-1])
        if "hue_db_statements_total" not in values:
            return float("nan")
        seen[values.get("hue_process_id", 0.0)] = values["hue_db_statements_total"]
        if len(seen) >= workers:
            break
    return sum(seen.values()) if len(seen) >= workers else float("nan")
