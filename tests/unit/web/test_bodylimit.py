"""Which body limit a request gets, by its path: the JSON limit everywhere but torrent uploads."""

from __future__ import annotations

from weightless.web.bodylimit import JSON_LIMIT, TORRENT_LIMIT, limit_for


def test_limits_by_path() -> None:
    assert limit_for(b"/api/registry") == JSON_LIMIT == 1024 * 1024
    assert limit_for(b"/api/registry?info_hash=x") == JSON_LIMIT
    assert limit_for(b"/api/registry/torrent") == TORRENT_LIMIT == 16 * 1024 * 1024
    assert limit_for(b"/api/registry/torrent/?name=x") == TORRENT_LIMIT
    assert limit_for(b"http://tracker.example/api/registry/torrent") == TORRENT_LIMIT
    assert limit_for(b"/anything/else") == JSON_LIMIT
