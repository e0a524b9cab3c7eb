from ipaddress import ip_address, ip_network

import pytest

from weightless.netaddr import (
    address_key,
    canonical,
    forwarded_for_hops,
    forwarded_hops,
    hop_address,
    normalize_ip,
    pack_ip,
    parse_networks,
    unmapped,
)


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::abcd", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
        ("::FFFF:198.51.100.1", "198.51.100.1"),
        ("::ffff:c633:6401", "198.51.100.1"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::1", "::/64"),
    ],
)
def test_address_key(ip: str, key: str) -> None:
    assert address_key(ip) == key


def test_address_key_other_prefixes() -> None:
    assert address_key("2001:db8:1:2::1", 48) == "2001:db8:1::/48"
    assert address_key("2001:db8:1:2::1", 128) == "2001:db8:1:2::1/128"
    assert address_key("2001:db8:1:2::1", 56) == address_key("2001:db8:1:ff::1", 56)
    assert address_key("2001:db8:1:2::1", 64) != address_key("2001:db8:1:ff::1", 64)


def test_every_address_of_one_64_shares_a_key() -> None:
    keys = {address_key(f"2001:db8:aa:bb:{i:x}:{i * 7:x}::{i:x}") for i in range(1, 500)}
    assert keys == {"2001:db8:aa:bb::/64"}


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("203.0.113.10", "203.0.113.10"),
        ("203.0.113.10:51008", "203.0.113.10"),
        (" 203.0.113.10:1 ", "203.0.113.10"),
        ("2001:db8::10", "2001:db8::10"),
        ("[2001:db8::10]", "2001:db8::10"),
        ("[2001:db8::10]:51009", "2001:db8::10"),
        ("[2001:DB8::10]:51009", "2001:db8::10"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("[::ffff:192.0.2.1]:80", "192.0.2.1"),
        ("unknown", None),
        ("_hidden", None),
        ("", None),
        ("203.0.113.10:", None),
        ("203.0.113.10:abc", None),
        ("203.0.113.10:1234567", None),
        ("[2001:db8::10", None),
        ("2001:db8::10]:80", None),
        ("999.1.1.1", None),
        ("example.com", None),
        ("203.0.113.10 x", None),
    ],
)
def test_hop_address(text: str, address: str | None) -> None:
    assert hop_address(text) == address


def test_forwarded_for_hops_in_order() -> None:
    assert forwarded_for_hops("198.51.100.1, 203.0.113.10:51008,[2001:db8::10]:51009") == [
        "198.51.100.1",
        "203.0.113.10",
        "2001:db8::10",
    ]
    assert forwarded_for_hops("unknown, 10.0.0.1") == [None, "10.0.0.1"]


@pytest.mark.parametrize(
    ("header", "hops"),
    [
        ("for=192.0.2.43", ["192.0.2.43"]),
        ("For=192.0.2.43", ["192.0.2.43"]),
        ('for="192.0.2.43:47011"', ["192.0.2.43"]),
        ('for="[2001:db8:cafe::17]"', ["2001:db8:cafe::17"]),
        ('for="[2001:db8:cafe::17]:4711"', ["2001:db8:cafe::17"]),
        ("for=192.0.2.43, for=198.51.100.17", ["192.0.2.43", "198.51.100.17"]),
        (
            "for=192.0.2.60;proto=http;by=203.0.113.43",
            ["192.0.2.60"],
        ),
        ("proto=https;for=192.0.2.60 ; host=x", ["192.0.2.60"]),
        ("for=unknown", [None]),
        ("for=_hidden, for=192.0.2.1", [None, "192.0.2.1"]),
        ('for="_gazonk"', [None]),
        ("proto=https", [None]),
        ('for="\\[2001:db8::1\\]"', ["2001:db8::1"]),
        ("for=192.0.2.1,for=192.0.2.2 , for=192.0.2.3", ["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
    ],
)
def test_forwarded_hops(header: str, hops: list[str | None]) -> None:
    assert forwarded_hops(header) == hops


@pytest.mark.parametrize(
    "header",
    ["", "for", "for=1.2.3.4;", 'for="1.2.3.4', "for=1.2.3.4 x", "for=a=b", ",for=1.2.3.4", "=x"],
)
def test_forwarded_that_does_not_parse_is_not_believed(header: str) -> None:
    assert forwarded_hops(header) is None


def test_canonical() -> None:
    assert canonical("::ffff:10.1.2.3") == "10.1.2.3"
    assert canonical("2001:DB8::1") == "2001:db8::1"
    assert canonical("nope") is None


def test_parse_networks() -> None:
    assert parse_networks(["10.0.0.1/8", " 2001:db8::/32", "192.0.2.1"]) == (
        ip_network("10.0.0.0/8"),
        ip_network("2001:db8::/32"),
        ip_network("192.0.2.1/32"),
    )
    with pytest.raises(ValueError):
        parse_networks(["10.0.0.0/33"])


# An IPv4-mapped IPv6 address in every spelling, and what the tracker keeps it as.
MAPPED = ["::ffff:10.1.2.3", "::FFFF:10.1.2.3", "0:0:0:0:0:ffff:10.1.2.3", "::ffff:a01:203"]


@pytest.mark.parametrize("text", MAPPED)
def test_a_mapped_address_is_its_ipv4_address_everywhere(text: str) -> None:
    if "." in text:  # a peer's address as a socket gives it
        assert normalize_ip(text) == "10.1.2.3"
        assert pack_ip(text) == bytes([10, 1, 2, 3])
    assert canonical(text) == "10.1.2.3"  # a proxy hop
    assert address_key(text) == "10.1.2.3"  # a rate-limit bucket
    assert str(unmapped(ip_address(text))) == "10.1.2.3"


@pytest.mark.parametrize("text", ["10.1.2.3", "2001:db8::1", "64:ff9b::10.1.2.3", "::10.1.2.3"])
def test_other_addresses_are_kept_as_they_are(text: str) -> None:
    assert normalize_ip(text) == text
    assert unmapped(ip_address(text)) == ip_address(text)
    assert len(pack_ip(text)) == (4 if ":" not in text else 16)


def test_the_tracker_and_both_adapters_use_these() -> None:
    from weightless.tracker import core
    from weightless.udp import protocol
    from weightless.web import front

    assert core.pack_ip is pack_ip and front.normalize_ip is normalize_ip
    assert protocol.normalize_ip is normalize_ip and protocol.pack_ip is pack_ip
