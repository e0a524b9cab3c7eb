"""Which address a request comes from: the socket's peer, or what a trusted proxy says.

The parsing lives in ``weightless.netaddr``; this is the thin web adapter."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_address

from twisted.web.iweb import IRequest

from weightless.netaddr import (
    Network,
    canonical,
    forwarded_for_hops,
    forwarded_hops,
)
from weightless.web.present import base_url


class ClientIP:
    """``trusted``: the networks of the proxies allowed to say who the client is."""

    def __init__(self, trusted: Iterable[Network] = ()) -> None:
        self.trusted = tuple(trusted)

    def trusts(self, ip: str) -> bool:
        if not self.trusted:
            return False
        try:
            address = ip_address(ip)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)

    def resolve(
        self, peer: str, forwarded_for: bytes | None, forwarded: bytes | None = None
    ) -> str:
        """The client's IP. With a trusted proxy as the peer: the rightmost hop that is not
        itself a trusted proxy, from ``X-Forwarded-For`` (entries may carry a port) or RFC 7239
        ``Forwarded`` (``for=``); the left part of either is client-made. A hop that is not an
        address (``unknown``, an obfuscated ``_id``) where the client would be means the proxy
        does not say: the peer is used. When a request carries both headers and they name
        different clients, one of them was forged by the client and nothing tells which: the
        peer is used."""
        peer = canonical(peer) or peer
        if not (forwarded_for or forwarded) or not self.trusts(peer):
            return peer
        found = []
        if forwarded_for:
            found.append(self._rightmost(forwarded_for_hops(forwarded_for.decode("latin-1"))))
        if forwarded:
            found.append(self._rightmost(forwarded_hops(forwarded.decode("latin-1"))))
        client = found[0]
        if client is None or any(other != client for other in found[1:]):
            return peer
        return client

    def _rightmost(self, hops: list[str | None] | None) -> str | None:
        for hop in reversed(hops or ()):
            if hop is None:
                return None
            if not self.trusts(hop):
                return hop
        return None

    def of_request(self, request: IRequest) -> str:
        """The client's IP of a twisted.web request, from every X-Forwarded-For and Forwarded
        line in order (as the front protocol reads them)."""
        headers = request.requestHeaders
        xff = headers.getRawHeaders(b"x-forwarded-for")
        fwd = headers.getRawHeaders(b"forwarded")
        return self.resolve(
            request.getClientAddress().host,
            b",".join(xff) if xff else None,
            b",".join(fwd) if fwd else None,
        )

    def base_url(self, request: IRequest) -> str:
        """This tracker's URL (``scheme://host[:port]``) as the client reached it: the Host
        header, or behind a trusted proxy its X-Forwarded-Host and X-Forwarded-Proto; the
        listening address when the Host header is missing or malformed."""
        host = request.getHeader(b"host")
        secure = request.isSecure()
        if self.trusts(request.getClientAddress().host):
            forwarded_host = request.getHeader(b"x-forwarded-host")
            if forwarded_host:
                host = forwarded_host.split(b",")[0].strip()
            proto = request.getHeader(b"x-forwarded-proto")
            if proto:
                secure = proto.split(b",")[0].strip().lower() == b"https"
        address = request.getHost()
        fallback = f"{address.host}:{address.port}"
        if ":" in address.host:
            fallback = f"[{address.host}]:{address.port}"
        return base_url(host.decode("latin-1") if host else None, secure, fallback)
