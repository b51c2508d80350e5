"""The citizen's inbox: pagination and unread counts, isolation between users on every route, push devices
and the sandbox sender, and real-time delivery over server-sent events.

The app runs in the test's own event loop (its lifespan entered directly, requests through httpx's ASGI
transport), so notifications can be posted with the app's own database the way other modules will post
them, and the SSE stream can be read while it is open. Until the stores are merged, the pub/sub is a small
in-process double implementing ``app.core.stores.base.PubSub``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar

from app.core.db import Database
from app.core.security import Caller, issue_access_token
from app.core.settings import Settings
from app.core.stores.base import PubSub
from app.identity.inbox import InboxDelivery, post_notification
from tests.conftest import assert_problem

pytestmark = pytest.mark.usefixtures("tokens_without_sessions")

INBOX = "/api/v1/me/inbox"
ALICE = uuid.UUID("0190b000-0000-7000-8000-00000000000a")
BINH = uuid.UUID("0190b000-0000-7000-8000-00000000000b")


class MemoryPubSub(PubSub):
    """Test double of the stores' pub/sub: subscribing takes effect at the first iteration, like Redis."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, channel: str, message: bytes) -> None:
        self.published.append((channel, message))
        for queue in list(self.subscribers[channel]):
            queue.put_nowait(message)

    async def subscribe(self, channel: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.subscribers[channel].add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self.subscribers[channel].discard(queue)


class _StartableSubscription:
    """Like the stores' ``Subscription``: live once ``start()`` returns."""

    def __init__(self, hub: StartablePubSub, channel: str) -> None:
        self.hub, self.channel = hub, channel
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def start(self) -> None:
        self.hub.subscribers[self.channel].add(self.queue)

    async def aclose(self) -> None:
        self.hub.subscribers[self.channel].discard(self.queue)

    def __aiter__(self) -> _StartableSubscription:
        return self

    async def __anext__(self) -> bytes:
        await self.start()
        return await self.queue.get()


class StartablePubSub(MemoryPubSub):
    def subscribe(self, channel: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        return _StartableSubscription(self, channel)


@dataclass
class FakeStores:
    pubsub: PubSub


@dataclass
class Inbox:
    app: Litestar
    http: httpx.AsyncClient
    settings: Settings
    pubsub: MemoryPubSub

    @property
    def db(self) -> Database:
        db: Database = self.app.state.db
        return db

    @property
    def delivery(self) -> InboxDelivery:
        delivery: InboxDelivery = self.app.state.inbox_delivery
        return delivery

    def auth(self, user: uuid.UUID) -> dict[str, str]:
        caller = Caller(user_id=user, session_id=uuid.uuid4(), roles=frozenset({"citizen"}), identity_level=1)
        token, _ = issue_access_token(self.settings, caller)
        return {"Authorization": f"Bearer {token}"}

    async def post(self, user: uuid.UUID, count: int = 1, **kwargs: Any) -> list[str]:
        """Notifications posted the way another module does: in its own committed transaction."""
        ids = []
        for i in range(count):
            async with self.db.transaction() as session:
                row = await post_notification(
                    session,
                    user,
                    kwargs.get("kind", "bill.due"),
                    kwargs.get("title_vi", f"Hóa đơn tiền nước #{i}"),
                    kwargs.get("body_vi", f"Hóa đơn #{i} đến hạn ngày 25."),
                    title_en=kwargs.get("title_en"),
                    body_en=kwargs.get("body_en"),
                    data={"bill_id": str(uuid.uuid4()), "n": i},
                )
                ids.append(str(row.id))
        return ids


async def _open(app: Litestar, settings: Settings, pubsub: MemoryPubSub | None) -> AsyncIterator[Inbox]:
    """The app started in this event loop. Its lifespan runs in a task of its own, because the lifespan's
    cancel scopes must be entered and left by one task (fixture setup and teardown are different tasks)."""
    if pubsub is not None:
        app.state.stores = FakeStores(pubsub)
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    lifespan = asyncio.get_running_loop().create_task(run_lifespan())
    await asyncio.wait_for(started.wait(), timeout=10)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            yield Inbox(app, http, settings, pubsub or MemoryPubSub())
    finally:
        stop.set()
        await asyncio.wait_for(lifespan, timeout=10)


@pytest.fixture
async def inbox(app: Litestar, settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Inbox]:
    """Subscriptions that go live at the first iteration (the stream proves it with a probe), or, with
    the indirect parameter ``start``, when ``start()`` returns (the stores' ``Subscription``)."""
    pubsub = StartablePubSub() if getattr(request, "param", "iterate") == "start" else MemoryPubSub()
    async for opened in _open(app, settings, pubsub):
        yield opened


class SSEStream:
    """Reads ``GET /api/v1/me/inbox/stream`` event by event while it stays open (ASGI driven directly)."""

    def __init__(self, app: Litestar, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.events: asyncio.Queue[dict[str, str] | None] = asyncio.Queue()
        self.started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._disconnect = asyncio.Event()
        self._requested = False
        self._buffer = b""
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SSEStream:
        path = f"{INBOX}/stream"
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver.local"), *self.headers],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver.local", 80),
        }
        self._task = asyncio.get_running_loop().create_task(self.app(scope, self._receive, self._send))  # type: ignore[arg-type]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._disconnect.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, timeout=5)

    async def _receive(self) -> dict[str, Any]:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._disconnect.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started.set_result(message["status"])
            return
        if message["type"] != "http.response.body":
            return
        self._buffer += message.get("body", b"")
        while b"\r\n\r\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
            event: dict[str, str] = {}
            for line in block.decode().split("\r\n"):
                name, _, value = line.partition(": ")
                event[name or "comment"] = value
            self.events.put_nowait(event)
        if not message.get("more_body", False):
            self.events.put_nowait(None)

    async def next(self, timeout: float = 5) -> dict[str, str]:
        """The next named event (comments skipped)."""
        while True:
            event = await asyncio.wait_for(self.events.get(), timeout=timeout)
            assert event is not None, "the stream ended"
            if "event" in event:
                return event

    async def nothing_more(self, wait: float = 0.3) -> bool:
        with contextlib.suppress(TimeoutError):
            while True:
                event = await asyncio.wait_for(self.events.get(), timeout=wait)
                if event is None or "event" in event:
                    return False
        return True


# ------------------------------------------------------------------------------------------- the list


async def test_the_inbox_pages_newest_first_with_the_unread_count(inbox: Inbox) -> None:
    posted = await inbox.post(ALICE, 25)
    await inbox.post(BINH, 3)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        response = await inbox.http.get(INBOX, params=params, headers=inbox.auth(ALICE))
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert page["unread_count"] == 25
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(posted)), "every notification once, newest first"
    first = (await inbox.http.get(INBOX, params={"limit": 1}, headers=inbox.auth(ALICE))).json()["items"][0]
    assert first["title_vi"] == "Hóa đơn tiền nước #24"
    assert first["read"] is False
    assert first["data"]["n"] == 24
    bad = await inbox.http.get(INBOX, params={"cursor": "not-a-cursor"}, headers=inbox.auth(ALICE))
    assert_problem(bad, 422, "validation_failed")
    too_small = await inbox.http.get(INBOX, params={"limit": 0}, headers=inbox.auth(ALICE))
    assert_problem(too_small, 422, "validation_failed")


async def test_marking_read_moves_the_unread_count_and_is_idempotent(inbox: Inbox) -> None:
    n4, n3, n2, n1, n0 = await inbox.post(ALICE, 5)  # n0 is the newest
    alice = inbox.auth(ALICE)
    first = await inbox.http.post(
        f"{INBOX}/{n1}/read", headers={**alice, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert first.status_code == 200, first.text
    assert first.json()["read"] is True
    again = await inbox.http.post(f"{INBOX}/{n1}/read", headers=alice)
    assert again.json()["read_at"] == first.json()["read_at"], "a repeat keeps the first reading time"
    assert (await inbox.http.get(f"{INBOX}/unread-count", headers=alice)).json() == {"unread_count": 4}
    unread = (await inbox.http.get(INBOX, params={"unread_only": "true"}, headers=alice)).json()
    assert [item["id"] for item in unread["items"]] == [n0, n2, n3, n4]

    up_to = await inbox.http.post(f"{INBOX}/read-all", params={"up_to": n2}, headers=alice)
    assert up_to.status_code == 200, up_to.text
    assert up_to.json() == {"marked": 3, "unread_count": 1}, "n0 arrived after the list was drawn"
    repeat = await inbox.http.post(f"{INBOX}/read-all", params={"up_to": n2}, headers=alice)
    assert repeat.json() == {"marked": 0, "unread_count": 1}
    everything = await inbox.http.post(f"{INBOX}/read-all", headers=alice)
    assert everything.json() == {"marked": 1, "unread_count": 0}
    assert (await inbox.http.get(f"{INBOX}/{n0}", headers=alice)).json()["read"] is True


async def test_a_citizen_never_sees_or_marks_anothers_notifications(inbox: Inbox) -> None:
    (alices,) = await inbox.post(ALICE)
    binh = inbox.auth(BINH)
    assert_problem(await inbox.http.get(f"{INBOX}/{alices}", headers=binh), 404, "not_found")
    assert_problem(await inbox.http.post(f"{INBOX}/{alices}/read", headers=binh), 404, "not_found")
    assert_problem(await inbox.http.get(f"{INBOX}/{uuid.uuid4()}", headers=binh), 404, "not_found")
    listing = (await inbox.http.get(INBOX, headers=binh)).json()
    assert listing == {"items": [], "next_cursor": None, "unread_count": 0}
    assert (await inbox.http.get(f"{INBOX}/unread-count", headers=binh)).json() == {"unread_count": 0}
    assert (await inbox.http.post(f"{INBOX}/read-all", headers=binh)).json() == {
        "marked": 0,
        "unread_count": 0,
    }
    marked_up_to = await inbox.http.post(f"{INBOX}/read-all", params={"up_to": alices}, headers=binh)
    assert marked_up_to.json()["marked"] == 0
    mine = await inbox.http.get(f"{INBOX}/{alices}", headers=inbox.auth(ALICE))
    assert mine.json()["read"] is False, "Bình's requests left Alice's notification unread"


async def test_every_inbox_route_needs_a_signed_in_caller(inbox: Inbox) -> None:
    some = uuid.uuid4()
    for method, path in (
        ("GET", INBOX),
        ("GET", f"{INBOX}/unread-count"),
        ("GET", f"{INBOX}/stream"),
        ("GET", f"{INBOX}/{some}"),
        ("POST", f"{INBOX}/{some}/read"),
        ("POST", f"{INBOX}/read-all"),
        ("GET", f"{INBOX}/push-tokens"),
        ("POST", f"{INBOX}/push-tokens"),
        ("DELETE", f"{INBOX}/push-tokens/{some}"),
        ("GET", f"{INBOX}/push-sandbox"),
    ):
        response = await inbox.http.request(method, path, headers={"Authorization": "Bearer nope"})
        assert_problem(response, 401, "unauthenticated")


# ------------------------------------------------------------------------------------------- push


async def test_push_tokens_register_idempotently_and_stay_private(inbox: Inbox) -> None:
    alice, binh = inbox.auth(ALICE), inbox.auth(BINH)
    token = "fcm-" + "a1b2c3d4" * 20
    body = {"token": token, "platform": "fcm", "device_name": "Galaxy A54"}
    first = await inbox.http.post(f"{INBOX}/push-tokens", json=body, headers=alice)
    assert first.status_code == 200, first.text
    device = first.json()
    assert device["token_hint"] == "…" + token[-6:]
    assert token not in first.text, "the token itself is never sent back"
    again = await inbox.http.post(
        f"{INBOX}/push-tokens", json=body, headers={**alice, "Idempotency-Key": "k1"}
    )
    assert again.json()["id"] == device["id"]
    assert [d["id"] for d in (await inbox.http.get(f"{INBOX}/push-tokens", headers=alice)).json()] == [
        device["id"]
    ]

    assert (await inbox.http.get(f"{INBOX}/push-tokens", headers=binh)).json() == []
    assert_problem(
        await inbox.http.delete(f"{INBOX}/push-tokens/{device['id']}", headers=binh), 404, "not_found"
    )

    # Bình signs in on the same phone: the token now delivers to him, no longer to Alice.
    moved = await inbox.http.post(f"{INBOX}/push-tokens", json=body, headers=binh)
    assert moved.status_code == 200
    assert (await inbox.http.get(f"{INBOX}/push-tokens", headers=alice)).json() == []
    assert_problem(
        await inbox.http.delete(f"{INBOX}/push-tokens/{device['id']}", headers=alice), 404, "not_found"
    )
    removed = await inbox.http.delete(f"{INBOX}/push-tokens/{moved.json()['id']}", headers=binh)
    assert removed.status_code == 204
    assert (await inbox.http.get(f"{INBOX}/push-tokens", headers=binh)).json() == []

    for bad in (
        {"token": token, "platform": "sms"},
        {"token": "short", "platform": "fcm"},
        {"token": token, "platform": "fcm", "user_id": str(ALICE)},
    ):
        assert_problem(
            await inbox.http.post(f"{INBOX}/push-tokens", json=bad, headers=alice), 422, "validation_failed"
        )


async def test_a_committed_notification_is_pushed_to_each_device_in_its_language(inbox: Inbox) -> None:
    alice = inbox.auth(ALICE)
    for token, platform, language in (
        ("fcm-token-vi-000001", "fcm", "vi"),
        ("apns0000000000en", "apns", "en"),
    ):
        response = await inbox.http.post(
            f"{INBOX}/push-tokens",
            json={"token": token, "platform": platform, "language": language},
            headers=alice,
        )
        assert response.status_code == 200, response.text
    (posted,) = await inbox.post(
        ALICE,
        title_vi="Đã nhận 50.000 đ",
        body_vi="Từ Bình",
        title_en="Received 50,000 VND",
        body_en="From Binh",
    )
    await inbox.delivery.drain()
    pushes = (await inbox.http.get(f"{INBOX}/push-sandbox", headers=alice)).json()
    assert sorted((p["platform"], p["title"]) for p in pushes) == [
        ("apns", "Received 50,000 VND"),
        ("fcm", "Đã nhận 50.000 đ"),
    ]
    assert all(p["notification_id"] == posted for p in pushes)
    assert (await inbox.http.get(f"{INBOX}/push-sandbox", headers=inbox.auth(BINH))).json() == []


async def test_nothing_is_stored_or_pushed_when_the_posting_transaction_rolls_back(inbox: Inbox) -> None:
    alice = inbox.auth(ALICE)
    await inbox.http.post(
        f"{INBOX}/push-tokens", json={"token": "fcm-token-000002", "platform": "fcm"}, headers=alice
    )

    async def failing_payment() -> None:
        async with inbox.db.transaction() as session:
            await post_notification(session, ALICE, "payment.received", "Đã nhận tiền", "Từ Bình")
            raise RuntimeError("insufficient funds")

    with pytest.raises(RuntimeError):
        await failing_payment()
    await inbox.delivery.drain()
    assert (await inbox.http.get(INBOX, headers=alice)).json()["items"] == []
    assert (await inbox.http.get(f"{INBOX}/push-sandbox", headers=alice)).json() == []
    assert not any(channel == f"inbox:{ALICE}" for channel, _ in inbox.pubsub.published)


async def test_a_dead_push_token_is_forgotten(inbox: Inbox) -> None:
    alice = inbox.auth(ALICE)
    await inbox.http.post(
        f"{INBOX}/push-tokens", json={"token": "invalid-uninstalled", "platform": "fcm"}, headers=alice
    )
    await inbox.post(ALICE)
    await inbox.delivery.drain()
    assert (await inbox.http.get(f"{INBOX}/push-tokens", headers=alice)).json() == []


# ------------------------------------------------------------------------------------------- real time


@pytest.mark.parametrize("inbox", ["iterate", "start"], indirect=True)
async def test_the_stream_delivers_a_notification_posted_after_subscribing(inbox: Inbox) -> None:
    async with SSEStream(inbox.app, inbox.auth(ALICE)) as stream:
        assert await stream.started == 200
        ready = await stream.next()
        assert ready["event"] == "ready"
        assert json.loads(ready["data"]) == {"unread_count": 0}

        await inbox.post(BINH, title_vi="Cho Bình")
        (posted,) = await inbox.post(ALICE, title_vi="Hồ sơ đã được duyệt", kind="dossier.status_changed")
        event = await stream.next()
        assert event["event"] == "notification", "Bình's notification never reaches Alice's stream"
        assert event["id"] == posted
        notification = json.loads(event["data"])
        assert notification["title_vi"] == "Hồ sơ đã được duyệt"
        assert notification["kind"] == "dossier.status_changed"

        await inbox.http.post(f"{INBOX}/{posted}/read", headers=inbox.auth(ALICE))
        count = await stream.next()
        assert (count["event"], json.loads(count["data"])) == ("unread_count", {"unread_count": 0})
        assert await stream.nothing_more()


@pytest.mark.parametrize("inbox", ["iterate", "start"], indirect=True)
async def test_a_reconnecting_stream_receives_what_it_missed(inbox: Inbox) -> None:
    first, second, third = await inbox.post(ALICE, 3)
    async with SSEStream(inbox.app, {**inbox.auth(ALICE), "Last-Event-ID": first}) as stream:
        assert (await stream.next())["event"] == "ready"
        assert [(await stream.next())["id"] for _ in range(2)] == [second, third]
        assert await stream.nothing_more()


@pytest.mark.parametrize("inbox", ["iterate", "start"], indirect=True)
async def test_a_rolled_back_notification_is_never_streamed(inbox: Inbox) -> None:
    async with SSEStream(inbox.app, inbox.auth(ALICE)) as stream:
        assert (await stream.next())["event"] == "ready"

        async def refused() -> None:
            async with inbox.db.transaction() as session:
                await post_notification(session, ALICE, "bill.paid", "Đã thanh toán", "Không")
                raise RuntimeError("refused")

        with pytest.raises(RuntimeError):
            await refused()
        (committed,) = await inbox.post(ALICE)
        assert (await stream.next())["id"] == committed


async def test_the_stream_is_unavailable_without_pub_sub(app: Litestar, settings: Settings) -> None:
    app.state.stores = None
    async for opened in _open(app, settings, None):
        response = await opened.http.get(f"{INBOX}/stream", headers=opened.auth(ALICE))
        assert_problem(response, 503, "service_unavailable")
        # The inbox itself still works.
        await opened.post(ALICE)
        assert (await opened.http.get(f"{INBOX}/unread-count", headers=opened.auth(ALICE))).json() == {
            "unread_count": 1
        }


async def test_posting_refuses_malformed_notifications(inbox: Inbox) -> None:
    async with inbox.db.transaction() as session:
        for kwargs in (
            {"kind": "Bill Due", "title_vi": "a", "body_vi": "b"},
            {"kind": "bill.due", "title_vi": " ", "body_vi": "b"},
            {"kind": "bill.due", "title_vi": "a", "body_vi": "b", "data": {"blob": "x" * 5000}},
        ):
            with pytest.raises(ValueError):
                await post_notification(session, ALICE, **kwargs)
