"""Issue 8, item 8: ``--open`` is bounded by ``--max-swarms``; beyond it a new hash gets the
failure reason ``tracker is full`` (HTTP and UDP), while swarms already held and registered
hashes go on being served."""

from __future__ import annotations

import pytest
import udp_client

from unit.test_config import config
from unit.tracker.test_core import announce, make
from unit.udp.test_protocol import Harness
from weightless.config import ConfigError
from weightless.tracker.catalog import CatalogEntry
from weightless.tracker.core import Policy


def h(n: int) -> bytes:
    return n.to_bytes(20, "big")


def test_a_new_hash_beyond_the_cap_is_refused_over_http() -> None:
    t = make(max_swarms=3)
    for n in range(3):
        assert b"failure reason" not in announce(t, h(n), 1)
    for n in range(3, 10):
        assert announce(t, h(n), 1) == {b"failure reason": b"tracker is full"}
    assert len(t.swarms.swarms) == 3 and t.swarms.peer_count == 3
    # swarms already tracked keep taking peers; a stop of an unknown hash is harmless
    assert b"failure reason" not in announce(t, h(0), 2)
    assert b"failure reason" not in announce(t, h(20), 3, event="stopped")
    # a swarm that empties frees its place
    announce(t, h(1), 1, event="stopped")
    assert b"failure reason" not in announce(t, h(11), 1)
    assert announce(t, h(12), 1) == {b"failure reason": b"tracker is full"}


def test_registered_hashes_are_served_whatever_the_cap() -> None:
    t = make(max_swarms=1)
    entry = CatalogEntry("ab" * 32, None, 0)
    t.catalog.load([entry], [])
    announce(t, h(0), 1)
    assert announce(t, h(1), 1) == {b"failure reason": b"tracker is full"}
    wire = next(k for k, (_, e) in t.catalog.by_wire.items() if e is entry)
    assert b"failure reason" not in announce(t, wire, 1)


def test_a_new_hash_beyond_the_cap_gets_a_bep15_error() -> None:
    harness = Harness()
    harness.tracker.policy = Policy(open=True, max_swarms=2)
    assert isinstance(harness.announce(("10.0.0.1", 6881), h(1)), udp_client.AnnounceResponse)
    assert isinstance(harness.announce(("10.0.0.1", 6881), h(2)), udp_client.AnnounceResponse)
    reply = harness.announce(("10.0.0.1", 6881), h(3))
    assert reply == udp_client.ErrorResponse(42, "tracker is full")
    assert isinstance(harness.announce(("10.0.0.2", 6882), h(2)), udp_client.AnnounceResponse)


def test_max_swarms_option() -> None:
    assert config([]).max_swarms == 1_000_000
    assert config(["--max-swarms", "5"]).max_swarms == 5
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="max-swarms"):
            config(["--max-swarms", bad])
