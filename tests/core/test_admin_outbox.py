"""Support staff see dead letters and send them again from the admin API (issue 3, item 4).

Only admins with the `support` duty (or `superadmin`) may: a citizen, a merchant, an admin without that
duty are refused, and cannot change anything. (The test client serves the app on a loop of its own, so the
tests reach the database through a Database of their own.)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.core.db import Database
from app.core.outbox import Dispatcher, Envelope, HandlerRegistry, enqueue
from app.core.settings import Settings
from tests.conftest import Backend, assert_problem
from tests.core.outbox_support import database, message
from tests.factories import token_with_claims

TOPIC = "test.biller_confirmation"
LIST = "/api/v1/admin/outbox/dead-letters"


@pytest.fixture
async def db(backend_env: Backend) -> AsyncIterator[Database]:
    async with database(backend_env) as handle:
        yield handle


async def token(client: Any, roles: set[str], duties: set[str] | None = None) -> dict[str, str]:
    """A token with these claims for a real signed-in session (identity refuses unknown sessions)."""
    return await token_with_claims(client, roles=roles, duties=duties or ())


class Biller:
    """A biller that is down until it comes back."""

    def __init__(self) -> None:
        self.up = False
        self.received: list[uuid.UUID] = []

    async def __call__(self, envelope: Envelope) -> None:
        if not self.up:
            raise ConnectionError("biller unreachable")
        self.received.append(envelope.id)


async def make_dead_letters(db: Database, biller: Biller, count: int) -> list[uuid.UUID]:
    handlers = HandlerRegistry()
    handlers.register(TOPIC, biller, max_attempts=1)
    ids = []
    for n in range(count):
        async with db.transaction() as session:
            ids.append(await enqueue(session, TOPIC, {"bill": n}))
    dispatcher = Dispatcher(db, handlers=handlers)
    while await dispatcher.dispatch_once():
        pass
    return ids


def dispatcher_for(db: Database, biller: Biller) -> Dispatcher:
    handlers = HandlerRegistry()
    handlers.register(TOPIC, biller, max_attempts=1)
    return Dispatcher(db, handlers=handlers)


async def test_support_lists_dead_letters_page_by_page_and_sees_their_log(
    client: AsyncTestClient[Litestar], db: Database, settings: Settings
) -> None:
    dead = await make_dead_letters(db, Biller(), 5)
    async with db.transaction() as session:
        await enqueue(session, TOPIC, {"still": "pending"}, key="not-dead")
        await enqueue(session, "test.other", {"other": True}, key="other-topic")
    support = await token(client, {"admin"}, {"support"})

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(LIST, params=params, headers=support)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        for item in body["items"]:
            assert item["status"] == "dead"
            assert item["last_error"] == "ConnectionError: biller unreachable"
            assert item["topic"] == TOPIC
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(i) for i in reversed(dead)], "every dead letter once, newest first"

    only_other = await client.get(LIST, params={"topic": "test.other"}, headers=support)
    assert only_other.json() == {"items": [], "next_cursor": None}
    assert_problem(
        await client.get(LIST, params={"cursor": "!!not-a-cursor"}, headers=support), 422, "validation_failed"
    )

    response = await client.get(
        f"/api/v1/admin/outbox/messages/{dead[0]}", headers=await token(client, {"admin"}, {"superadmin"})
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(dead[0])
    assert body["status"] == "dead"
    assert body["payload"] == {"bill": 0}
    assert [(d["attempt"], d["outcome"], d["error"]) for d in body["deliveries"]] == [
        (1, "failed", "ConnectionError: biller unreachable")
    ]
    missing = await client.get(f"/api/v1/admin/outbox/messages/{uuid.uuid4()}", headers=support)
    assert_problem(missing, 404, "outbox_message_not_found")


async def test_retry_puts_a_dead_letter_back_and_repeating_it_is_harmless(
    client: AsyncTestClient[Litestar], db: Database, settings: Settings
) -> None:
    biller = Biller()
    (dead,) = await make_dead_letters(db, biller, 1)
    support = await token(client, {"admin"}, {"support"})
    retry = f"/api/v1/admin/outbox/messages/{dead}/retry"

    assert_problem(await client.post(retry, headers=support), 400, "idempotency_key_required")
    first = await client.post(retry, headers={**support, "Idempotency-Key": "retry-1"})
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "pending"
    assert first.json()["requeue_count"] == 1
    assert first.json()["dead_at"] is None

    replayed = await client.post(retry, headers={**support, "Idempotency-Key": "retry-1"})
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.json() == first.json()

    again = await client.post(retry, headers={**support, "Idempotency-Key": "retry-2"})
    assert again.status_code == 200
    assert again.json()["status"] == "pending"
    assert again.json()["requeue_count"] == 1, "a second retry of a requeued message changes nothing"

    listed = await client.get(LIST, headers=support)
    assert listed.json()["items"] == []

    biller.up = True
    assert await dispatcher_for(db, biller).dispatch_once() == 1
    assert biller.received == [dead]

    shown = (await client.get(f"/api/v1/admin/outbox/messages/{dead}", headers=support)).json()
    assert shown["status"] == "delivered"
    assert [(d["attempt"], d["outcome"]) for d in shown["deliveries"]] == [(1, "failed"), (2, "delivered")]

    late = await client.post(retry, headers={**support, "Idempotency-Key": "retry-3"})
    assert late.status_code == 200
    assert late.json()["status"] == "delivered", "retrying a delivered message does not send it again"
    assert await dispatcher_for(db, biller).dispatch_once() == 0
    assert biller.received == [dead]


FORBIDDEN_CALLERS = [
    ({"citizen"}, set()),
    ({"merchant_owner"}, set()),
    ({"officer"}, set()),
    ({"admin"}, set()),
    ({"admin"}, {"finance"}),
    ({"citizen"}, {"support"}),
]


async def test_only_support_admins_may_see_or_retry_and_a_token_is_needed(
    client: AsyncTestClient[Litestar], db: Database, settings: Settings
) -> None:
    (dead,) = await make_dead_letters(db, Biller(), 1)
    for roles, duties in FORBIDDEN_CALLERS:
        headers = await token(client, roles, duties)
        assert_problem(await client.get(LIST, headers=headers), 403, "forbidden")
        shown = await client.get(f"/api/v1/admin/outbox/messages/{dead}", headers=headers)
        assert_problem(shown, 403, "forbidden")
        refused = await client.post(
            f"/api/v1/admin/outbox/messages/{dead}/retry", headers={**headers, "Idempotency-Key": "k"}
        )
        assert_problem(refused, 403, "forbidden")
    assert_problem(await client.get(LIST), 401, "unauthenticated")
    assert_problem(await client.post(f"/api/v1/admin/outbox/messages/{dead}/retry"), 401, "unauthenticated")
    assert (await message(db, dead)).status == "dead", "a refused retry changed nothing"
