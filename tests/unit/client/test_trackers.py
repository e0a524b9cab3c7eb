"""Announce URLs derived from the tracker's base URL, and passkeys."""

from __future__ import annotations

import pytest
from helpers import make_passkey

from weightless.client.errors import ClientError
from weightless.client.trackers import Tracker, env_passkey, hide_passkeys, pick_passkey
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


def test_passkeys_are_never_shown_in_full() -> None:
    alice = client_passkey("alice", "s")
    bob = client_passkey("b-o_b", "s")
    text = f"http://t:8080/{alice}/announce and udp://t:8080/announce/{bob}; {alice.upper()}"
    assert hide_passkeys(text) == (
        "http://t:8080/alice.…/announce and udp://t:8080/announce/b-o_b.…; ALICE.…"
    )
    info_hash = "ab" * 32  # a hash alone is not a passkey
    assert hide_passkeys(f"v2 {info_hash}, x.{info_hash}0") == f"v2 {info_hash}, x.{info_hash}0"


def test_the_passkey_defaults_to_wl_passkey(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WL_PASSKEY", raising=False)
    assert env_passkey(None) is None
    monkeypatch.setenv("WL_PASSKEY", "alice.key")
    assert env_passkey(None) == "alice.key"
    assert env_passkey("bob.key") == "bob.key"
    monkeypatch.setenv("WL_PASSKEY", "")
    assert env_passkey(None) is None
