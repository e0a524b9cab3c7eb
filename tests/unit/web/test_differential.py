"""Differential test of HTTP/1.1 syntax: request heads generated from RFC 9112's grammar and
its usual violations go to the front protocol (the whole listener: its fast path and the
StrictChannel behind it) and to a plain twisted.web ``Site``. Wherever twisted.web answers a
request with 400, the listener must not serve that request (here: must not add its peer).

The one change to stock twisted.web: its channel ends a line at LF as well as at CRLF, as RFC
9112 section 2.2 permits and the contract requires of the listener (stock twisted.web waits for
a CRLF that never comes, so a bare-LF head would otherwise be one long malformed line)."""

from __future__ import annotations

from typing import Any

from helpers import Conn, FakeStore, announce_path, build_stack, get_request, parse_replies
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Site

HASH = bytes(range(20))
FIRST = announce_path(HASH, 6881)
SECOND = announce_path(HASH, 6882)


class LFChannel(HTTPChannel):
    delimiter = b"\n"

    def lineReceived(self, line: bytes) -> None:
        super().lineReceived(line[:-1] if line.endswith(b"\r") else line)


class Ok(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        return b"ok"


def twisted_statuses(data: bytes) -> list[int]:
    """The statuses a plain twisted.web Site answers ``data`` with, in order."""
    site = Site(Ok(), reactor=MemoryReactorClock())
    site.protocol = LFChannel  # type: ignore[assignment]
    addr = IPv4Address("TCP", "203.0.113.7", 50000)
    channel = site.buildProtocol(addr)
    assert channel is not None
    transport = StringTransport(peerAddress=addr)
    channel.makeConnection(transport)
    channel.dataReceived(data)
    out = transport.value()
    channel.connectionLost(Failure(ConnectionError("done")))
    try:
        return [r.status for r in parse_replies(out)]
    except ValueError:  # a reply cut short: count what is whole
        return [int(out[9:12])] if out.startswith(b"HTTP/1.1 ") else []


def listener_peers(data: bytes) -> int:
    """Peers the listener added for ``data`` (one per announce it served)."""
    stack = build_stack(FakeStore(lambda: succeed(None)), MemoryReactorClock())
    conn = Conn(stack)
    conn.send(data)
    return stack.swarms.peer_count


EOL = st.sampled_from([b"\r\n"] * 30 + [b"\n"] * 4 + [b"\r", b"\n\r", b"\r\r\n"])
TOKEN = st.sampled_from(
    [b"User-Agent", b"Accept", b"X-A", b"Connection", b"X-Forwarded-For"] * 6
    + [b"Host", b"User-Agent", b"Connection", b"X-Forwarded-For", b"Content-Length"]
    + [b"Transfer-Encoding", b"Accept", b"X-A", b"Host ", b"Content-Length ", b"X A", b""]
    + [b" Host", b"\tX", b"X(A)", b"Content-Length\t"]
)
GOOD_VALUE = st.sampled_from([b"x", b"tracker.example", b"libtorrent/2.0", b"*/*"])
VALUE = st.one_of(
    *[GOOD_VALUE] * 8,
    st.sampled_from(
        [b"x", b"tracker.example", b"close", b"keep-alive", b"0", b"5", b"1, 2", b"chunked"]
        + [b"identity", b"gzip, chunked", b"192.0.2.66", b"", b" x ", b"+5", b"-1"]
    ),
    st.binary(max_size=6).map(lambda b: b.translate(bytes(range(256)))),
    st.text(alphabet="ab 5\t\r\x00\x7f\xff:", max_size=6).map(lambda t: t.encode("latin-1")),
)
SEP = st.sampled_from([b": "] * 20 + [b":", b":\t", b":  "] * 2 + [b" : ", b"\t:"])


@st.composite
def heads(draw: Any) -> bytes:
    method = draw(st.sampled_from([b"GET"] * 30 + [b"HEAD", b"get", b"GE T", b"POST"]))
    target = draw(
        st.sampled_from(
            [FIRST] * 30
            + [b"http://tracker.example" + FIRST, FIRST + b"\xff", FIRST + b"\r", FIRST + b"\x7f"]
            + [FIRST + b" x", b"*", FIRST.replace(b"&", b"\t", 1)]
        )
    )
    sp1 = draw(st.sampled_from([b" "] * 30 + [b"  ", b"\t", b""]))
    sp2 = draw(st.sampled_from([b" "] * 30 + [b"  ", b"\t", b""]))
    version = draw(
        st.sampled_from(
            [b"HTTP/1.1"] * 30
            + [b"HTTP/1.0"] * 5
            + [b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"http/1.1", b"HTTP/1.1 ", b"HTTP/1.10"]
            + [b"HTTP/0.9", b"", b"HTTP/1", b"HTTPS/1.1"]
        )
    )
    lines = [method + sp1 + target + sp2 + version + draw(EOL)]
    fields = draw(st.lists(st.tuples(TOKEN, SEP, VALUE, EOL, st.booleans()), max_size=4))
    if draw(st.integers(0, 9)) > 0:
        lines.append(b"Host: tracker.example\r\n")
    for name, sep, value, eol, fold in fields:
        lines.append(name + sep + value + eol)
        if fold and draw(st.integers(0, 9)) == 0:
            lines.append(b" folded" + eol)
    lines.append(draw(st.sampled_from([b"\r\n"] * 10 + [b"\n", b""])))
    body = draw(st.sampled_from([b""] * 5 + [get_request(SECOND), b"5\r\nhello\r\n0\r\n\r\n"]))
    return b"".join(lines) + body + get_request(SECOND)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(heads())
def test_what_twisted_web_refuses_the_listener_does_not_serve(data: bytes) -> None:
    statuses = twisted_statuses(data)
    peers = listener_peers(data)
    event(f"twisted.web {statuses[:2]}, listener peers {peers}")
    if statuses[:1] == [400]:
        assert peers == 0, (data, statuses)
    elif statuses[1:2] == [400]:
        assert peers <= 1, (data, statuses)


def test_the_generator_reaches_both_verdicts() -> None:
    """The property is not empty: plain requests are served by both, and framing violations (a
    space before the colon, a bare CR, HTTP/1.2, two Content-Lengths) are refused by twisted.web
    (so the property constrains the listener there)."""
    ok = get_request(FIRST)
    assert twisted_statuses(ok) == [200] and listener_peers(ok) == 1
    for bad in (
        ok.replace(b"Host: ", b"Host : "),
        ok.replace(b"\r\nHost", b"\r\nX-A: b\rc\r\nHost"),
        ok.replace(b"HTTP/1.1", b"HTTP/1.2"),
        ok.replace(b"Host: tracker.example\r\n", b"Content-Length: 1\r\nContent-Length: 2\r\n"),
    ):
        assert twisted_statuses(bad)[:1] == [400], bad
        assert listener_peers(bad) == 0
