from ipaddress import ip_network

import pytest

from weightless.web.clientip import ClientIP

PROXIES = ClientIP([ip_network("10.0.0.0/8"), ip_network("fd00::/8")])


@pytest.mark.parametrize(
    ("xff", "client"),
    [
        (b"203.0.113.10", "203.0.113.10"),
        (b"203.0.113.10:51008", "203.0.113.10"),
        (b"[2001:db8::10]:51009", "2001:db8::10"),
        (b"2001:db8::10", "2001:db8::10"),
        (b"[2001:db8::10]", "2001:db8::10"),
        (b"::ffff:203.0.113.10", "203.0.113.10"),
        (b"6.6.6.6, 203.0.113.10:51008", "203.0.113.10"),
        (b"6.6.6.6, 203.0.113.10:51008, 10.1.1.1:80", "203.0.113.10"),
        (b"6.6.6.6,[2001:db8::10]:51009,[fd00::1]:443", "2001:db8::10"),
        (b"10.1.1.1, 10.2.2.2", "10.0.0.1"),  # only proxies: the peer
        (b"unknown", "10.0.0.1"),
        (b"6.6.6.6, garbage", "10.0.0.1"),  # the proxy wrote no address: not the forged one
    ],
)
def test_x_forwarded_for_from_a_trusted_proxy(xff: bytes, client: str) -> None:
    assert PROXIES.resolve("10.0.0.1", xff) == client


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        (b"for=203.0.113.10", "203.0.113.10"),
        (b'for="203.0.113.10:51008"', "203.0.113.10"),
        (b'for="[2001:db8::10]:51009"', "2001:db8::10"),
        (b'for="[2001:db8::10]"', "2001:db8::10"),
        (b'for=6.6.6.6, for="[2001:db8::10]:51009";proto=https', "2001:db8::10"),
        (b"for=6.6.6.6, for=203.0.113.10;by=10.0.0.1, for=10.3.3.3", "203.0.113.10"),
        (b"for=6.6.6.6, for=_hidden", "10.0.0.1"),
        (b"for=6.6.6.6, for=unknown", "10.0.0.1"),
        (b"for=6.6.6.6, proto=https", "10.0.0.1"),
        (b"for=6.6.6.6, broken", "10.0.0.1"),
    ],
)
def test_forwarded_from_a_trusted_proxy(forwarded: bytes, client: str) -> None:
    assert PROXIES.resolve("10.0.0.1", None, forwarded) == client


def test_both_headers_that_agree_are_believed() -> None:
    assert PROXIES.resolve("10.0.0.1", b"203.0.113.10:5", b'for="203.0.113.10:6"') == "203.0.113.10"


def test_both_headers_that_disagree_name_nobody() -> None:
    """One of them was written by the client; nothing says which: the proxy's address."""
    assert PROXIES.resolve("10.0.0.1", b"192.0.2.66", b"for=203.0.113.10") == "10.0.0.1"
    assert PROXIES.resolve("10.0.0.1", b"203.0.113.10", b"for=192.0.2.66") == "10.0.0.1"


@pytest.mark.parametrize("peer", ["198.51.100.1", "2001:db8::1", "::ffff:198.51.100.1"])
def test_headers_from_anyone_else_are_ignored(peer: str) -> None:
    expected = "198.51.100.1" if "." in peer else peer
    assert PROXIES.resolve(peer, b"192.0.2.66", b"for=192.0.2.66") == expected


def test_ipv6_proxy_and_mapped_peer() -> None:
    assert PROXIES.resolve("fd00::5", b"203.0.113.10") == "203.0.113.10"
    assert PROXIES.resolve("::ffff:10.0.0.1", b"203.0.113.10") == "203.0.113.10"


def test_no_trusted_proxies() -> None:
    assert ClientIP().resolve("10.0.0.1", b"203.0.113.10", b"for=1.2.3.4") == "10.0.0.1"
