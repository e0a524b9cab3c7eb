"""Which address a request comes from: the socket's peer, or what a trusted proxy says."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from twisted.web.iweb import IRequest

from weightless.tracker.core import normalize_ip


def parse_networks(cidrs: Iterable[str]) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ip_network(c, strict=False) for c in cidrs)


class ClientIP:
    def __init__(self, trusted: Iterable[IPv4Network | IPv6Network] = ()) -> None:
        self.trusted = tuple(trusted)

    def trusts(self, ip: str) -> bool:
        if not self.trusted:
            return False
        try:
            address = ip_address(ip)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)

    def resolve(self, peer: str, forwarded_for: bytes | None) -> str:
        """The client's IP: with a trusted proxy as the peer, the rightmost address of
        X-Forwarded-For that is not itself a trusted proxy (the left part is client-made)."""
        peer = normalize_ip(peer)
        if not forwarded_for or not self.trusts(peer):
            return peer
        for hop in reversed(forwarded_for.split(b",")):
            text = hop.strip().decode("latin-1")
            try:
                candidate = normalize_ip(str(ip_address(text)))
            except ValueError:
                return peer
            if not self.trusts(candidate):
                return candidate
        return peer

    def of_request(self, request: IRequest) -> str:
        """The client's IP of a twisted.web request, from every X-Forwarded-For line in order
        (as the front protocol reads them)."""
        lines = request.requestHeaders.getRawHeaders(b"x-forwarded-for")
        forwarded = b",".join(lines) if lines else None
        return self.resolve(request.getClientAddress().host, forwarded)
