"""The audit trail: appends form a keyed chain; every kind of tampering is detected; appends stay correct
under concurrency; the head is anchored outside the database; admins can search and verify it.

The tamperer here has what an attacker with database access has: DDL and DML rights (so the append-only
triggers can be dropped), the code (so the canonical format and plain SHA-256 are known), but not the audit
key, except in the one test that shows why the external anchors are needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from typer.testing import CliRunner

from app.core import audit
from app.core.audit import (
    AuditActor,
    AuditChainError,
    FileAnchorStore,
    SealConflictError,
    anchor_audit_head,
    anchor_store_for,
    record,
    seal_digest,
    sealed_digest,
    verify_chain,
    verify_now,
)
from app.core.db import Database
from app.core.security import Caller, issue_access_token
from app.core.settings import KeyRing, Settings
from tests.conftest import Backend, assert_problem

pytestmark = pytest.mark.usefixtures("tokens_without_sessions")

CITIZEN = uuid.UUID("0190a000-0000-7000-8000-000000000001")
OFFICER = uuid.UUID("0190a000-0000-7000-8000-000000000002")


@pytest.fixture
def settings(backend_env: Backend, tmp_path: Path) -> Settings:
    return backend_env.settings(VAR_DIR=str(tmp_path / "var"))


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    await database.dispose()


async def _append(db: Database, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        async with db.transaction() as session:
            await record(
                session,
                actor=AuditActor.user(CITIZEN if i % 2 else OFFICER, "citizen" if i % 2 else "officer"),
                action="identity.sign_in" if i % 2 else "services.dossier_approved",
                object_type="user" if i % 2 else "dossier",
                object_id=str(uuid.UUID(int=i + 1)),
                outcome="success" if i % 3 else "denied",
                client_address=f"203.0.113.{i + 1}",
                details={"attempt": i},
            )


async def _sql(db: Database, *statements: str, **params: Any) -> None:
    """Run raw SQL as a tamperer with DDL rights: the append-only triggers are dropped first."""
    async with db.transaction() as session:
        if db.is_sqlite:
            await session.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            await session.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
        else:
            await session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        for statement in statements:
            await session.execute(text(statement), params)


async def _rows(db: Database) -> list[dict[str, Any]]:
    async with db.read() as session:
        result = await session.execute(text("SELECT * FROM audit_events ORDER BY seq"))
        return [dict(r._mapping) for r in result]


async def _verify(db: Database, settings: Settings) -> audit.VerificationReport:
    return await verify_now(db, anchor_store_for(settings))


def _kinds(report: audit.VerificationReport) -> list[tuple[str, int | None]]:
    return [(p.kind, p.seq) for p in report.problems]


def _forge(row: dict[str, Any], *, seq: int, prev_mac: str, key: bytes | None, **changes: Any) -> str:
    """The MAC a tamperer computes for ``row`` changed by ``changes``: a plain SHA-256 of the published
    canonical form (no key), or, for a tamperer holding the key, the real HMAC."""
    values = {**row, **changes}
    actor = values["actor_id"]
    canonical = audit._canonical(
        seq=seq,
        occurred_at=values["occurred_at"]
        if not isinstance(values["occurred_at"], str)
        else audit.datetime.fromisoformat(values["occurred_at"]),
        actor_id=uuid.UUID(str(actor)) if actor else None,
        actor_role=values["actor_role"],
        action=values["action"],
        object_type=values["object_type"],
        object_id=values["object_id"],
        outcome=values["outcome"],
        client_address=values["client_address"],
        details=values["details"],
        kid=values["kid"],
        prev_mac=prev_mac,
    )
    if key is None:
        return hashlib.sha256(canonical).hexdigest()
    return audit._mac(key, canonical)


# ------------------------------------------------------------------------------------------ the chain


async def test_an_untouched_chain_verifies(db: Database, settings: Settings) -> None:
    await _append(db, 6)
    report = await _verify(db, settings)
    assert report.ok, report.problems
    assert report.rows_checked == 6
    assert (report.first_seq, report.last_seq, report.head_seq) == (1, 6, 6)
    rows = await _rows(db)
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["prev_mac"] == "0" * 64
    assert all(rows[i]["prev_mac"] == rows[i - 1]["mac"] for i in range(1, 6))


async def test_the_database_refuses_updates_and_deletes(db: Database) -> None:
    await _append(db, 2)
    for statement in ("UPDATE audit_events SET outcome = 'success'", "DELETE FROM audit_events"):
        with pytest.raises(Exception, match="append-only"):
            async with db.transaction() as session:
                await session.execute(text(statement))
    assert len(await _rows(db)) == 2


async def test_an_edited_row_is_detected(db: Database, settings: Settings) -> None:
    await _append(db, 5)
    await _sql(db, "UPDATE audit_events SET outcome = 'success', client_address = '10.0.0.1' WHERE seq = 3")
    report = await _verify(db, settings)
    assert not report.ok
    assert _kinds(report) == [("altered", 3)]


async def test_an_edited_row_with_a_fresh_plain_hash_is_detected(db: Database, settings: Settings) -> None:
    await _append(db, 5)
    row = (await _rows(db))[2]
    forged = _forge(row, seq=3, prev_mac=row["prev_mac"], key=None, outcome="success")
    await _sql(db, "UPDATE audit_events SET outcome = 'success', mac = :mac WHERE seq = 3", mac=forged)
    report = await _verify(db, settings)
    assert not report.ok
    assert report.problems[0].kind == "altered"
    assert report.problems[0].seq == 3


async def test_a_deleted_row_is_detected(db: Database, settings: Settings) -> None:
    await _append(db, 5)
    await _sql(db, "DELETE FROM audit_events WHERE seq = 3")
    report = await _verify(db, settings)
    assert not report.ok
    assert _kinds(report) == [("deleted", 3)]


async def test_a_deleted_row_with_the_rest_renumbered_is_detected(db: Database, settings: Settings) -> None:
    await _append(db, 5)
    await _sql(
        db,
        "DELETE FROM audit_events WHERE seq = 3",
        "UPDATE audit_events SET seq = seq + 100 WHERE seq > 3",
        "UPDATE audit_events SET seq = seq - 101 WHERE seq > 100",
        "UPDATE audit_head SET seq = 4",
    )
    assert [r["seq"] for r in await _rows(db)] == [1, 2, 3, 4]
    report = await _verify(db, settings)
    assert not report.ok
    assert _kinds(report)[0] == ("deleted", 3)


async def test_deleted_last_rows_are_detected(db: Database, settings: Settings) -> None:
    await _append(db, 5)
    await _sql(db, "DELETE FROM audit_events WHERE seq >= 4")
    report = await _verify(db, settings)
    assert not report.ok
    assert _kinds(report) == [("deleted", 4)]


async def test_an_inserted_row_in_the_middle_is_detected(db: Database, settings: Settings) -> None:
    await _append(db, 5)
    rows = await _rows(db)
    intruder = {**rows[1], "action": "identity.role_granted", "details": '{"role":"admin"}'}
    forged = _forge(intruder, seq=3, prev_mac=rows[1]["mac"], key=None)
    await _sql(
        db,
        "UPDATE audit_events SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit_events SET seq = seq - 99 WHERE seq > 100",
        "INSERT INTO audit_events (seq, occurred_at, actor_id, actor_role, action, object_type, object_id, "
        "outcome, client_address, details, kid, prev_mac, mac) SELECT 3, occurred_at, actor_id, actor_role, "
        "'identity.role_granted', object_type, object_id, outcome, client_address, '{\"role\":\"admin\"}', "
        "kid, mac, :mac FROM audit_events WHERE seq = 2",
        "UPDATE audit_head SET seq = 6",
        mac=forged,
    )
    assert [r["seq"] for r in await _rows(db)] == [1, 2, 3, 4, 5, 6]
    report = await _verify(db, settings)
    assert not report.ok
    assert _kinds(report) == [("inserted", 3)]


async def test_a_row_appended_behind_the_chains_back_is_detected(db: Database, settings: Settings) -> None:
    await _append(db, 3)
    rows = await _rows(db)
    forged = _forge(rows[2], seq=4, prev_mac=rows[2]["mac"], key=None, action="wallet.corrected")
    await _sql(
        db,
        "INSERT INTO audit_events (seq, occurred_at, actor_id, actor_role, action, object_type, object_id, "
        "outcome, client_address, details, kid, prev_mac, mac) SELECT 4, occurred_at, actor_id, actor_role, "
        "'wallet.corrected', object_type, object_id, outcome, client_address, details, kid, mac, :mac "
        "FROM audit_events WHERE seq = 3",
        mac=forged,
    )
    report = await _verify(db, settings)
    assert not report.ok
    assert ("inserted", 4) in _kinds(report)


async def test_a_tail_rewritten_with_fresh_plain_hashes_is_detected(db: Database, settings: Settings) -> None:
    await _append(db, 6)
    rows = await _rows(db)
    prev = rows[2]["mac"]
    statements: list[str] = []
    params: dict[str, Any] = {}
    for row in rows[3:]:
        mac = _forge(row, seq=row["seq"], prev_mac=prev, key=None, outcome="success")
        statements.append(
            f"UPDATE audit_events SET outcome = 'success', prev_mac = :p{row['seq']}, mac = :m{row['seq']} "
            f"WHERE seq = {row['seq']}"
        )
        params[f"p{row['seq']}"], params[f"m{row['seq']}"] = prev, mac
        prev = mac
    statements.append("UPDATE audit_head SET mac = :head")
    params["head"] = prev
    await _sql(db, *statements, **params)
    report = await _verify(db, settings)
    assert not report.ok
    assert _kinds(report) == [("altered", 4), ("altered", 5), ("altered", 6)]


async def test_a_tail_rewritten_with_valid_macs_diverges_from_the_anchor(
    db: Database, settings: Settings
) -> None:
    """A tamperer who also stole the audit key can forge valid MACs; the anchor kept outside catches it."""
    await _append(db, 5)
    anchor = await anchor_audit_head(db, settings)
    assert anchor is not None
    assert anchor.seq == 5
    rows = await _rows(db)
    key = settings.audit_keys.active_key
    prev = rows[2]["mac"]
    statements: list[str] = []
    params: dict[str, Any] = {"details": '{"attempt":0}'}
    for row in rows[3:]:
        mac = _forge(row, seq=row["seq"], prev_mac=prev, key=key, details='{"attempt":0}')
        statements.append(
            f"UPDATE audit_events SET details = :details, prev_mac = :p{row['seq']}, "
            f"mac = :m{row['seq']} WHERE seq = {row['seq']}"
        )
        params[f"p{row['seq']}"], params[f"m{row['seq']}"] = prev, mac
        prev = mac
    statements.append("UPDATE audit_head SET mac = :head")
    params["head"] = prev
    await _sql(db, *statements, **params)

    async with db.read() as session:
        without_anchors = await verify_chain(session, (), keys=settings.audit_keys)
    assert without_anchors.ok, "with the key, a rewrite is internally consistent"
    report = await _verify(db, settings)
    assert not report.ok
    assert _kinds(report) == [("anchor_mismatch", 5)]
    with pytest.raises(AuditChainError):
        await anchor_audit_head(db, settings)


async def test_a_truncated_tail_with_a_matching_head_is_caught_by_the_anchor(
    db: Database, settings: Settings
) -> None:
    await _append(db, 5)
    await anchor_audit_head(db, settings)
    rows = await _rows(db)
    await _sql(
        db,
        "DELETE FROM audit_events WHERE seq > 3",
        "UPDATE audit_head SET seq = 3, mac = :mac",
        mac=rows[2]["mac"],
    )
    async with db.read() as session:
        assert (await verify_chain(session, (), keys=settings.audit_keys)).ok
    report = await _verify(db, settings)
    assert _kinds(report) == [("anchor_missing", 5)]


async def test_a_row_signed_with_an_unknown_key_is_reported(db: Database, settings: Settings) -> None:
    await _append(db, 2)
    rotated = KeyRing.parse("AUDIT_KEYS", "k2:another-audit-key-0123456789abcdef0123456789")
    async with db.transaction() as session:
        await record(session, actor=None, action="admin.key_rotated", object_type="key", keys=rotated)
    report = await _verify(db, settings)
    assert _kinds(report) == [("unknown_key", 3)]
    both = KeyRing.parse(
        "AUDIT_KEYS",
        "k2:another-audit-key-0123456789abcdef0123456789,dev1:dev-insecure-audit-mac-key-0123456789abcdef",
    )
    async with db.read() as session:
        assert (await verify_chain(session, (), keys=both)).ok


# ------------------------------------------------------------------------------------------ concurrency


async def test_twenty_concurrent_appends_keep_one_valid_chain(
    db: Database, settings: Settings, backend_env: Backend
) -> None:
    """Twenty transactions append at the same moment; each holds its transaction open a little after
    appending, so the others are forced to wait on the chain head (PostgreSQL: inside their open
    transactions; SQLite: at BEGIN IMMEDIATE)."""
    writers = 20
    barrier = asyncio.Barrier(writers)

    async def writer(i: int) -> int:
        if not backend_env.is_postgres:
            await barrier.wait()
        async with db.transaction() as session:
            if backend_env.is_postgres:
                await session.execute(text("SELECT 1"))
                await barrier.wait()
            recorded = await record(
                session,
                actor=AuditActor.user(uuid.UUID(int=i + 1), "citizen"),
                action="identity.sign_in",
                object_type="user",
                object_id=str(i),
            )
            await asyncio.sleep(0.01)
            return recorded.seq

    seqs = await asyncio.wait_for(asyncio.gather(*(writer(i) for i in range(writers))), timeout=60)
    assert sorted(seqs) == list(range(1, writers + 1))
    report = await _verify(db, settings)
    assert report.ok, report.problems
    assert report.rows_checked == writers
    assert report.head_seq == writers


async def test_a_rolled_back_transaction_leaves_no_trace_and_no_gap(db: Database, settings: Settings) -> None:
    await _append(db, 2)

    async def refused_transfer() -> None:
        async with db.transaction() as session:
            await record(session, actor=None, action="wallet.transfer", object_type="wallet")
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        await refused_transfer()
    await _append(db, 1, start=2)
    assert [r["seq"] for r in await _rows(db)] == [1, 2, 3]
    assert (await _verify(db, settings)).ok


# ------------------------------------------------------------------------------------- seals, details


async def test_a_days_journal_is_sealed_once(db: Database, settings: Settings) -> None:
    digest = hashlib.sha256(b"journal of 2026-11-23").hexdigest()
    async with db.transaction() as session:
        first = await seal_digest(session, "ledger.journal:2026-11-23", digest)
    async with db.transaction() as session:
        again = await seal_digest(session, "ledger.journal:2026-11-23", digest)
    assert again.seq == first.seq
    with pytest.raises(SealConflictError):
        async with db.transaction() as session:
            await seal_digest(session, "ledger.journal:2026-11-23", hashlib.sha256(b"changed").hexdigest())
    async with db.read() as session:
        assert await sealed_digest(session, "ledger.journal:2026-11-23") == digest
        assert await sealed_digest(session, "ledger.journal:2026-11-24") is None
    report = await _verify(db, settings)
    assert report.ok
    assert report.rows_checked == 1


async def test_personal_numbers_and_secrets_never_enter_details(db: Database) -> None:
    async with db.transaction() as session:
        await record(
            session,
            actor=Caller(user_id=CITIZEN, session_id=uuid.uuid4(), roles=frozenset({"citizen"})),
            action="identity.pin_changed",
            object_type="user",
            object_id=CITIZEN,
            details={"pin": "123456", "note": "called from 0912345678", "cccd": "046090000123", "step": 2},
        )
    row = (await _rows(db))[0]
    details = json.loads(row["details"])
    assert details == {"pin": "[redacted]", "note": "called from [number]", "cccd": "[redacted]", "step": 2}
    assert "0912345678" not in row["details"]
    assert row["actor_role"] == "citizen"
    with pytest.raises(TypeError):
        async with db.transaction() as session:
            await record(session, actor=None, action="wallet.fee", object_type="wallet", details={"fee": 1.5})


# ------------------------------------------------------------------------------------------- anchors


async def test_the_anchor_job_writes_the_head_outside_the_database_idempotently(
    db: Database, settings: Settings
) -> None:
    assert await anchor_audit_head(db, settings) is None  # nothing to anchor yet
    await _append(db, 3)
    first = await anchor_audit_head(db, settings)
    again = await anchor_audit_head(db, settings)
    assert first is not None
    assert again == first
    path = settings.var_dir / "audit-heads" / "anchors.jsonl"
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["seq"] == 3
    await _append(db, 2, start=3)
    second = await anchor_audit_head(db, settings, label="explicit")
    assert second is not None
    assert second.seq == 5
    assert len(path.read_text().splitlines()) == 2
    report = await _verify(db, settings)
    assert report.ok
    assert (report.anchors_checked, report.latest_anchor_seq) == (2, 5)


async def test_a_forged_or_unreadable_anchor_line_is_reported(db: Database, settings: Settings) -> None:
    await _append(db, 2)
    await anchor_audit_head(db, settings)
    store = anchor_store_for(settings)
    assert isinstance(store, FileAnchorStore)
    with store.path.open("a") as handle:
        handle.write(
            json.dumps(
                {
                    "seq": 2,
                    "mac": "f" * 64,
                    "anchored_at": "2026-11-23T00:00:00Z",
                    "label": "daily",
                    "kid": "dev1",
                    "signature": "0" * 64,
                }
            )
            + "\n"
        )
        handle.write("not json\n")
    report = await _verify(db, settings)
    assert sorted(k for k, _ in _kinds(report)) == ["anchor_forged", "anchor_unreadable"]


async def test_the_anchor_job_refuses_a_broken_chain(db: Database, settings: Settings) -> None:
    await _append(db, 3)
    await _sql(db, "UPDATE audit_events SET action = 'identity.nothing' WHERE seq = 2")
    with pytest.raises(AuditChainError):
        await anchor_audit_head(db, settings)
    assert not (settings.var_dir / "audit-heads" / "anchors.jsonl").exists()


def test_cli_verify_exits_non_zero_on_tampering(
    backend_env: Backend, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.cli import cli
    from app.core.settings import get_settings

    async def prepare(tamper: bool) -> None:
        database = Database(settings)
        try:
            if tamper:
                await _sql(database, "UPDATE audit_events SET outcome = 'failure' WHERE seq = 1")
            else:
                await _append(database, 2)
        finally:
            await database.dispose()

    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("APP_ENV", "test")
    get_settings.cache_clear()
    try:
        asyncio.run(prepare(tamper=False))
        runner = CliRunner()
        anchored = runner.invoke(cli, ["audit", "anchor"])
        assert anchored.exit_code == 0, anchored.output
        intact = runner.invoke(cli, ["audit", "verify", "--json"])
        assert intact.exit_code == 0, intact.output
        assert '"ok": true' in intact.stdout
        asyncio.run(prepare(tamper=True))
        broken = runner.invoke(cli, ["audit", "verify"])
        assert broken.exit_code == 1
        assert "altered" in broken.output
    finally:
        get_settings.cache_clear()


# ------------------------------------------------------------------------------------ admin endpoints


def _token(
    settings: Settings, *, roles: set[str], duties: set[str] | None = None, user: uuid.UUID | None = None
) -> dict[str, str]:
    caller = Caller(
        user_id=user or uuid.uuid4(),
        session_id=uuid.uuid4(),
        roles=frozenset(roles),
        duties=frozenset(duties or ()),
    )
    token, _ = issue_access_token(settings, caller)
    return {"Authorization": f"Bearer {token}"}


async def test_support_admins_search_the_trail_with_a_cursor(
    client: AsyncTestClient[Litestar], db: Database, settings: Settings
) -> None:
    await _append(db, 7)
    support = _token(settings, roles={"admin"}, duties={"support"})
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, "object_type": "user"}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/api/v1/admin/audit", params=params, headers=support)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["seq"] for item in page["items"]]
        assert all(item["object_type"] == "user" for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [6, 4, 2]  # newest first: the citizen sign-ins appended at positions 2, 4, 6

    by_actor = await client.get("/api/v1/admin/audit", params={"actor_id": str(OFFICER)}, headers=support)
    assert {item["actor_id"] for item in by_actor.json()["items"]} == {str(OFFICER)}
    by_prefix = await client.get("/api/v1/admin/audit", params={"action": "services.*"}, headers=support)
    assert {item["action"] for item in by_prefix.json()["items"]} == {"services.dossier_approved"}
    future = await client.get(
        "/api/v1/admin/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=support
    )
    assert future.json()["items"] == []
    assert_problem(
        await client.get("/api/v1/admin/audit", params={"cursor": "bm9wZQ"}, headers=support),
        422,
        "validation_failed",
    )

    searched = await client.get("/api/v1/admin/audit", params={"action": "audit.searched"}, headers=support)
    assert searched.json()["items"], "the admin's own searches are audited"
    assert searched.json()["items"][0]["actor_role"] == "admin:support"


async def test_verify_endpoint_reports_tampering(
    client: AsyncTestClient[Litestar], db: Database, settings: Settings
) -> None:
    await _append(db, 4)
    superadmin = _token(settings, roles={"admin"}, duties={"superadmin"})
    response = await client.get("/api/v1/admin/audit/verify", headers=superadmin)
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    assert response.json()["rows_checked"] == 4

    await _sql(db, "DELETE FROM audit_events WHERE seq = 2")
    response = await client.get("/api/v1/admin/audit/verify", headers=superadmin)
    body = response.json()
    assert body["ok"] is False
    assert body["problems"][0]["kind"] == "deleted"
    assert body["problems"][0]["seq"] == 2


async def test_only_support_and_superadmins_reach_the_trail(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    for path in ("/api/v1/admin/audit", "/api/v1/admin/audit/verify"):
        assert_problem(await client.get(path), 401, "unauthenticated")
        for headers in (
            _token(settings, roles={"citizen"}),
            _token(settings, roles={"officer"}),
            _token(settings, roles={"admin"}, duties={"finance"}),
        ):
            assert_problem(await client.get(path, headers=headers), 403, "forbidden")
        assert (
            await client.get(path, headers=_token(settings, roles={"admin"}, duties={"support"}))
        ).status_code == 200
