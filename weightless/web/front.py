"""The HTTP front door: answers announce and scrape GETs itself, hands everything else to the
twisted.web site (the Klein resource tree).

Announces are the hot path, and twisted.web's generic request machinery costs more than the
announce itself; a request line and a few headers are all an announce needs. A connection that
sends anything else (another path, another method, a body) is handed over to a regular
twisted.web channel for the rest of its life, with the bytes it already sent."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from weightless.tracker.core import normalize_ip
from weightless.web.clientip import ClientIP
from weightless.web.tracker_http import TrackerHTTP
from weightless.wire import bencode
from weightless.wire.route import route

MAX_HEAD = 8192
IDLE_TIMEOUT = 60.0

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n"
_CLOSE = b"Connection: close\r\n"
_KEEP = b""
_KEEP_10 = b"Connection: keep-alive\r\n"  # HTTP/1.0 clients are told the connection stays
_TOO_MANY = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nRetry-After: %d\r\n"
    b"Content-Length: %d\r\n%s\r\n"
)
_OVERSIZED = bencode.failure("request too long")


def _forwarded_for(headers: bytes) -> bytes | None:
    """Every X-Forwarded-For line of a (lowercased) head, joined in order: a proxy that appends
    its own line (HAProxy) leaves the client's forged one first, so the first line alone would
    let a client pick its address."""
    hops = []
    at = headers.find(b"\nx-forwarded-for:")
    while at >= 0:
        stop = headers.find(b"\r", at + 1)
        hops.append(headers[at + 17 : stop if stop >= 0 else None].strip())
        at = headers.find(b"\nx-forwarded-for:", at + 17)
    return b",".join(hops) if hops else None


def _header(headers: bytes, name: bytes) -> bytes | None:
    """The value of a header in the lowercased head (``name`` is ``b"\\nname:"``)."""
    at = headers.find(name)
    if at < 0:
        return None
    stop = headers.find(b"\r", at + 1)
    return headers[at + len(name) : stop if stop >= 0 else None].strip()


class FrontProtocol(Protocol):
    log = Logger()

    def __init__(self, factory: FrontFactory, addr: IAddress) -> None:
        self.factory = factory
        self.addr = addr
        self._buf = b""
        self._web: Protocol | None = None
        # normalized once: an IPv4 client on a dual-stack socket is the same client over UDP
        self._peer = normalize_ip(getattr(addr, "host", ""))
        self._trusted = factory.client_ip.trusts(self._peer)
        self._idle = None
        self._waiting: Deferred[bytes] | None = None
        self._closed = False

    def connectionMade(self) -> None:
        self._idle = self.factory.reactor.callLater(IDLE_TIMEOUT, self._timeout)

    def _timeout(self) -> None:
        self._idle = None
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._closed = True
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self._idle = None
        if self._web is not None:
            self._web.connectionLost(reason or Failure(ConnectionError("connection lost")))

    def dataReceived(self, data: bytes) -> None:
        if self._web is not None:
            self._web.dataReceived(data)
            return
        if self._idle is not None:
            self._idle.reset(IDLE_TIMEOUT)
        self._buf = self._buf + data if self._buf else data
        if self._waiting is None:
            self._serve()

    def _serve(self) -> None:
        """Answer every complete request in the buffer, in order."""
        buf = self._buf
        http = self.factory.http
        write = self.transport.write  # type: ignore[union-attr]
        while buf:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    # a tracker GET this long is refused; anything else is twisted.web's
                    line = buf[: buf.find(b"\r\n")] if b"\r\n" in buf else buf
                    method, _, rest = line.partition(b" ")
                    if method == b"GET" and route(rest.rpartition(b" ")[0] or rest):
                        self._finish(_OVERSIZED)
                    else:
                        self._hand_over(buf)
                    return
                self._buf = buf
                return
            line_end = buf.find(b"\r\n")
            method, _, rest = buf[:line_end].partition(b" ")
            target, _, version = rest.rpartition(b" ")
            routed = route(target) if method == b"GET" and target else None
            if routed is None or end > MAX_HEAD:
                self._hand_over(buf)
                return
            headers = buf[line_end:end].lower()
            if b"\ncontent-length:" in headers or b"\ntransfer-encoding:" in headers:
                self._hand_over(buf)
                return
            buf = buf[end + 4 :]
            connection = _header(headers, b"\nconnection:")
            if version == b"HTTP/1.1":
                keep = connection is None or b"close" not in connection
                tail = _KEEP if keep else _CLOSE
            else:
                keep = connection is not None and b"keep-alive" in connection
                tail = _KEEP_10 if keep else _CLOSE
            ip = self._peer
            if self._trusted:
                ip = self.factory.client_ip.resolve(ip, _forwarded_for(headers))
            action, passkey, query = routed
            if action == b"announce":
                status, body = 200, http.announce(passkey, query, ip)
            else:
                status, body = http.scrape(passkey, query, ip)
            if isinstance(body, Deferred):
                # another worker answers: hold the rest of the pipeline until it does
                self._buf = buf
                self._waiting = body
                self.transport.pauseProducing()  # type: ignore[union-attr]
                body.addCallback(self._answered, status, keep, tail, ip)
                body.addErrback(self._failed)
                return
            if status == 200:
                write(_OK % (len(body), tail) + body)
            else:
                self._respond(status, body, tail, ip)
            if not keep:
                self._buf = b""
                self.transport.loseConnection()  # type: ignore[union-attr]
                return
        self._buf = b""

    def _respond(self, status: int, body: bytes, tail: bytes, ip: str) -> None:
        if status == 200:
            self.transport.write(_OK % (len(body), tail) + body)  # type: ignore[union-attr]
        else:
            retry = self.factory.http.retry_after(ip)
            self.transport.write(_TOO_MANY % (retry, len(body), tail) + body)  # type: ignore[union-attr]

    def _answered(self, body: bytes, status: int, keep: bool, tail: bytes, ip: str) -> None:
        self._waiting = None
        if self.transport is None or self._closed:
            return
        self._respond(status, body, tail, ip)
        if not keep:
            self._buf = b""
            self.transport.loseConnection()
            return
        self.transport.resumeProducing()  # type: ignore[attr-defined]
        self._serve()

    def _failed(self, failure: Failure) -> None:
        self.log.failure("answering a forwarded request failed", failure)
        self._waiting = None
        if self.transport is not None and not self._closed:
            self._finish(bencode.failure("internal error"))

    def _finish(self, body: bytes) -> None:
        self._buf = b""
        self.transport.write(_OK % (len(body), _CLOSE) + body)  # type: ignore[union-attr]
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _hand_over(self, buf: bytes) -> None:
        """From here on this connection is an ordinary twisted.web connection."""
        self._buf = b""
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self._idle = None
        web = self.factory.site.buildProtocol(self.addr)
        assert web is not None
        self._web = web
        web.makeConnection(self.transport)
        web.dataReceived(buf)


class FrontFactory(Factory):
    def __init__(self, site: Site, http: TrackerHTTP, client_ip: ClientIP, reactor: object):
        self.site = site
        self.http = http
        self.client_ip = client_ip
        self.reactor = reactor

    def buildProtocol(self, addr: IAddress | None) -> FrontProtocol:
        assert addr is not None
        return FrontProtocol(self, addr)

    def doStart(self) -> None:
        self.site.doStart()

    def doStop(self) -> None:
        self.site.doStop()
