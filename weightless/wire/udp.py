"""BEP 15 UDP tracker packets (with BEP 41 URL data), as pure functions over bytes.

No sockets and no state here: the DatagramProtocol adapter calls :func:`parse_request` on each
datagram, checks the connection id, and sends what the ``encode_*`` functions return. (The
client side, which only tests need, is ``tests/udp_client.py``.)

Transaction ids are opaque 32-bit values, read and written unsigned so they round-trip unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from itertools import starmap
from typing import NamedTuple

from weightless.wire.numbers import EVENT_COMPLETED as EVENT_COMPLETED
from weightless.wire.numbers import EVENT_NONE, EVENT_STOPPED
from weightless.wire.numbers import EVENT_STARTED as EVENT_STARTED

PROTOCOL_ID = 0x41727101980

ACTION_CONNECT = 0
ACTION_ANNOUNCE = 1
ACTION_SCRAPE = 2
ACTION_ERROR = 3

# BEP 41 option types.
OPTION_END = 0x0
OPTION_NOP = 0x1
OPTION_URL_DATA = 0x2

ANNOUNCE_REQUEST_SIZE = 98
MAX_SCRAPE_HASHES = 74  # BEP 15: "up to about 74 torrents can be scraped at once"

# A reply fits one unfragmented datagram on a 1,500-byte MTU: 1,472 bytes of UDP payload over
# IPv4 (20 IP + 8 UDP), 1,452 over IPv6 (40 + 8), minus the 20-byte announce reply header.
MAX_REPLY_PEERS_V4 = (1472 - 20) // 6
MAX_REPLY_PEERS_V6 = (1452 - 20) // 18

_HEADER = struct.Struct(">QII")  # connection_id (or protocol id), action, transaction_id
_ANNOUNCE = struct.Struct(">QII20s20sqqqiIIiH")
_REPLY_HEADER = struct.Struct(">II")  # action, transaction_id
_CONNECT_REPLY = struct.Struct(">IIQ")
_ANNOUNCE_REPLY = struct.Struct(">IIiii")
_SCRAPE_STATS = struct.Struct(">iii")
_PEER_V4 = struct.Struct(">4sH")
_PEER_V6 = struct.Struct(">16sH")

assert _ANNOUNCE.size == ANNOUNCE_REQUEST_SIZE


class UdpParseError(ValueError):
    """A datagram that is not a valid request (or response).

    ``transaction_id`` is set only when it could be read, ``connection_id`` only when the first
    eight bytes are a connection id rather than garbage or a wrong protocol id. A reply is
    possible only with both, and only once the adapter has checked the connection id (see
    :func:`error_reply`): answering anything else would let a spoofed source address turn the
    tracker into a reflector.
    """

    def __init__(
        self,
        message: str,
        transaction_id: int | None = None,
        connection_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transaction_id = transaction_id
        self.connection_id = connection_id


class ConnectRequest(NamedTuple):
    transaction_id: int


class AnnounceRequest(NamedTuple):
    connection_id: int
    transaction_id: int
    info_hash: bytes  # 20 bytes
    peer_id: bytes  # 20 bytes
    downloaded: int  # bytes, 0 to 2^63-1 (a negative int64 on the wire is refused)
    left: int
    uploaded: int
    event: int  # EVENT_*; values outside 0-3 are read as EVENT_NONE
    ip: int  # the client's claim, an IPv4 address as an integer; the tracker ignores it
    key: int
    num_want: int  # signed: negative (usually -1) means the tracker's default
    port: int
    url_data: bytes = b""  # BEP 41 URLData options concatenated, e.g. b"/announce/PASSKEY"


class ScrapeRequest(NamedTuple):
    connection_id: int
    transaction_id: int
    info_hashes: list[bytes]  # 1 to MAX_SCRAPE_HASHES hashes of 20 bytes


Request = ConnectRequest | AnnounceRequest | ScrapeRequest


# --- tracker side -------------------------------------------------------------------------------


def parse_request(data: bytes) -> Request:
    """Decode one request datagram, or raise UdpParseError saying what is wrong with it."""
    size = len(data)
    if size < 16:
        raise UdpParseError("packet too short")
    connection_id, action, transaction_id = _HEADER.unpack_from(data)
    if action == ACTION_ANNOUNCE:
        if size < ANNOUNCE_REQUEST_SIZE:
            raise UdpParseError("announce request too short", transaction_id, connection_id)
        fields = _ANNOUNCE.unpack_from(data)
        if (fields[5] | fields[6] | fields[7]) < 0:  # one of downloaded, left, uploaded
            raise UdpParseError(
                "invalid counter: downloaded, left and uploaded must be non-negative",
                transaction_id,
                connection_id,
            )
        url_data = b""
        if size > ANNOUNCE_REQUEST_SIZE:
            url_data = _url_data(data, size, transaction_id, connection_id)
        # tuple.__new__ skips the NamedTuple's Python-level __new__: this is the hot path
        request: AnnounceRequest = tuple.__new__(
            AnnounceRequest, (connection_id, transaction_id, *fields[3:], url_data)
        )
        if not EVENT_NONE <= request.event <= EVENT_STOPPED:
            request = request._replace(event=EVENT_NONE)
        return request
    if action == ACTION_CONNECT:
        if connection_id != PROTOCOL_ID:
            raise UdpParseError("not a BEP 15 connect request", transaction_id)
        return ConnectRequest(transaction_id)
    if action == ACTION_SCRAPE:
        count, partial = divmod(size - 16, 20)
        if partial:
            raise UdpParseError(
                "scrape request with a partial info hash", transaction_id, connection_id
            )
        if count == 0:
            raise UdpParseError("scrape request without info hashes", transaction_id, connection_id)
        if count > MAX_SCRAPE_HASHES:
            raise UdpParseError(
                f"too many info hashes (at most {MAX_SCRAPE_HASHES})", transaction_id, connection_id
            )
        hashes = [data[i : i + 20] for i in range(16, size, 20)]
        return ScrapeRequest(connection_id, transaction_id, hashes)
    raise UdpParseError("unknown action", transaction_id, connection_id)


def _url_data(data: bytes, size: int, transaction_id: int, connection_id: int) -> bytes:
    """Concatenate BEP 41 URLData options; an unknown option type ends the list."""
    parts: list[bytes] = []
    pos = ANNOUNCE_REQUEST_SIZE
    while pos < size:
        kind = data[pos]
        if kind == OPTION_URL_DATA:
            if pos + 1 >= size:
                raise UdpParseError(
                    "URLData option without a length", transaction_id, connection_id
                )
            end = pos + 2 + data[pos + 1]
            if end > size:
                raise UdpParseError(
                    "URLData option runs past the end", transaction_id, connection_id
                )
            parts.append(data[pos + 2 : end])
            pos = end
        elif kind == OPTION_NOP:
            pos += 1
        else:  # EndOfOptions, or a type whose layout we cannot know
            break
    if len(parts) == 1:
        return parts[0]
    return b"".join(parts)


def encode_connect_response(transaction_id: int, connection_id: int) -> bytes:
    """The reply to a connect request, handing out a connection id."""
    return _CONNECT_REPLY.pack(ACTION_CONNECT, transaction_id, connection_id)


def encode_announce_response(
    transaction_id: int, interval: int, leechers: int, seeders: int, peers: bytes
) -> bytes:
    """The reply to an announce; ``peers`` is already packed, at most MAX_REPLY_PEERS_V4/V6."""
    return (
        _ANNOUNCE_REPLY.pack(ACTION_ANNOUNCE, transaction_id, interval, leechers, seeders) + peers
    )


def encode_scrape_response(transaction_id: int, stats: Iterable[tuple[int, int, int]]) -> bytes:
    """The reply to a scrape: (seeders, completed, leechers) per hash, in request order."""
    return _REPLY_HEADER.pack(ACTION_SCRAPE, transaction_id) + b"".join(
        starmap(_SCRAPE_STATS.pack, stats)
    )


def encode_error(transaction_id: int, message: str) -> bytes:
    """A BEP 15 error; clients show the message to the user."""
    return _REPLY_HEADER.pack(ACTION_ERROR, transaction_id) + message.encode("utf-8", "replace")


def error_reply(error: UdpParseError, connection_ok: Callable[[int], bool]) -> bytes | None:
    """The error datagram to send for a malformed request, or None to drop it silently.

    ``connection_ok`` checks a connection id (``ConnectionIdValidator.valid`` bound to the
    client address and the time). Only a client that proved its address with a valid connection
    id gets an answer, so a spoofed packet never makes the tracker send anything.
    """
    if error.transaction_id is None or error.connection_id is None:
        return None
    if not connection_ok(error.connection_id):
        return None
    return encode_error(error.transaction_id, error.message)
