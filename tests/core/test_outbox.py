"""The transactional outbox, as the rest of the system relies on it (issue 3, item 4; DESIGN.md "One tap").

Given messages written in a producer's transaction, when workers deliver them, then: a message exists only
if its transaction committed; failures are retried with growing, jittered delays and dead-lettered after
the last attempt; every attempt is in the delivery log; a worker that dies mid-delivery leaves the message
to another worker once its lease expires; two workers never deliver one message at the same time.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from app.core.db import Database
from app.core.outbox import (
    Dispatcher,
    DispatcherConfig,
    Envelope,
    HandlerRegistry,
    PermanentDeliveryError,
    backoff_delay,
    enqueue,
    enqueue_many,
    purge_delivered,
)
from tests.conftest import Backend
from tests.core.outbox_support import (
    FakeClock,
    Receiver,
    count_messages,
    database,
    deliveries,
    message,
)

TOPIC = "test.receipt"


def registry(handler: object, **options: object) -> HandlerRegistry:
    handlers = HandlerRegistry()
    handlers.register(TOPIC, handler, **options)  # type: ignore[arg-type]
    return handlers


async def put(db: Database, payload: dict[str, object] | None = None, **options: object) -> uuid.UUID:
    async with db.transaction() as session:
        return await enqueue(session, TOPIC, payload or {"amount": 150_000}, **options)  # type: ignore[arg-type]


class Payment(msgspec.Struct):
    payment_id: uuid.UUID
    amount: int
    paid_at: datetime


async def test_a_message_is_written_with_its_transaction_once_per_key_and_waits_its_time(
    backend_env: Backend,
) -> None:
    async with database(backend_env) as db:

        async def failing_payment() -> None:
            async with db.transaction() as session:
                await enqueue(session, TOPIC, {"amount": 1})
                raise RuntimeError("the payment failed after writing its outbox row")

        with pytest.raises(RuntimeError):
            await failing_payment()
        assert await count_messages(db) == 0, "a rolled-back payment sends nothing"

        payment = Payment(uuid.uuid4(), 250_000, datetime(2026, 11, 23, 3, 0, tzinfo=UTC))
        async with db.transaction() as session:
            message_id = await enqueue(session, TOPIC, payment)
        keyed = await put(db, {"n": 1}, key="payment:42:biller")
        assert await put(db, {"n": 2}, key="payment:42:biller") == keyed, "one message per producer key"
        other_key = await put(db, {"n": 3}, key="payment:43:biller")
        clock = FakeClock()
        later = await put(db, {"n": 4}, available_at=clock.now + timedelta(minutes=5))
        assert await count_messages(db) == 4

        receiver = Receiver()
        dispatcher = Dispatcher(db, handlers=registry(receiver), clock=clock)
        assert await dispatcher.dispatch_once() == 3
        clock.advance(301)
        assert await dispatcher.dispatch_once() == 1

    assert [e.id for e in receiver.calls] == [message_id, keyed, other_key, later]
    envelope = receiver.calls[0]
    assert envelope.attempt == 1
    assert envelope.payload == {
        "payment_id": str(payment.payment_id),
        "amount": 250_000,
        "paid_at": "2026-11-23T03:00:00Z",
    }
    assert receiver.calls[1].payload == {"n": 1}


async def test_failures_are_retried_with_growing_jittered_delays(backend_env: Backend) -> None:
    failures_left = 3
    seen: list[Envelope] = []

    async def flaky_biller(envelope: Envelope) -> None:
        nonlocal failures_left
        seen.append(envelope)
        if failures_left:
            failures_left -= 1
            raise ConnectionError("biller gateway timed out")

    config = DispatcherConfig(backoff_base_seconds=10, backoff_cap_seconds=30, backoff_jitter=0.5)
    async with database(backend_env) as db:
        clock = FakeClock()
        message_id = await put(db)
        dispatcher = Dispatcher(
            db, config=config, handlers=registry(flaky_biller), clock=clock, rng=random.Random(7)
        )
        # The n-th failure waits base * 2^(n-1), capped at 30 s, less up to half of it as jitter.
        for failure, full_delay in enumerate((10, 20, 30), start=1):
            assert await dispatcher.dispatch_once() == 1
            row = await message(db, message_id)
            assert row.status == "pending"
            wait = (row.available_at - clock.now).total_seconds()
            assert full_delay / 2 <= wait <= full_delay, (failure, wait)
            assert row.last_error == "ConnectionError: biller gateway timed out"
            clock.advance(wait - 0.5)
            assert await dispatcher.dispatch_once() == 0, "retried before its delay"
            clock.advance(0.5)
        assert await dispatcher.dispatch_once() == 1

        row = await message(db, message_id)
        log = await deliveries(db, message_id)
    assert row.status == "delivered"
    assert row.delivered_at == clock.now
    assert [e.id for e in seen] == [message_id] * 4, "every attempt carries the same message id"
    assert [e.attempt for e in seen] == [1, 2, 3, 4]
    assert [(d.attempt, d.outcome) for d in log] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (4, "delivered"),
    ]
    assert log[0].error == "ConnectionError: biller gateway timed out"
    assert log[3].error is None


async def test_failed_deliveries_end_as_dead_letters_or_wait_visibly(backend_env: Backend) -> None:
    long_error = "merchant endpoint said: " + "x" * 5000

    async def broken_webhook(_envelope: Envelope) -> None:
        raise RuntimeError(long_error)

    async def refuses(_envelope: Envelope) -> None:
        raise PermanentDeliveryError("410 Gone: the merchant removed this webhook")

    async def hangs(_envelope: Envelope) -> None:
        await asyncio.sleep(10)

    handlers = HandlerRegistry()
    handlers.register("test.webhook", broken_webhook, max_attempts=3)
    handlers.register("test.gone", refuses)
    handlers.register("test.slow", hangs, timeout_seconds=0.1)
    config = DispatcherConfig(batch_size=1)
    async with database(backend_env) as db:
        async with db.transaction() as session:
            webhook = await enqueue(session, "test.webhook", {})
            gone = await enqueue(session, "test.gone", {})
            slow = await enqueue(session, "test.slow", {})
            orphan = await enqueue(session, "nobody.listens", {})
        clock = FakeClock()
        dispatcher = Dispatcher(db, config=config, handlers=handlers, clock=clock)
        for _ in range(4):
            assert await dispatcher.dispatch_once() == 1
        for _ in range(2):
            clock.advance(3600)
            while await dispatcher.dispatch_once():
                pass
        clock.advance(3600)
        while await dispatcher.dispatch_once():
            pass
        rows = {i: await message(db, i) for i in (webhook, gone, slow, orphan)}
        webhook_log = await deliveries(db, webhook)

    # The last of its 3 attempts made the webhook a dead letter; it is not retried by itself.
    assert rows[webhook].status == "dead"
    assert rows[webhook].dead_at is not None
    assert [(d.attempt, d.outcome) for d in webhook_log] == [(1, "failed"), (2, "failed"), (3, "failed")]
    for entry in webhook_log:
        assert entry.error is not None
        assert entry.error.startswith("RuntimeError: merchant endpoint said: xxx")
        assert len(entry.error) == 2000, "errors are cut, not stored whole"
    # A permanent refusal is dead at once.
    assert (rows[gone].status, rows[gone].attempts) == ("dead", 1)
    assert rows[gone].last_error == "permanent: 410 Gone: the merchant removed this webhook"
    # A handler that hangs is cut off and retried; a topic nobody handles waits, visibly.
    assert (rows[slow].status, rows[slow].attempts) == ("pending", 4)
    assert rows[slow].last_error == "timed out after 0.1 s"
    assert (rows[orphan].status, rows[orphan].attempts) == ("pending", 4)
    assert rows[orphan].last_error == "no delivery handler is registered for topic 'nobody.listens'"


async def test_a_killed_workers_message_is_delivered_once_by_another_after_the_lease(
    backend_env: Backend,
) -> None:
    receiver = Receiver()
    config = DispatcherConfig(lease_seconds=60, handler_timeout_seconds=30)
    async with database(backend_env) as db_a, database(backend_env) as db_b:
        clock = FakeClock()
        message_id = await put(db_a, {"push": "Thanh toán thành công"})
        killed = Dispatcher(db_a, config=config, handlers=registry(receiver), clock=clock, name="worker-a")
        survivor = Dispatcher(db_b, config=config, handlers=registry(receiver), clock=clock, name="worker-b")

        # Worker A claims the message and dies before delivering it (it never calls the handler).
        (claim,) = await killed.claim()
        await db_a.dispose()

        clock.advance(59)
        assert await survivor.dispatch_once() == 0, "the lease still protects the message"
        clock.advance(2)
        assert await survivor.dispatch_once() == 1
        assert await survivor.dispatch_once() == 0

        row = await message(db_b, message_id)
        assert row.status == "delivered"
        assert len(receiver.calls) == 1
        assert receiver.calls[0].id == message_id
        assert receiver.calls[0].attempt == 2
        log = await deliveries(db_b, message_id)
        assert [(d.attempt, d.outcome, d.worker) for d in log] == [
            (1, "abandoned", "worker-a"),
            (2, "delivered", "worker-b"),
        ]

        # Had worker A only stalled, its late result is fenced off: the receiver deduplicates the
        # second call by message id, and the record of the delivery stays as worker B wrote it.
        stalled = Dispatcher(
            Database(backend_env.settings()), config=config, handlers=registry(receiver), clock=clock
        )
        try:
            assert await stalled.deliver(claim) == "lease_lost"
        finally:
            await stalled.db.dispose()
        assert len(receiver.effects) == 1
        after = await message(db_b, message_id)
        assert after.status == "delivered"
        assert after.delivered_at == row.delivered_at
        assert [(d.attempt, d.outcome) for d in await deliveries(db_b, message_id)] == [
            (1, "abandoned"),
            (1, "lease_lost"),
            (2, "delivered"),
        ]


@pytest.mark.sqlite_only
async def test_a_message_that_kills_every_worker_becomes_a_dead_letter(backend_env: Backend) -> None:
    receiver = Receiver()
    config = DispatcherConfig(lease_seconds=60, handler_timeout_seconds=30)
    async with database(backend_env) as db:
        clock = FakeClock()
        message_id = await put(db)
        handlers = registry(receiver, max_attempts=2)
        for _ in range(2):
            # Each worker claims the message and dies while delivering it.
            assert len(await Dispatcher(db, config=config, handlers=handlers, clock=clock).claim()) == 1
            clock.advance(61)
        assert await Dispatcher(db, config=config, handlers=handlers, clock=clock).dispatch_once() == 0
        row = await message(db, message_id)
        log = await deliveries(db, message_id)
    assert receiver.calls == [], "not handed to a third worker"
    assert row.status == "dead"
    assert row.last_error == "every attempt of this round was abandoned by its worker"
    assert [(d.attempt, d.outcome) for d in log] == [(1, "abandoned"), (2, "abandoned")]


async def test_a_message_in_delivery_is_not_taken_by_a_second_worker(backend_env: Backend) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()
    calls: list[str] = []

    async def slow_push(envelope: Envelope) -> None:
        calls.append(str(envelope.id))
        entered.set()
        await release.wait()

    async with database(backend_env) as db_a, database(backend_env) as db_b:
        await put(db_a)
        first = Dispatcher(db_a, handlers=registry(slow_push), name="a")
        second = Dispatcher(db_b, handlers=registry(slow_push), name="b")
        delivering = asyncio.create_task(first.dispatch_once())
        await asyncio.wait_for(entered.wait(), 5)
        # The first worker is inside the handler, its claim committed: the second finds nothing due.
        assert await second.dispatch_once() == 0
        release.set()
        assert await delivering == 1
        assert await second.dispatch_once() == 0
    assert len(calls) == 1


@pytest.mark.postgres_only
async def test_two_dispatchers_on_postgres_never_deliver_the_same_message(backend_env: Backend) -> None:
    total = 30
    delivered: list[tuple[uuid.UUID, str]] = []
    both_claiming = asyncio.Barrier(2)
    overlapped: list[str] = []

    def hold_first_claim(name: str):  # type: ignore[no-untyped-def]
        async def hook(ids: list[uuid.UUID]) -> None:
            if name not in overlapped:
                overlapped.append(name)
                # Both dispatchers wait here holding their row locks, inside their claim transactions.
                await asyncio.wait_for(both_claiming.wait(), 5)

        return hook

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def deliver(envelope: Envelope) -> None:
            delivered.append((envelope.id, name))
            await asyncio.sleep(0.005)

        return deliver

    async def drain(dispatcher: Dispatcher) -> None:
        while await dispatcher.dispatch_once():
            pass

    config = DispatcherConfig(batch_size=4)
    async with database(backend_env) as db_a, database(backend_env) as db_b:
        async with db_a.transaction() as session:
            ids = {await enqueue(session, TOPIC, {"n": n}) for n in range(total)}
        a = Dispatcher(db_a, config=config, handlers=registry(handler("a")), name="a")
        b = Dispatcher(db_b, config=config, handlers=registry(handler("b")), name="b")
        a.on_claim, b.on_claim = hold_first_claim("a"), hold_first_claim("b")
        await asyncio.wait_for(asyncio.gather(drain(a), drain(b)), 20)
        assert await count_messages(db_a, "delivered") == total

    assert sorted(overlapped) == ["a", "b"], "both dispatchers were inside a claim at the same time"
    delivered_ids = [message_id for message_id, _ in delivered]
    assert len(delivered_ids) == total, "no message was delivered twice"
    assert set(delivered_ids) == ids
    assert {name for _, name in delivered} == {"a", "b"}


@pytest.mark.sqlite_only
async def test_a_running_dispatcher_is_woken_by_a_commit(backend_env: Backend) -> None:
    receiver = Receiver()
    async with database(backend_env) as db:
        # It would poll only every 30 s: a delivery within a few seconds proves the commit woke it.
        dispatcher = Dispatcher(db, config=DispatcherConfig(poll_seconds=30), handlers=registry(receiver))
        running = asyncio.create_task(dispatcher.run())
        await asyncio.sleep(0.2)
        message_id = await put(db)
        for _ in range(500):
            if receiver.calls:
                break
            await asyncio.sleep(0.01)
        dispatcher.stop()
        await asyncio.wait_for(running, 5)
    assert [e.id for e in receiver.calls] == [message_id]


async def test_housekeeping_purges_only_old_delivered_messages(backend_env: Backend) -> None:
    async def deliver_or_refuse(envelope: Envelope) -> None:
        if envelope.payload.get("refuse"):
            raise PermanentDeliveryError("refused")

    async with database(backend_env) as db:
        clock = FakeClock()
        handlers = registry(deliver_or_refuse)
        old_delivered = await put(db, {"n": 1})
        old_dead = await put(db, {"refuse": True})
        await Dispatcher(db, handlers=handlers, clock=clock).dispatch_once()
        clock.advance(8 * 86400)
        recent = await put(db, {"n": 2})
        await Dispatcher(db, handlers=handlers, clock=clock).dispatch_once()
        pending = await put(db, {"n": 3}, available_at=clock.now + timedelta(days=1))

        assert await purge_delivered(db, older_than=timedelta(days=7), now=clock.now) == 1
        assert await deliveries(db, old_delivered) == []
        async with db.read() as session:
            from app.core.models import OutboxMessage

            remaining = {row.id for row in (await session.execute(OutboxMessage.__table__.select())).all()}
    assert remaining == {old_dead, recent, pending}


def test_jitter_spreads_a_burst_of_retries() -> None:
    config = DispatcherConfig(backoff_base_seconds=10, backoff_cap_seconds=3600, backoff_jitter=0.5)
    rng = random.Random()
    for attempt, full in ((1, 10), (3, 40), (12, 3600)):
        delays = [backoff_delay(attempt, config, rng).total_seconds() for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 40, "messages failing together do not all retry at the same instant"


def test_logs_keep_message_ids_whole_and_mask_phone_numbers() -> None:
    from app.core.observability import _redact

    message_id = "01a2067f-39a2-77f2-850a-75384704915c"  # its last group looks like a phone number
    event = _redact(None, "outbox_delivery_failed", {"message_id": message_id, "error": "SMS to 0912345678"})
    assert event == {"message_id": message_id, "error": "SMS to [number]"}


async def test_several_keyed_messages_in_one_statement_keep_one_message_per_key(backend_env: Backend) -> None:
    """``enqueue_many`` (the one-tap's confirmations, one per biller): one statement, the same rules as
    ``enqueue`` with a key: a key already enqueued answers the first message's id and writes nothing."""
    async with database(backend_env) as db:
        first = await put(db, {"n": 1}, key="pay:1:a")
        async with db.transaction() as session:
            ids = await enqueue_many(
                session, TOPIC, [({"n": 2}, "pay:1:a"), ({"n": 3}, "pay:1:b"), ({"n": 4}, "pay:1:c")]
            )
        assert ids[0] == first
        assert len(set(ids)) == 3
        assert await count_messages(db) == 3
        receiver = Receiver()
        assert await Dispatcher(db, handlers=registry(receiver)).dispatch_once() == 3
    assert sorted(str(e.payload["n"]) for e in receiver.calls) == ["1", "3", "4"]
