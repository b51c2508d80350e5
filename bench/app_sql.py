"""The app's own transfer SQL under pgbench: the ceiling of the HTTP path with no Python at all.

The HTTP transfer sends PostgreSQL two statements (``app/wallet/transfer_pg.py``): the context read
(``_CONTEXT``: the idempotency answer, the recipient, the payer's facts) and the one-call write
(``_TRANSFER``: ``wallet_transfer``, i.e. the key's claim, usage counting in four buckets, the posting, the
notification and the idempotency row, in its own transaction). This module runs exactly those two
statement texts, imported from the app, through ``pgbench -M prepared`` on the app's benchmark database,
each transaction one transfer from the client's own payer (as ``bench/http_load.py`` does) to a random
receiver or to the one hot receiver. The amounts are 100-500 đồng, a tenth of the HTTP bench's: pgbench
runs 3-4 times as fast, a payer's funds and monthly cap must last the whole run at one client, and an
amount costs the same whatever its size. What pgbench reaches is what the HTTP path could reach if the API
process cost nothing: the rate of the HTTP path divided by it is the share Python leaves, and it divided by
transfer.sql is the share the product's required SQL work leaves.

pgbench cannot bind uuids or strings from its own variables, so the arguments come from a helper function
(``bench_transfer_args``: the payer and receiver by number, fresh ids and key, the texts and the body
pieces shaped as the app makes them) joined laterally to the call; the context read takes its parameters
as scalar subqueries of the same helper tables. Both add index lookups on 65-row tables and no round trip.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path

import asyncpg

from app.core.db import utcnow
from app.wallet.limits import _buckets as limit_buckets
from app.wallet.transfer_pg import _CONTEXT, _TRANSFER
from bench.http_load import PAYERS, RECEIVERS
from bench.pg import PgbenchResult, dsn_for, pgbench_file

__all__ = ["prepare", "run"]

_TABLES = """
DROP TABLE IF EXISTS bench_payers, bench_receivers;
CREATE TABLE bench_payers (n int PRIMARY KEY, uid uuid NOT NULL, wallet uuid NOT NULL, sid uuid NOT NULL,
                           name text NOT NULL);
CREATE TABLE bench_receivers (n int PRIMARY KEY, uid uuid NOT NULL, phone text NOT NULL, wallet uuid NOT NULL,
                              name text NOT NULL);
"""

_FILL_PAYERS = """
INSERT INTO bench_payers
SELECT p.n, u.id, a.id,
       (SELECT s.id FROM auth_sessions s WHERE s.user_id = u.id ORDER BY s.created_at DESC LIMIT 1),
       coalesce(u.full_name, '')
  FROM unnest($1::text[]) WITH ORDINALITY AS p(phone, n)
  JOIN users u ON u.phone = p.phone
  JOIN ledger_accounts a ON a.key = 'citizen_wallet:' || u.id::text
"""
_FILL_RECEIVERS = """
INSERT INTO bench_receivers
SELECT r.n - 1, u.id, u.phone, a.id, coalesce(u.full_name, '')
  FROM unnest($1::text[]) WITH ORDINALITY AS r(phone, n)
  JOIN users u ON u.phone = r.phone
  JOIN ledger_accounts a ON a.key = 'citizen_wallet:' || u.id::text;
"""

# The 24 arguments of wallet_transfer as app/wallet/transfer_pg.py builds them for one transfer.
_ARGS = """
CREATE OR REPLACE FUNCTION bench_transfer_args(p_payer int, p_receiver int, p_amount bigint)
RETURNS TABLE (a1 text, a2 text, a3 bigint, a4 bytea, a5 uuid, a6 text[], a7 bigint[], a8 bigint, a9 bigint,
               a10 uuid, a11 text, a12 text, a13 text, a14 uuid[], a15 bigint[], a16 uuid, a17 uuid,
               a18 text, a19 text, a20 text, a21 text, a22 text, a23 text, a24 text[])
LANGUAGE sql AS $fn$
    SELECT 'user:' || p.uid::text, k.key, hashtextextended(k.key, 0), sha256(convert_to(k.key, 'UTF8')),
           p.uid, %(buckets)s::text[], ARRAY[NULL, 100000000, 100000000, NULL]::bigint[], NULL::bigint,
           p_amount, k.entry, gen_random_uuid()::text, 'Chuyển tiền',
           json_build_object('message', '', 'to_user_id', r.uid, 'category', 'transfer',
                             'payer_id', p.uid)::text,
           ARRAY[p.wallet, r.wallet], ARRAY[-p_amount, p_amount], gen_random_uuid(), r.uid,
           'wallet.transfer_received', 'Bạn vừa nhận tiền',
           p.name || ' đã chuyển ' || p_amount || ' đồng vào ví của bạn.', 'Money received',
           p.name || ' sent ' || p_amount || ' VND to your wallet.',
           json_build_object('transfer_id', k.entry)::text,
           ARRAY['{"id":"' || k.entry || '","amount":' || -p_amount
                 || ',"message":"","created_at":"0001-01-01T00:00:00.000001Z",'
                 || '"recipient_name":"N***** V** A*",'
                 || '"available_after":', ',"balance_after":null}']
      FROM bench_payers p, bench_receivers r,
           (SELECT gen_random_uuid()::text AS key, gen_random_uuid() AS entry) AS k
     WHERE p.n = p_payer AND r.n = p_receiver
$fn$;
"""


def _buckets() -> str:
    """Today's usage buckets of a transfer, named by the limits module, in the order the app passes them."""
    names = sorted(name for name in limit_buckets(utcnow(), "transfer", False) if name is not None)
    return "ARRAY[" + ", ".join(f"'{name}'" for name in names) + "]"


def prepare(database: str, people_file: Path) -> None:
    """The helper tables (payers 1..PAYERS by the HTTP bench's order, receivers 1..RECEIVERS and the hot
    one as 0) and the arguments' function, in the app's benchmark database."""
    people = json.loads(people_file.read_text())
    receivers = [people["hot"], *people["receivers"]]

    async def run() -> None:
        conn = await asyncpg.connect(dsn_for(database))
        try:
            await conn.execute(_TABLES)
            await conn.execute(_ARGS % {"buckets": _buckets()})
            await conn.execute(_FILL_PAYERS, [p["phone"] for p in people["payers"]])
            await conn.execute(_FILL_RECEIVERS, receivers)
        finally:
            await conn.close()

    asyncio.run(run())


def _script(scenario: str) -> str:
    payer = "(SELECT uid FROM bench_payers WHERE n = :p)"
    context = {
        1: f"('user:' || {payer}::text)",
        2: "(SELECT gen_random_uuid()::text)",
        3: payer,
        4: "(SELECT phone FROM bench_receivers WHERE n = :r)",
        5: f"('citizen_wallet:' || {payer}::text)",
        6: "(SELECT sid FROM bench_payers WHERE n = :p)",
    }
    read = re.sub(r"\$(\d+)", lambda m: context[int(m.group(1))], _CONTEXT)
    call = re.sub(r"\$(\d+)", lambda m: f"a.a{m.group(1)}", _TRANSFER)
    args = " FROM bench_transfer_args(:p, :r, :amt) AS a, wallet_transfer("
    call = call.replace(" FROM wallet_transfer(", args)
    receiver = "0" if scenario == "hot" else f"random(1, {RECEIVERS})"
    return (
        f"\\set p :client_id % {PAYERS} + 1\n"
        f"\\set r {receiver}\n"
        "\\set amt random(100, 500)\n"
        f"{' '.join(read.split())};\n"
        f"{' '.join(call.split())};\n"
    )


def run(database: str, scenario: str, clients: int, seconds: int) -> PgbenchResult:
    """pgbench of the app's two transfer statements (``scenario``: ``transfer`` or ``hot``)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix=f"app_{scenario}_", delete=False) as f:
        f.write(_script(scenario))
    try:
        return pgbench_file(database, Path(f.name), clients, seconds)
    finally:
        Path(f.name).unlink(missing_ok=True)


if __name__ == "__main__":  # print the script, to read or to run by hand
    print(_script("transfer"))
