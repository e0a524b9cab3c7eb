"""The client side of BEP 15 (with BEP 41 URL data): what a BitTorrent client sends to a UDP
tracker and reads back. Only tests play a client, so this lives with them; the tracker side is
``weightless.wire.udp``."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import NamedTuple

from weightless.wire.udp import (
    _ANNOUNCE,
    _ANNOUNCE_REPLY,
    _CONNECT_REPLY,
    _HEADER,
    _PEER_V4,
    _PEER_V6,
    _REPLY_HEADER,
    _SCRAPE_STATS,
    ACTION_ANNOUNCE,
    ACTION_CONNECT,
    ACTION_ERROR,
    ACTION_SCRAPE,
    OPTION_END,
    OPTION_URL_DATA,
    PROTOCOL_ID,
    AnnounceRequest,
    ConnectRequest,
    Request,
    UdpParseError,
)


class ConnectResponse(NamedTuple):
    transaction_id: int
    connection_id: int


class AnnounceResponse(NamedTuple):
    transaction_id: int
    interval: int
    leechers: int
    seeders: int
    peers: bytes  # compact entries: 6 bytes each (IPv4) or 18 (IPv6), see decode_peers


class ScrapeResponse(NamedTuple):
    transaction_id: int
    stats: list[tuple[int, int, int]]  # (seeders, completed, leechers) per requested hash


class ErrorResponse(NamedTuple):
    transaction_id: int
    message: str


Response = ConnectResponse | AnnounceResponse | ScrapeResponse | ErrorResponse


def encode_connect_request(transaction_id: int) -> bytes:
    """A connect request, the first packet of every BEP 15 exchange."""
    return _HEADER.pack(PROTOCOL_ID, ACTION_CONNECT, transaction_id)


def encode_announce_request(
    connection_id: int,
    transaction_id: int,
    info_hash: bytes,
    peer_id: bytes,
    downloaded: int,
    left: int,
    uploaded: int,
    event: int,
    ip: int = 0,
    key: int = 0,
    num_want: int = -1,
    port: int = 6881,
    url_data: bytes = b"",
) -> bytes:
    """An announce request; ``url_data`` (BEP 41 path and query) goes in 255-byte options."""
    if len(info_hash) != 20 or len(peer_id) != 20:
        raise ValueError("info_hash and peer_id must be 20 bytes")
    packet = _ANNOUNCE.pack(
        connection_id,
        ACTION_ANNOUNCE,
        transaction_id,
        info_hash,
        peer_id,
        downloaded,
        left,
        uploaded,
        event,
        ip,
        key,
        num_want,
        port,
    )
    if not url_data:
        return packet
    options = [packet]
    for start in range(0, len(url_data), 255):
        chunk = url_data[start : start + 255]
        options.append(bytes((OPTION_URL_DATA, len(chunk))) + chunk)
    options.append(bytes((OPTION_END,)))
    return b"".join(options)


def encode_scrape_request(
    connection_id: int, transaction_id: int, info_hashes: Sequence[bytes]
) -> bytes:
    """A scrape request; the encoder does not cap the count so tests can send too many."""
    if any(len(h) != 20 for h in info_hashes):
        raise ValueError("info hashes must be 20 bytes")
    return _HEADER.pack(connection_id, ACTION_SCRAPE, transaction_id) + b"".join(info_hashes)


def encode_request(request: Request) -> bytes:
    """Encode any request record, the inverse of parse_request."""
    if isinstance(request, ConnectRequest):
        return encode_connect_request(request.transaction_id)
    if isinstance(request, AnnounceRequest):
        return encode_announce_request(*request)
    return encode_scrape_request(request.connection_id, request.transaction_id, request.info_hashes)


def parse_response(data: bytes) -> Response:
    """Decode a tracker's reply datagram, or raise UdpParseError."""
    size = len(data)
    if size < 8:
        raise UdpParseError("response too short")
    action, transaction_id = _REPLY_HEADER.unpack_from(data)
    if action == ACTION_CONNECT:
        if size < 16:
            raise UdpParseError("connect response too short", transaction_id)
        return ConnectResponse(transaction_id, _CONNECT_REPLY.unpack_from(data)[2])
    if action == ACTION_ANNOUNCE:
        if size < _ANNOUNCE_REPLY.size:
            raise UdpParseError("announce response too short", transaction_id)
        _, _, interval, leechers, seeders = _ANNOUNCE_REPLY.unpack_from(data)
        return AnnounceResponse(
            transaction_id, interval, leechers, seeders, bytes(data[_ANNOUNCE_REPLY.size :])
        )
    if action == ACTION_SCRAPE:
        if (size - 8) % 12:
            raise UdpParseError("scrape response with a partial entry", transaction_id)
        stats = [_SCRAPE_STATS.unpack_from(data, pos) for pos in range(8, size, 12)]
        return ScrapeResponse(transaction_id, stats)
    if action == ACTION_ERROR:
        return ErrorResponse(transaction_id, bytes(data[8:]).decode("utf-8", "replace"))
    raise UdpParseError("unknown action", transaction_id)


def decode_peers(peers: bytes, ipv6: bool = False) -> list[tuple[str, int]]:
    """Unpack compact peers from an announce reply into (host, port) pairs."""
    fmt, family = (_PEER_V6, socket.AF_INET6) if ipv6 else (_PEER_V4, socket.AF_INET)
    if len(peers) % fmt.size:
        raise UdpParseError("peer list with a partial entry")
    return [(socket.inet_ntop(family, ip), port) for ip, port in fmt.iter_unpack(peers)]
