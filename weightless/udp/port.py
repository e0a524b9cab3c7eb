"""The UDP tracker's socket loop: datagrams read in batches, each answered at once, the replies
sent in batches.

Twisted's ``udp.Port`` makes one ``recvfrom`` per datagram (a Python call, an address tuple,
an exception at the end of every read) and the tracker one ``sendto`` per reply (which parses
the address it was just given). Here one ``recvmmsg`` reads up to 64 datagrams and one
``sendmmsg`` sends their replies to the sources' own socket addresses, through the small C
extension ``weightless.udp._udpbatch`` (Linux). Without it (no compiler at install, another OS),
:func:`serve_plain` does the same one datagram at a time, with the same results.

Each reactor turn answers at most :data:`BUDGET` datagrams, so a flood of them leaves the
reactor to HTTP connections and timers between turns (the socket stays readable, and the
reactor comes back to it).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet import udp
from twisted.logger import Logger

BUDGET = 256  # datagrams per reactor turn (about 2.5 ms of announces)
MAX_DATAGRAM = 8192  # longer ones are dropped: no BEP 15 request is near this size
# asked of the kernel for the socket's receive queue (it caps this at net.core.rmem_max, 4 MiB
# on Debian): the default 208 KiB holds 150-250 datagrams, so a burst of a flood drops the
# well-behaved clients' datagrams with the rest (bench/soak.py)
RECEIVE_BUFFER = 4 << 20

# handler(data, host, port, now) -> the reply to send to (host, port), or None
Handler = Callable[[bytes, str, int, float], "bytes | None"]

serve_batched: Callable[[int, Handler, float, int], tuple[int, int, int]] | None
try:
    from weightless.udp._udpbatch import serve as serve_batched
except ImportError:  # pragma: no cover (built without a C compiler, or not Linux)
    serve_batched = None

# read errors that end a turn quietly, as Twisted's udp.Port has them
_QUIET = frozenset(
    (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.EMSGSIZE, errno.ECONNREFUSED)
)

log = Logger()


def batched_available() -> bool:
    """True when the recvmmsg/sendmmsg extension is built."""
    return serve_batched is not None


def serve_plain(
    sock: socket.socket, handler: Handler, now: float, budget: int
) -> tuple[int, int, int]:
    """Answer up to ``budget`` datagrams waiting on the non-blocking ``sock``, one system call
    each. Returns (received, sent, dropped): ``dropped`` counts replies the kernel refused (a full
    send buffer), which are lost as the network might lose them. The reference for the C loop."""
    received = sent = dropped = 0
    recvfrom, sendto = sock.recvfrom, sock.sendto
    while received < budget:
        try:
            data, addr = recvfrom(MAX_DATAGRAM + 1)
        except InterruptedError:
            continue
        except BlockingIOError:
            break
        received += 1
        if len(data) > MAX_DATAGRAM:
            continue
        host = addr[0]
        if "%" in host:  # a link-local source's scope ("fe80::1%eth0"): the C loop has none
            host = host.partition("%")[0]
        reply = handler(data, host, addr[1], now)
        if reply is None:
            continue
        try:
            sendto(reply, addr)
            sent += 1
        except OSError:
            dropped += 1
    return received, sent, dropped


class BatchPort(udp.Port):
    """A Twisted UDP port whose protocol answers datagrams through ``handler`` (see Handler)
    instead of ``datagramReceived``; ``transport.write`` works as on any port."""

    budget = BUDGET

    def __init__(
        self,
        port: int | None,
        proto: Any,
        interface: str = "",
        maxPacketSize: int = MAX_DATAGRAM,
        reactor: Any = None,
        batched: bool = True,
        handler: Handler | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(port, proto, interface, maxPacketSize, reactor)
        self.handler: Handler = handler if handler is not None else proto.reply
        reactor_: Any = self.reactor
        self.clock: Callable[[], float] = clock if clock is not None else reactor_.seconds
        self.batched = batched and serve_batched is not None
        self.dropped = 0  # replies the kernel refused: a full send buffer

    def startListening(self) -> None:
        super().startListening()
        grow_receive_buffer(self.socket)

    def doRead(self) -> None:
        """Answer what is waiting, up to ``budget`` datagrams; the reactor calls again while
        the socket stays readable. An error never stops the port: it is logged."""
        now = float(self.clock())
        try:
            if self.batched and serve_batched is not None:
                _, _, dropped = serve_batched(self.socket.fileno(), self.handler, now, self.budget)
            else:
                _, _, dropped = serve_plain(self.socket, self.handler, now, self.budget)
        except OSError as e:
            if e.errno not in _QUIET:
                log.failure("reading the UDP socket failed")
            return
        except Exception:
            log.failure("answering UDP datagrams failed")
            return
        self.dropped += dropped


def grow_receive_buffer(sock: socket.socket, size: int = RECEIVE_BUFFER) -> None:
    """Ask for ``size`` bytes of receive queue (the kernel grants at most net.core.rmem_max);
    a refusal leaves the default."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError:
        log.info("the UDP receive buffer stays at the kernel's default")


def listen(
    reactor: Any, port: int, protocol: Any, interface: str = "", batched: bool = True
) -> BatchPort:
    """Bind ``interface``:``port`` and serve ``protocol.reply`` there (reactor.listenUDP's twin)."""
    p = BatchPort(port, protocol, interface, reactor=reactor, batched=batched)
    p.startListening()
    return p


def adopt(reactor: Any, fd: int, family: int, protocol: Any, batched: bool = True) -> BatchPort:
    """Serve ``protocol.reply`` on an already bound socket (reactor.adoptDatagramPort's twin)."""
    if family not in (socket.AF_INET, socket.AF_INET6):
        raise ValueError(f"not an IP socket family: {family}")
    p = BatchPort._fromListeningDescriptor(reactor, fd, family, protocol, MAX_DATAGRAM)
    p.batched = batched and serve_batched is not None
    p.startListening()
    return p


class UDPService(Service):
    """Listens on a UDP port through :class:`BatchPort` while running (twisted's
    ``internet.UDPServer`` for this loop)."""

    def __init__(self, reactor: Any, port: int, protocol: Any, interface: str = "") -> None:
        self.reactor = reactor
        self.port_number = port
        self.protocol = protocol
        self.interface = interface
        self.port: BatchPort | None = None

    def startService(self) -> None:
        super().startService()
        self.port = listen(self.reactor, self.port_number, self.protocol, self.interface)

    def stopService(self) -> Any:
        super().stopService()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None
