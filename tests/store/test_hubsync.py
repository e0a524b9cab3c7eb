"""Usage sync to a hub (weightless.hubsync) on SQLite and PostgreSQL, against a hub written
here on a real socket that takes a batch and drops the answer, answers 500, 403 and 400, and
hangs. Across a restart (new store objects, a new sender, on the same database) every byte of
every user reaches the hub exactly once, counted by distinct sync_id, in the order of the
batches."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_twisted
from registry_kit import make_store
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.web.client import Agent
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from weightless.hubsync import HubSync
from weightless.metrics import Stats
from weightless.registry.store import IStore
from weightless.tracker.accounting import PendingWrites

KEY = "hub registry key"


class Hub(Resource):
    """A hub that applies each batch once per sync_id and misbehaves as scripted: one of
    ok, drop (applies, then closes without an answer), hang (applies, never answers), 500,
    403, 400 (neither applies)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.script: Iterator[str] = iter(())
        self.applied: dict[str, dict[str, Any]] = {}  # sync_id -> deltas, first seen
        self.order: list[str] = []  # sync_ids as first applied
        self.bodies: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []  # (sync_id, what the hub did)
        self.headers: list[tuple[str | None, str | None]] = []
        self.hanging: list[Any] = []

    def render_POST(self, request: Any) -> Any:
        body = request.content.read()
        doc = json.loads(body)
        sync_id = doc["sync_id"]
        assert self.bodies.setdefault(sync_id, body) == body  # a retry is the same batch
        self.headers.append(
            (request.getHeader("x-weightless-key"), request.getHeader("content-type"))
        )
        assert request.path == b"/hub/api/internal/usage-sync"
        what = next(self.script, "ok")
        self.requests.append((sync_id, what))
        if what in ("ok", "drop", "hang") and sync_id not in self.applied:
            self.applied[sync_id] = doc["deltas"]
            self.order.append(sync_id)
        if what == "drop":
            request.channel.transport.abortConnection()
            return NOT_DONE_YET
        if what == "hang":
            self.hanging.append(request)
            return NOT_DONE_YET
        request.setResponseCode({"ok": 200, "500": 500, "403": 403, "400": 400}[what])
        return b"{}"

    def totals(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for deltas in self.applied.values():
            for user, d in deltas.items():
                t = found.setdefault(user, [0, 0])
                t[0] += d["Uploaded"]
                t[1] += d["Downloaded"]
        return found


@pytest_twisted.async_yield_fixture
async def hub() -> AsyncIterator[tuple[Hub, str]]:
    resource = Hub()
    port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")
    yield resource, f"http://127.0.0.1:{port.getHost().port}/hub"
    await port.stopListening()


class Tracker:
    """What a tracker process holds for the sync: a store on the database and a sender."""

    ids = (f"{n:032x}" for n in itertools.count(1))  # increasing: the hub sees the order

    def __init__(self, store_url: str, hub_url: str) -> None:
        self.store = make_store(store_url, usage_sync=True)
        self.stats = Stats()
        self.sync = HubSync(
            self.store,
            hub_url,
            KEY,
            Agent(reactor),
            reactor,
            self.stats,
            timeout=0.5,
            sync_id=lambda: next(Tracker.ids),
        )

    async def traffic(self, rows: dict[str, tuple[int, int]]) -> None:
        """A flush of queued writes with this traffic."""
        pending = PendingWrites()
        for user, (up, down) in rows.items():
            pending.transfer(user, up, down)
        await self.store.flush(pending)


@pytest_twisted.ensureDeferred
async def test_every_byte_reaches_the_hub_once_in_order_across_a_restart(
    store_url: str, hub: tuple[Hub, str]
) -> None:
    resource, url = hub
    sent: dict[str, list[int]] = {}

    async def traffic(t: Tracker, n: int) -> None:
        rows = {f"user-{u}": (n * 1000 + u, n + u * 7) for u in range(n % 3 + 1)}
        for user, (up, down) in rows.items():
            total = sent.setdefault(user, [0, 0])
            total[0] += up
            total[1] += down
        await t.traffic(rows)

    t = Tracker(store_url, url)
    await t.store.open()
    resource.script = iter(["drop", "500", "hang", "ok", "400", "drop", "ok"])
    for n in range(1, 9):
        await traffic(t, n)
        await t.sync.tick()
    assert t.stats.hub_retried == 4  # drop, 500, hang, drop: each sent again next tick
    assert t.stats.hub_set_aside == 1
    set_aside = [sid for sid, what in resource.requests if what == "400"]
    for user_rows in (resource.bodies[s] for s in set_aside):  # kept aside, not lost
        for user, d in json.loads(user_rows)["deltas"].items():
            sent[user][0] -= d["Uploaded"]
            sent[user][1] -= d["Downloaded"]

    # a 403: nothing more is sent until a restart, and nothing is lost
    resource.script = iter(["403"])
    await traffic(t, 9)
    await t.sync.tick()
    asked = len(resource.requests)
    await traffic(t, 10)
    await t.sync.tick()
    assert len(resource.requests) == asked
    assert t.stats.hub_waiting >= 1
    await t.sync.stopService()  # a clean stop hands the sending on at once
    await t.store.close()

    # the restart: new objects on the same database; the kept batches go, same sync_ids
    t = Tracker(store_url, url)
    await t.store.open()
    resource.script = iter(["500", "drop"])
    await traffic(t, 11)
    for _ in range(4):
        await t.sync.tick()
    assert t.stats.hub_waiting == 0
    await t.store.close()

    assert resource.totals() == sent  # every byte once
    assert resource.order == sorted(resource.order)  # batches in the order they were made
    assert len(set(resource.order)) == len(resource.order)
    retried = [sid for sid, what in resource.requests if what in ("drop", "500", "hang")]
    assert all(sid in resource.applied for sid in retried)  # sent again with the same id
    assert set(resource.headers) == {(KEY, "application/json")}


@pytest_twisted.ensureDeferred
async def test_a_store_without_usage_sync_keeps_no_traffic_for_a_hub(store_url: str) -> None:
    store: IStore = make_store(store_url)
    await store.open()
    pending = PendingWrites()
    pending.transfer("alice", 5, 6)
    await store.flush(pending)
    assert await store.usage_tick("0" * 32, "me", 30)
    assert await store.usage_waiting(10) == []
    await store.close()


@pytest_twisted.ensureDeferred
async def test_batches_fold_users_and_saturate(store_url: str) -> None:
    store: IStore = make_store(store_url, usage_sync=True)
    await store.open()
    for up, down in ((2**62, 1), (2**62, 2), (2**62, 3)):
        pending = PendingWrites()
        pending.transfer("alice", up, down)
        pending.transfer("bob", 1, 0)
        await store.flush(pending)
    assert await store.usage_tick("a" * 32, "me", 30)
    assert await store.usage_tick("b" * 32, "me", 30)  # nothing new: no batch
    [(batch, sync_id, deltas)] = await store.usage_waiting(10)
    assert sync_id == "a" * 32
    assert json.loads(deltas) == {
        "alice": {"Uploaded": 2**63 - 1, "Downloaded": 6},
        "bob": {"Uploaded": 3, "Downloaded": 0},
    }
    await store.usage_done(batch, 422)  # set aside: kept, never offered again
    assert await store.usage_waiting(10) == []
    await store.close()


@pytest.mark.parametrize("status", [200])
@pytest_twisted.ensureDeferred
async def test_the_sender_waits_for_its_batch_on_a_stop(
    store_url: str, hub: tuple[Hub, str], status: int
) -> None:
    resource, url = hub
    t = Tracker(store_url, url)
    await t.store.open()
    await t.traffic({"carol": (7, 8)})
    t.sync.startService()
    d: Deferred[None] = t.sync.tick()
    await t.sync.stopService()
    assert d.called
    await deferLater(reactor, 0, lambda: None)
    await t.store.close()
    assert resource.totals() == {"carol": [7, 8]}


@pytest_twisted.ensureDeferred
async def test_one_sender_at_a_time_among_trackers_sharing_the_database(store_url: str) -> None:
    now = [1000.0]
    first = make_store(store_url, usage_sync=True, clock=lambda: now[0])
    second = make_store(store_url, usage_sync=True, clock=lambda: now[0])
    await first.open()
    await second.open()
    try:
        assert await first.usage_tick("1" * 32, "first", 30)
        assert not await second.usage_tick("2" * 32, "second", 30)  # it folds, does not send
        now[0] += 20
        assert await first.usage_tick("3" * 32, "first", 30)  # renewed
        now[0] += 29
        assert not await second.usage_tick("4" * 32, "second", 30)
        now[0] += 2  # the first stopped renewing: the lease passes on
        assert await second.usage_tick("5" * 32, "second", 30)
        assert not await first.usage_tick("6" * 32, "first", 30)
        await second.usage_release("second")  # it stopped
        assert await first.usage_tick("7" * 32, "first", 30)
    finally:
        await first.close()
        await second.close()
