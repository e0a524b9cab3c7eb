"""IP addresses and networks as the tracker keys them: pure functions, no web, no reactor.

- ``parse_networks``: the ``--trusted-proxy`` CIDRs.
- ``unmapped``, ``normalize_ip``, ``pack_ip``: an IPv4-mapped IPv6 address (``::ffff:1.2.3.4``)
  is the IPv4 address it stands for, everywhere (peers, keys, proxy hops); the one place that
  says so.
- ``address_key``: the key of per-address state (rate-limit buckets, connection counts). An IPv6
  client is keyed by its network prefix (``--ipv6-prefix``, /64 by default: one subscriber or
  host usually gets a whole /64, so keying by /128 would let it take 2^64 buckets), and an
  IPv4-mapped IPv6 address by the IPv4 address it stands for.
- ``forwarded_hops``: the client addresses of ``X-Forwarded-For`` and RFC 7239 ``Forwarded``
  headers, in the order the hops were appended, ports dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from socket import AF_INET6, inet_aton, inet_pton

Network = IPv4Network | IPv6Network

DEFAULT_IPV6_PREFIX = 64
_MAPPED = bytes(10) + b"\xff\xff"  # the first 12 bytes of an IPv4-mapped IPv6 address


def unmapped(address: IPv4Address | IPv6Address) -> IPv4Address | IPv6Address:
    """The IPv4 address an IPv4-mapped IPv6 address stands for; any other address itself."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def normalize_ip(ip: str) -> str:
    """A peer's address as the tracker keeps it: an IPv4-mapped IPv6 address (``::ffff:1.2.3.4``)
    is the IPv4 peer it stands for; any other address text is returned as it is. For addresses
    from a socket (always valid): the common forms are not parsed at all."""
    if ip.startswith("::ffff:") and "." in ip:
        return ip[7:]
    if ":" in ip and "." in ip:
        address = unmapped(IPv6Address(ip))
        if isinstance(address, IPv4Address):
            return str(address)
    return ip


def pack_ip(ip: str) -> bytes:
    """4 or 16 bytes of an IP address; an IPv4-mapped one packs as the IPv4 address."""
    if ":" not in ip:
        return inet_aton(ip)
    packed = inet_pton(AF_INET6, ip)
    return packed[12:] if packed[:12] == _MAPPED else packed


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """Networks from addresses or CIDRs (host bits allowed); ValueError names a bad one."""
    return tuple(ip_network(c.strip(), strict=False) for c in cidrs)


def canonical(text: str) -> str | None:
    """The canonical text of an IP address (IPv4-mapped IPv6 as IPv4), or None if ``text`` is
    not one."""
    try:
        return str(unmapped(ip_address(text)))
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _ipv6_key(ip: str, prefix: int) -> str:
    try:
        address = IPv6Address(ip.partition("%")[0])
    except ValueError:
        return ip
    plain = unmapped(address)
    if isinstance(plain, IPv4Address):
        return str(plain)
    return str(IPv6Network((address, prefix), strict=False))


def address_key(ip: str, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> str:
    """The key of ``ip``'s per-address state: an IPv4 address itself, an IPv6 address its
    ``/ipv6_prefix`` network (``2001:db8:1:2::/64``), an IPv4-mapped one its IPv4 address."""
    if ":" not in ip:
        return ip
    return _ipv6_key(ip, ipv6_prefix)


# one element of X-Forwarded-For: an address, an IPv4 address with a port, or an IPv6
# address in brackets with or without a port
_HOP = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?|([0-9.]+):\d{1,5}|([0-9A-Fa-f:.]+)")


def hop_address(text: str) -> str | None:
    """The IP address of one proxy hop as proxies write it (``203.0.113.10``,
    ``203.0.113.10:51008``, ``2001:db8::10``, ``[2001:db8::10]:51009``), canonical; None for
    anything else (``unknown``, an RFC 7239 obfuscated identifier like ``_hidden``, garbage)."""
    m = _HOP.fullmatch(text.strip())
    if m is None:
        return None
    return canonical(m.group(1) or m.group(2) or m.group(3))


def forwarded_for_hops(value: str) -> list[str | None]:
    """The hops of ``X-Forwarded-For`` (comma-separated, every line joined in order): each an
    address, or None where a hop is not one."""
    return [hop_address(part) for part in value.split(",")]


# RFC 7239 section 4: forwarded-pair = token "=" value, value = token / quoted-string
# (an unquoted value may also hold ":" and brackets: proxies write for=192.0.2.43:47011 unquoted)
_PAIR = re.compile(
    r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)=("(?:[^"\\]|\\.)*"|[!#$%&\'*+.^_`|~0-9A-Za-z:\[\]-]*)\s*'
)


def forwarded_hops(value: str) -> list[str | None] | None:
    """The ``for=`` hops of RFC 7239 ``Forwarded`` (every line joined with ``,``): per element an
    address, or None where its ``for`` is missing, ``unknown`` or obfuscated (``_abc``). None for
    the whole header when it does not parse (it is then not believed at all)."""
    hops: list[str | None] = []
    at, end = 0, len(value)
    while at <= end:
        node: str | None = None
        while True:
            m = _PAIR.match(value, at)
            if m is None:
                return None
            raw = m.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            if m.group(1).lower() == "for":
                node = hop_address(raw)
            at = m.end()
            if at >= end or value[at] == ",":
                break
            if value[at] != ";":
                return None
            at += 1
        hops.append(node)
        at += 1  # past the comma
    return hops


# the announcer's own network, whose peers come first in an announce reply: an IPv4 /24 and an
# IPv6 /64, i.e. the first 3 or 8 bytes of the packed address
NEARBY_PREFIX_BYTES = {4: 3, 16: 8}


def network_key(packed: bytes) -> bytes:
    """The key of the network a peer is on, for ordering replies (nearby peers first): the
    first 3 bytes (IPv4 /24) or 8 bytes (IPv6 /64) of its packed address, which may carry the
    2-byte port of a compact peer (BEP 23 / BEP 7: 6 or 18 bytes). Every swarm store keys
    peers this way, so that they order replies alike."""
    return packed[:3] if len(packed) <= 6 else packed[:8]
