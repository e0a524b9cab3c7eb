"""Small helpers shared by the web and integration tests: announce URLs, bencode and HTTP reply
decoding, free ports, and the tracker objects wired the way ``weightless.tap`` wires them."""

from __future__ import annotations

import hashlib
import hmac
import socket
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_network
from time import perf_counter
from typing import Any
from urllib.parse import quote_from_bytes

import bencodepy
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import fail, maybeDeferred
from twisted.internet.testing import MemoryReactorClock, StringTransport

from weightless.config import Config
from weightless.registry.service import STORE_TIMEOUT
from weightless.registry.store import StoreUnavailable
from weightless.tap import Wiring, wire
from weightless.web.front import FrontProtocol

RATE_LIMITED = b"Rate limit exceeded. Please slow down."


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def peer_id(n: int) -> bytes:
    return b"-WL0001-%012d" % n


def query(**params: bytes | str | int) -> bytes:
    """A query string with every value percent-encoded byte by byte (binary hashes included)."""
    parts = []
    for key, value in params.items():
        raw = value if isinstance(value, bytes) else str(value).encode()
        parts.append(key.encode() + b"=" + quote_from_bytes(raw, safe="").encode())
    return b"&".join(parts)


def announce_query(info_hash: bytes, port: int = 6881, **params: bytes | str | int) -> bytes:
    """An announce query; a parameter given as None is left out."""
    base: dict[str, bytes | str | int] = {
        "info_hash": info_hash,
        "peer_id": peer_id(port if isinstance(port, int) else 0),
        "port": port,
        "uploaded": 0,
        "downloaded": 0,
        "left": 100,
        "compact": 1,
    }
    base.update(params)
    return query(**{k: v for k, v in base.items() if v is not None})


def tracker_path(action: str, passkey: str | None = None, passkey_first: bool = False) -> bytes:
    """``/announce``, ``/announce/{passkey}`` or (``passkey_first``) ``/{passkey}/announce``;
    the same for ``scrape``."""
    if passkey is None:
        return b"/" + action.encode()
    if passkey_first:
        return b"/" + passkey.encode() + b"/" + action.encode()
    return b"/" + action.encode() + b"/" + passkey.encode()


def announce_path(
    info_hash: bytes,
    port: int = 6881,
    passkey: str | None = None,
    passkey_first: bool = False,
    **params: bytes | str | int,
) -> bytes:
    path = tracker_path("announce", passkey, passkey_first)
    return path + b"?" + announce_query(info_hash, port, **params)


def scrape_path(
    *info_hashes: bytes, passkey: str | None = None, passkey_first: bool = False
) -> bytes:
    path = tracker_path("scrape", passkey, passkey_first)
    return path + b"?" + b"&".join(query(info_hash=h) for h in info_hashes)


def get_request(target: bytes, *headers: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    head = [b"GET " + target + b" " + version, b"Host: tracker.example", *headers]
    return b"\r\n".join(head) + b"\r\n\r\n"


def bdecode(data: bytes) -> Any:
    return bencodepy.decode(data)


def compact_peers(data: bytes) -> list[tuple[str, int]]:
    """(ip, port) of each 6-byte entry of a compact IPv4 peer list (BEP 23)."""
    assert len(data) % 6 == 0, data
    return [
        (socket.inet_ntoa(data[i : i + 4]), int.from_bytes(data[i + 4 : i + 6], "big"))
        for i in range(0, len(data), 6)
    ]


def make_passkey(secret: str, user: str) -> str:
    mac = hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()
    return f"{user}.{mac}"


@dataclass
class Reply:
    version: bytes
    status: int
    headers: dict[bytes, bytes]  # lowercased names; a repeated header keeps its last value
    body: bytes


def parse_replies(data: bytes) -> list[Reply]:
    """Every HTTP response in ``data``, as a client on the connection would read them
    (Content-Length, chunked, or up to the end of the stream)."""
    replies = []
    while data:
        end = data.index(b"\r\n\r\n")
        lines = data[:end].split(b"\r\n")
        version, status, _ = (lines[0].split(b" ", 2) + [b""])[:3]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        data = data[end + 4 :]
        if b"content-length" in headers:
            n = int(headers[b"content-length"])
            body, data = data[:n], data[n:]
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            chunks = []
            while True:
                size_end = data.index(b"\r\n")
                size = int(data[:size_end].split(b";")[0], 16)
                chunks.append(data[size_end + 2 : size_end + 2 + size])
                data = data[size_end + 2 + size + 2 :]
                if size == 0:
                    break
            body = b"".join(chunks)
        else:
            body, data = data, b""
        replies.append(Reply(version, int(status), headers, body))
    return replies


class FakeStore:
    """A store whose ``ping`` is answered by a function and whose every other query fails as
    unreachable."""

    def __init__(self, ping: Callable[[], Any]) -> None:
        self._ping = ping

    def ping(self) -> Any:
        return self._ping()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """Any other query fails as from a database that cannot be reached (the API's 503)."""
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: fail(StoreUnavailable(f"fake store: no {name}"))


# The tracker's objects, wired by ``weightless.tap.wire``: the wiring that ships.
Stack = Wiring


def build_stack(
    store: Any,
    reactor: Any = None,
    *,
    open_tracker: bool = True,
    rate_limit: float = 0.0,
    rate_burst: float = 10.0,
    trusted_proxies: tuple[str, ...] = (),
    secret: bytes | None = None,
    max_peers: int = 50,
    timer: Callable[[], float] = perf_counter,
    store_timeout: float = STORE_TIMEOUT,
    clock: Any = None,
    **settings: Any,
) -> Stack:
    """One tracker process as ``twistd weightless`` wires it, on ``store`` and ``reactor``
    (a MemoryReactorClock by default), with a fixed peer order; ``settings`` are other Config
    fields. No listener, no UDP key file."""
    config = Config(
        udp=None,
        open=open_tracker,
        rate_limit=rate_limit,
        rate_burst=rate_burst,
        trusted_proxies=tuple(ip_network(c, strict=False) for c in trusted_proxies),
        tracker_secret=secret,
        max_peers=max_peers,
        **settings,
    )
    reactor = reactor if reactor is not None else MemoryReactorClock()
    stack = wire(
        config,
        reactor,
        store,
        rand=lambda: 0.5,
        timer=timer,
        store_timeout=store_timeout,
        clock=clock,
    )
    if not hasattr(reactor, "getThreadPool"):
        # a MemoryReactorClock has no thread pool: long parses run inline, as the pool would
        stack.api.registry.run_in_thread = lambda fn, *args: maybeDeferred(fn, *args)
    return stack


class Conn:
    """One client connection to the front protocol."""

    def __init__(self, stack: Stack, host: str = "203.0.113.7", port: int = 50000) -> None:
        addr = (IPv6Address if ":" in host else IPv4Address)("TCP", host, port)
        self.protocol: FrontProtocol = stack.front.buildProtocol(addr)
        self.transport = StringTransport(peerAddress=addr)
        self.protocol.makeConnection(self.transport)
        self._read = 0

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def replies(self) -> list[Reply]:
        """The responses written since the last call."""
        data = self.transport.value()
        new, self._read = data[self._read :], len(data)
        return parse_replies(new)

    def get(self, target: bytes, *headers: bytes) -> Reply:
        self.send(get_request(target, *headers))
        [reply] = self.replies()
        return reply

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)
