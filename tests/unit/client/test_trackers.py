"""Announce URLs derived from the tracker's base URL, and passkeys."""

from __future__ import annotations

import pytest
from helpers import make_passkey

from weightless.client.errors import ClientError
from weightless.client.trackers import Tracker, pick_passkey
from weightless.client.trackers import make_passkey as client_passkey

KEY = make_passkey("s3cret", "alice")


def test_udp_first_without_a_passkey_on_the_http_port() -> None:
    assert Tracker("http://tracker.example:8080/").announce_urls() == [
        "udp://tracker.example:8080/announce",
        "http://tracker.example:8080/announce",
    ]


def test_http_first_with_a_passkey_in_the_form_clients_derive_a_scrape_url_from() -> None:
    assert Tracker("http://t.example:8080", udp_port=6969).announce_urls(KEY) == [
        f"http://t.example:8080/{KEY}/announce",
        f"udp://t.example:6969/announce/{KEY}",
    ]


def test_default_ports_prefixes_ipv6_and_choices() -> None:
    assert Tracker("https://t.example/tracker").announce_urls() == [
        "udp://t.example:443/announce",
        "https://t.example/tracker/announce",
    ]
    assert Tracker("http://[::1]:8080").announce_urls()[0] == "udp://[::1]:8080/announce"
    assert Tracker("http://t:80", udp_port=0).announce_urls() == ["http://t:80/announce"]
    assert Tracker("http://t:80", protocols=("udp",)).announce_urls() == ["udp://t:80/announce"]
    assert Tracker("http://t:80", protocols=("http",)).announce_urls(KEY) == [
        f"http://t:80/{KEY}/announce"
    ]
    assert Tracker("http://t:81/").api("/api/registry") == "http://t:81/api/registry"
    assert Tracker("http://t:81/").public_announce == "http://t:81/announce"


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("ftp://t", {}),
        ("t.example:8080", {}),
        ("http://", {}),
        ("http://t:99999", {}),
        ("http://t/?q=1", {}),
        ("http://t", {"protocols": ()}),
        ("http://t", {"protocols": ("wss",)}),
        ("http://t", {"protocols": ("udp",), "udp_port": 0}),
        ("http://t", {"udp_port": 70000}),
    ],
)
def test_bad_trackers_are_one_line_errors(url: str, options: dict[str, object]) -> None:
    with pytest.raises(ClientError):
        Tracker(url, **options)  # type: ignore[arg-type]


def test_passkeys() -> None:
    assert client_passkey("alice", "s3cret") == KEY
    assert pick_passkey(None, "alice", "s3cret") == KEY
    assert pick_passkey(KEY, None) == KEY
    assert pick_passkey(None, None) is None
    for bad in ("alice", "alice.1234", "a b." + "0" * 64):
        with pytest.raises(ClientError, match="passkey"):
            pick_passkey(bad, None)
    with pytest.raises(ClientError, match="not both"):
        pick_passkey(KEY, "alice", "s3cret")
    with pytest.raises(ClientError, match="TRACKER_SECRET"):
        client_passkey("alice", "")
    with pytest.raises(ClientError, match="user id"):
        client_passkey("al ice", "s3cret")
