"""The HTTP front door: answers announce and scrape GETs itself, hands everything else to the
twisted.web site (the Klein resource tree).

Announces are the hot path, and twisted.web's generic request machinery costs more than the
announce itself; a request line and a few headers are all an announce needs. A connection that
sends anything else (another path, another method, a body, a head that is not plain RFC 9112)
is handed over to a ``weightless.web.channel.StrictChannel`` for the rest of its life, with the
bytes it already sent: this protocol serves only heads that channel would serve the same way,
and leaves every refusal (400, 414, 431) to it.

Every connection of the listener passes through here, so the limits of the whole listener are
kept here too: connections per address and in all (``ConnectionLimits``), the deadline of a
request head (``header_timeout``) and of an idle keep-alive connection (``IDLE_TIMEOUT``), and
backpressure: while more than the transport's buffer (64 KiB) of answers waits to be sent, no
more requests are read."""

from __future__ import annotations

import re
import socket
from contextlib import suppress

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from weightless.netaddr import normalize_ip
from weightless.web.channel import (
    DEFAULT_HEADER_TIMEOUT,
    MAX_HEAD,
    MAX_REQUEST_LINE,
    StrictChannel,
    origin_form,
    valid_host,
)
from weightless.web.clientip import ClientIP
from weightless.web.connlimit import ConnectionLimits
from weightless.web.tracker_http import TrackerHTTP
from weightless.wire import bencode
from weightless.wire.route import route

IDLE_TIMEOUT = 60.0
# the kernel's send buffer of a connection the fast path answers (Linux doubles the value: 64
# KiB). Left to autotuning it grows to megabytes, which a client that never reads fills with
# answers before Twisted's own 64 KiB buffer, the mark for backpressure, starts to fill.
# A connection handed to twisted.web (registry pages, .torrent files) gets a large one back.
SEND_BUFFER = 32 << 10
WEB_SEND_BUFFER = 4 << 20  # capped by net.core.wmem_max
# the request line of a GET the fast path may serve: a target of visible ASCII, HTTP/1.0 or 1.1
_LINE = re.compile(rb"GET ([!-~]+) HTTP/1\.([01])")
# the header lines of a head, from the end of its request line to the end of its last field:
# each a token, a colon right after it, and a value of visible characters, spaces and tabs
_FIELDS = re.compile(rb"(?:\r?\n[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*)*")

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n"
_CLOSE = b"Connection: close\r\n"
_KEEP = b""
_KEEP_10 = b"Connection: keep-alive\r\n"  # HTTP/1.0 clients are told the connection stays
_TOO_MANY = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nRetry-After: %d\r\n"
    b"Content-Length: %d\r\n%s\r\n"
)


def _send_buffer(transport: object, size: int) -> None:
    """Set the kernel send buffer of a TCP transport's socket (a PROXY wrapper passes the
    attribute through); nothing for other transports."""
    sock = getattr(transport, "socket", None)
    if isinstance(sock, socket.socket):
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def _joined(headers: bytes, name: bytes) -> bytes | None:
    """Every line of a header in a (lowercased) head, joined with commas in order: a proxy that
    appends its own line (HAProxy) leaves the client's forged one first, so the first line
    alone would let a client pick its address. ``name`` is ``b"\\nname:"``."""
    hops = []
    at = headers.find(name)
    while at >= 0:
        stop = headers.find(b"\n", at + 1)
        hops.append(headers[at + len(name) : stop if stop >= 0 else None].strip())
        at = headers.find(name, at + len(name))
    return b",".join(hops) if hops else None


def _header(headers: bytes, name: bytes) -> bytes | None:
    """The value of a header in the lowercased head (``name`` is ``b"\\nname:"``)."""
    at = headers.find(name)
    if at < 0:
        return None
    stop = headers.find(b"\n", at + 1)
    return headers[at + len(name) : stop if stop >= 0 else None].strip()


class FrontProtocol(Protocol):
    """One connection: serves plain announce and scrape GETs, hands anything else over."""

    log = Logger()

    def __init__(self, factory: FrontFactory, addr: IAddress) -> None:
        self.factory = factory
        self.addr = addr
        self._buf = b""
        self._web: Protocol | None = None
        # normalized once: an IPv4 client on a dual-stack socket is the same client over UDP
        self._peer = normalize_ip(getattr(addr, "host", ""))
        self._trusted = factory.client_ip.trusts(self._peer)
        self._key: str | None = None  # what the connection is counted under per address
        self._admitted = False  # counted in the total (released when the connection ends)
        self._known = not factory.proxied  # the client's address is known (and counted)
        self._waiting: Deferred[bytes] | None = None
        self._paused = False  # the transport's write buffer is full
        self._closed = False
        # the header lines last found valid (with the request's HTTP minor version), and what
        # they said: keep the connection open, the Connection header to answer, the client
        self._block: bytes | None = None
        self._minor = b""
        self._keep = True
        self._tail = _KEEP
        self._ip = self._peer
        # one timer per connection, re-armed lazily: a head must be complete header_timeout
        # after it began (_head_since), an idle connection closes IDLE_TIMEOUT after its last
        # answer (_idle_since)
        self._timer: IDelayedCall | None = None
        self._head_since: float | None = None
        self._idle_since = 0.0

    # -- the connection ----------------------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        now = factory.reactor.seconds()
        self._head_since = now  # a new connection is there to send a request
        self._timer = factory.reactor.callLater(factory.header_timeout, self._tick)
        if not factory.limits.admit_any():
            self._refuse()
            return
        self._admitted = True
        if factory.proxied:
            return  # counted and registered at its first bytes, once the PROXY header is read
        if not self._count(self._peer):
            return
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]
        _send_buffer(self.transport, SEND_BUFFER)

    def _count(self, peer: str) -> bool:
        """Count the connection under its address; False (and closed) when that is full.
        Trusted proxies carry many clients: they count only towards the total."""
        if self._trusted:
            return True
        key = self.factory.limits.admit(peer)
        if key is None:
            self._refuse()
            return False
        self._key = key
        return True

    def _refuse(self) -> None:
        self._closed = True
        self._stop_timer()
        if self._admitted:  # at once, not when the transport reports the close
            self._admitted = False
            self.factory.limits.release(self._key)
            self._key = None
        self.transport.abortConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._closed = True
        self._stop_timer()
        if self._admitted:
            self._admitted = False
            self.factory.limits.release(self._key)
            self._key = None
        if self._web is not None:
            self._web.connectionLost(reason or Failure(ConnectionError("connection lost")))

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _tick(self) -> None:
        """The timer: close the connection whose deadline passed, or look again later."""
        self._timer = None
        if self._closed or self._web is not None:
            return
        now = self.factory.reactor.seconds()
        if self._waiting is not None:
            deadline = now + IDLE_TIMEOUT  # another worker answers; its link has a timeout
        elif self._head_since is not None:
            deadline = self._head_since + self.factory.header_timeout
        else:
            deadline = self._idle_since + IDLE_TIMEOUT
        if now >= deadline:
            self._closed = True
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        # never sleep past a head's deadline: a head may begin while this one waits
        wait = min(deadline - now, self.factory.header_timeout)
        self._timer = self.factory.reactor.callLater(wait, self._tick)

    def _head_began(self, now: float) -> None:
        self._head_since = now
        timer = self._timer
        due = now + self.factory.header_timeout
        if timer is None:
            self._timer = self.factory.reactor.callLater(self.factory.header_timeout, self._tick)
        elif timer.getTime() > due:
            timer.reset(self.factory.header_timeout)

    # -- backpressure (IPushProducer, registered with the transport) -------------------------

    def pauseProducing(self) -> None:
        """More than 64 KiB of answers wait to be sent: stop reading requests."""
        if not self._paused:
            self._paused = True
            self._head_since = None
            self._idle_since = self.factory.reactor.seconds()  # no progress from here on
            if self._waiting is None:
                self.transport.pauseProducing()  # type: ignore[union-attr]

    def resumeProducing(self) -> None:
        if self._paused:
            self._paused = False
            if self._waiting is None and not self._closed:
                self.transport.resumeProducing()  # type: ignore[union-attr]
                self._serve()

    def stopProducing(self) -> None:
        self._closed = True

    # -- requests ----------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._web is not None:
            self._web.dataReceived(data)
            return
        if self._closed:
            return
        if not self._known and not self._admit_proxied():
            return
        self._buf = self._buf + data if self._buf else data
        if self._waiting is None and not self._paused:
            self._serve()

    def _admit_proxied(self) -> bool:
        """With the PROXY protocol the client is known once its header is read, at the first
        bytes of the stream: count the connection under it then."""
        self._known = True
        peer = self.transport.getPeer()  # type: ignore[union-attr]
        self._peer = normalize_ip(getattr(peer, "host", ""))
        self._trusted = self.factory.client_ip.trusts(self._peer)
        if not self._count(self._peer):
            return False
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]
        _send_buffer(self.transport, SEND_BUFFER)
        return True

    def _serve(self) -> None:
        """Answer every complete request in the buffer, in order."""
        buf = self._buf
        http = self.factory.http
        write = self.transport.write  # type: ignore[union-attr]
        served = False
        while buf:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_REQUEST_LINE or b"\n\n" in buf or b"\n\r\n" in buf:
                    # a head too long for an announce, or one ended by bare LFs: the channel
                    # reads it (or refuses it) the way RFC 9112 says
                    self._hand_over(buf)
                    return
                self._buf = buf
                now = self.factory.reactor.seconds()
                if served or self._head_since is None:
                    self._head_began(now)
                return
            line_end = buf.find(b"\n")
            fields = line_end - 1 if buf[line_end - 1] == 13 else line_end  # CRLF or bare LF
            line = _LINE.fullmatch(buf, 0, fields)
            if line is None or end > MAX_HEAD or fields > MAX_REQUEST_LINE:
                self._hand_over(buf)
                return
            target, minor = line.groups()
            if target[0] != 47:  # not "/": absolute-form
                target = origin_form(target)
            routed = route(target)
            if routed is None:
                self._hand_over(buf)
                return
            # a client sends the same header lines on every request of a connection: they are
            # checked (and what they say worked out) once
            block = buf[fields:end]
            if (block != self._block or minor != self._minor) and not self._fields(block, minor):
                self._hand_over(buf)
                return
            buf = buf[end + 4 :]
            served = True
            keep, tail, ip = self._keep, self._tail, self._ip
            action, passkey, query = routed
            if action == b"announce":
                status, body = 200, http.announce(passkey, query, ip)
            else:
                status, body = http.scrape(passkey, query, ip)
            if isinstance(body, Deferred):
                # another worker answers: hold the rest of the pipeline until it does
                self._buf = buf
                self._waiting = body
                if not self._paused:
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
            if self._paused:  # the client is not reading its answers: wait until it does
                self._buf = buf
                return
        self._buf = b""
        self._head_since = None
        self._idle_since = self.factory.reactor.seconds()

    def _fields(self, block: bytes, minor: bytes) -> bool:
        """Check the header lines of a head (from the end of its request line to the end of
        its last field) and work out what they say; False when the channel must judge it."""
        if _FIELDS.fullmatch(block) is None:
            return False
        headers = block.lower()
        hosts = headers.count(b"\nhost:")
        if (
            b"\ncontent-length:" in headers
            or b"\ntransfer-encoding:" in headers
            or hosts > 1
            or (hosts == 0 and minor == b"1")
        ):
            return False
        if hosts:
            host = _header(headers, b"\nhost:")
            if host is None or not valid_host(host):
                return False
        connection = _header(headers, b"\nconnection:")
        if minor == b"1":
            self._keep = connection is None or b"close" not in connection
            self._tail = _KEEP if self._keep else _CLOSE
        else:
            self._keep = connection is not None and b"keep-alive" in connection
            self._tail = _KEEP_10 if self._keep else _CLOSE
        ip = self._peer
        if self._trusted:
            ip = self.factory.client_ip.resolve(
                ip, _joined(headers, b"\nx-forwarded-for:"), _joined(headers, b"\nforwarded:")
            )
        self._ip = ip
        self._block, self._minor = block, minor
        return True

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
        if self._paused:
            return  # resumeProducing serves the rest
        self.transport.resumeProducing()  # type: ignore[attr-defined]
        self._serve()

    def _failed(self, failure: Failure) -> None:
        self.log.failure("answering a forwarded request failed", failure)
        self._waiting = None
        if self.transport is not None and not self._closed:
            self._buf = b""
            body = bencode.failure("internal error")
            self.transport.write(_OK % (len(body), _CLOSE) + body)
            self.transport.loseConnection()

    def _hand_over(self, buf: bytes) -> None:
        """From here on this connection is a StrictChannel's (twisted.web), which gets what
        is left of the current head's deadline."""
        self._buf = b""
        now = self.factory.reactor.seconds()
        since = self._head_since if self._head_since is not None else now
        self._stop_timer()
        transport = self.transport
        assert transport is not None
        transport.unregisterProducer()  # type: ignore[attr-defined]
        _send_buffer(transport, WEB_SEND_BUFFER)
        web = self.factory.site.buildProtocol(self.addr)
        assert isinstance(web, StrictChannel)
        web.header_timeout = self.factory.header_timeout
        self._web = web
        web.makeConnection(transport)
        web.start_deadline(since + self.factory.header_timeout - now)
        web.dataReceived(buf)


class FrontFactory(Factory):
    """The HTTP listener's factory. ``site`` answers whatever the front does not (its channel
    becomes a StrictChannel); ``proxied``: connections start with a PROXY protocol header
    (``--http haproxy:...``), so the client's address is known at their first bytes."""

    def __init__(
        self,
        site: Site,
        http: TrackerHTTP,
        client_ip: ClientIP,
        reactor: object,
        limits: ConnectionLimits | None = None,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        proxied: bool = False,
    ):
        self.site = site
        site.protocol = StrictChannel  # type: ignore[method-assign,assignment]
        self.http = http
        self.client_ip = client_ip
        self.reactor = reactor
        self.limits = limits if limits is not None else ConnectionLimits()
        self.header_timeout = header_timeout
        self.proxied = proxied

    def buildProtocol(self, addr: IAddress | None) -> FrontProtocol:
        assert addr is not None
        return FrontProtocol(self, addr)

    def doStart(self) -> None:
        self.site.doStart()

    def doStop(self) -> None:
        self.site.doStop()
