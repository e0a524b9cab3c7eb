"""Pure parts of the registry: input checks, the RegistryEntry shape, search parameters, and
how registry changes reach the in-memory catalog and swarms."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail, succeed

from weightless.registry.entries import Entry, Invalid, entry_json, parse_hash, parse_json_body
from weightless.registry.live import CountsPublisher, LiveRegistry
from weightless.registry.search import MAX_OFFSET, Search, like_pattern, parse_search
from weightless.registry.store import Snapshot, StoreUnavailable
from weightless.tracker.catalog import Catalog, CatalogEntry
from weightless.tracker.swarm import SwarmStore
from weightless.web.registry_api import content_disposition

V2 = hashlib.sha256(b"e").hexdigest()
V1 = hashlib.sha1(b"e").hexdigest()
OTHER = hashlib.sha256(b"o").hexdigest()


def test_parse_hash() -> None:
    assert parse_hash(V2.upper()) == V2
    assert parse_hash(V1) == V1
    for bad in ("", None, 5, "abc123", V2[:-1], "x" * 64, V1 + "0"):
        with pytest.raises(Invalid):
            parse_hash(bad)
    with pytest.raises(Invalid, match="40 hex"):
        parse_hash(V2, "v1_info_hash", (40,))


def test_json_body_normalizes_hashes_and_drops_nulls() -> None:
    body = b'{"info_hash": "%s", "v1_info_hash": "%s", "name": "n", "tags": null}' % (
        V2.upper().encode(),
        V1.upper().encode(),
    )
    submission = parse_json_body(body)
    assert submission.entry == Entry(V2, "n", V1)
    assert submission.torrent_data is None
    with pytest.raises(Invalid, match="goes with"):
        parse_json_body(
            b'{"info_hash": "%s", "v1_info_hash": "%s", "name": "n"}'
            % (V1.encode(), OTHER[:40].encode())
        )


def test_entry_json_shape() -> None:
    entry = Entry(V2, "n", completions=3, size=0, tags="")
    assert entry_json(entry, 2, 1) == {
        "info_hash": V2,
        "name": "n",
        "verified": False,
        "completions": 3,
        "size": 0,
        "tags": "",
        "magnet": f"magnet:?xt=urn:btmh:1220{V2}&dn=n",
        "seeders": 2,
        "leechers": 1,
    }


@pytest.mark.parametrize(
    ("info_hash", "v1", "hashes"),
    [
        (V2, V1, f"xt=urn:btih:{V1}&xt=urn:btmh:1220{V2}"),  # hybrid: both
        (V2, None, f"xt=urn:btmh:1220{V2}"),  # v2-only: btmh alone
        (V1, None, f"xt=urn:btih:{V1}"),  # v1-only: btih alone, never btmh with 40 hex
    ],
)
def test_an_entry_has_its_version_created_at_and_the_magnet_of_its_own_hashes(
    info_hash: str, v1: str | None, hashes: str
) -> None:
    entry = Entry(info_hash, "a b", v1, version="v1.0+fp16", created_at=1796677445.9)
    out = entry_json(entry, 0, 0, ["http://t.example:8080/announce"])
    assert out["version"] == "v1.0+fp16"
    assert out["created_at"] == "2026-12-07T21:04:05Z"
    tr = "tr=http%3A%2F%2Ft.example%3A8080%2Fannounce"
    assert out["magnet"] == f"magnet:?{hashes}&dn=a+b&{tr}"


@pytest.mark.parametrize("version", ["", "a" * 65, "1.0 beta", "v1/2", "v@1", "é", 7, None])
def test_a_version_is_1_to_64_of_the_allowed_characters(version: object) -> None:
    doc = {"info_hash": V2, "name": "n", "version": version}
    if version is None:
        assert parse_json_body(json.dumps(doc).encode()).entry.version is None
        return
    with pytest.raises(Invalid, match="version must be"):
        parse_json_body(json.dumps(doc).encode())
    assert parse_json_body(json.dumps({**doc, "version": "A-z_0.9+1"}).encode()).entry.version


def test_parse_search() -> None:
    assert parse_search({}) == Search()
    assert parse_search({"limit": "500", "offset": str(2**63 - 1)}) == Search(
        limit=100, offset=MAX_OFFSET
    )
    assert parse_search({"q": "", "category": "", "sort": ""}) == Search()
    assert parse_search({"sort": "seeders", "limit": "007"}).limit == 7
    bad_ones = [{"limit": "0"}, {"limit": "²"}, {"offset": "-3"}, {"sort": "SEEDERS"}]
    bad_ones += [{"limit": " 7 "}, {"offset": "9" * 40}]  # strict: no spaces, int64 at most
    for bad in bad_ones:
        with pytest.raises(Invalid):
            parse_search(bad)


def test_like_pattern_takes_wildcards_literally() -> None:
    assert like_pattern("50%") == "%50\\%%"
    assert like_pattern("a_b\\c") == "%a\\_b\\\\c%"


def test_content_disposition() -> None:
    assert content_disposition("model.torrent") == (
        b"attachment; filename=\"model.torrent\"; filename*=UTF-8''model.torrent"
    )
    assert content_disposition("a\r\nb").startswith(b'attachment; filename="a__b.torrent"')


def _live() -> LiveRegistry:
    catalog = Catalog()
    catalog.add(CatalogEntry(V2, V1, 5))
    return LiveRegistry(catalog, SwarmStore(lambda: 0.5))


def _peer(live: LiveRegistry, key: bytes, n: int, seeding: bool) -> None:
    live.swarms.put(key, bytes([127, 0, 0, 1, 0, n]), b"%020d" % n, seeding, 1)


def test_taken_down_drops_every_alias_swarm_and_blocks() -> None:
    live = _live()
    _peer(live, bytes.fromhex(V2)[:20], 1, True)
    _peer(live, bytes.fromhex(V1), 2, False)  # announced before registration (open mode)
    live.taken_down([V2, V1])
    assert live.catalog.entries == {} and live.catalog.by_wire == {}
    assert live.swarms.peer_count == 0
    assert live.catalog.blocked == {bytes.fromhex(V2)[:20], bytes.fromhex(V1)}


def test_counts_and_completions() -> None:
    live = _live()
    _peer(live, bytes.fromhex(V2)[:20], 1, True)
    _peer(live, bytes.fromhex(V2)[:20], 2, False)
    _peer(live, bytes.fromhex(OTHER)[:20], 3, True)  # not registered: not counted
    assert live.counts(V2) == (1, 1)
    assert live.counts(OTHER) == (0, 0)
    assert live.all_counts() == {V2: (1, 1)}
    assert live.completions(V2, 3) == 5 and live.completions(V2, 9) == 9
    assert live.completions(OTHER, 4) == 4


def test_resync_makes_the_catalog_match_the_store() -> None:
    live = _live()
    live.catalog.add(CatalogEntry(OTHER, None, 0))
    live.catalog.block([hashlib.sha1(b"unblocked").hexdigest()])
    key = bytes.fromhex(OTHER)[:20]
    _peer(live, key, 1, True)
    third = hashlib.sha256(b"third").hexdigest()
    live.resync(Snapshot([CatalogEntry(V2, V1, 2), CatalogEntry(third, None, 1)], []))
    assert set(live.catalog.entries) == {V2, third}
    assert live.catalog.entries[V2].completions == 5  # counted here since: kept
    assert live.catalog.blocked == set()
    assert live.swarms.peer_count == 1  # a missing entry alone does not cost peers
    live.resync(Snapshot([], [V1]))
    assert live.catalog.entries == {} and live.catalog.blocked == {bytes.fromhex(V1)}


class FakeStore:
    def __init__(self) -> None:
        self.saved: list[tuple[dict[str, tuple[int, int]], bool]] = []
        self.down = False

    def save_counts(self, counts: dict[str, tuple[int, int]], reset: bool) -> Deferred[None]:
        if self.down:
            return fail(StoreUnavailable("down"))
        self.saved.append((dict(counts), reset))
        return succeed(None)


def test_counts_publisher_writes_changes_only() -> None:
    live = _live()
    store = FakeStore()
    publisher = CountsPublisher(live, store, reactor=Any)  # type: ignore[arg-type]
    publisher.publish()
    assert store.saved == [({}, True)]  # first: reset the store's stale counts
    publisher.publish()
    assert len(store.saved) == 1
    _peer(live, bytes.fromhex(V2)[:20], 1, True)
    publisher.publish()
    assert store.saved[-1] == ({V2: (1, 0)}, False)
    live.swarms.drop(bytes.fromhex(V2)[:20])
    store.down = True
    publisher.publish()  # failed: everything is written again next time
    store.down = False
    publisher.publish()
    assert store.saved[-1] == ({}, True)


def test_counts_publisher_counts_in_slices_of_reactor_turns() -> None:
    from twisted.internet.task import Clock

    from weightless.registry.live import COUNTS_SLICE

    live = LiveRegistry(Catalog(), SwarmStore(lambda: 0.5))
    for i in range(COUNTS_SLICE + 10):
        h = hashlib.sha256(b"%d" % i).hexdigest()
        live.catalog.add(CatalogEntry(h, None, 0))
        _peer(live, bytes.fromhex(h)[:20], i % 250, True)
    store = FakeStore()
    clock = Clock()
    done = CountsPublisher(live, store, clock).publish()  # type: ignore[arg-type]
    assert not done.called and store.saved == []  # the first slice only, then the reactor
    clock.advance(0)
    assert done.called and len(store.saved[0][0]) == COUNTS_SLICE + 10


def test_whole_numbers_written_with_a_fraction_are_sizes() -> None:
    """JSON has one number type: a client (or JSON Schema) that writes 1048576.0 or 1e6 means
    a whole number of bytes."""
    body = '{"info_hash": "%s", "name": "n", "size": %s}'
    for text, size in (("1048576.0", 1048576), ("1e6", 1000000), ("0.0", 0)):
        entry = parse_json_body((body % ("ab" * 32, text)).encode()).entry
        assert entry.size == size and type(entry.size) is int
    for text in ("1.5", "-1.0", "1e19", "9.3e18"):
        with pytest.raises(Invalid):
            parse_json_body((body % ("ab" * 32, text)).encode())
