"""twisted.web's HTTP/1.1 channel held to RFC 9112 and to the tracker's limits.

Used for every request the front protocol does not answer itself, so that the whole listener
reads HTTP one way (``weightless.web.front`` serves only heads this channel would accept):

- a line ends at LF, with or without the CR before it (RFC 9112 section 2.2); a CR anywhere
  else is a 400;
- a request line over 8 KiB is a 414, a head over 16 KiB a 431;
- the request target is visible ASCII; an absolute-form target (``GET http://host/path``) is
  served as its path;
- obs-fold (a header line starting with a space or tab), whitespace between a field name and
  its colon, a control character in a field value (RFC 9110 section 5.5), a Transfer-Encoding
  other than ``chunked``, Content-Length together with Transfer-Encoding, conflicting or
  repeated Content-Lengths, a missing or repeated Host on HTTP/1.1, a Host that is not a host
  (RFC 3986 ``host [":" port]``, DNS labels of 1-63 characters), and any version but HTTP/1.0
  and HTTP/1.1 are a 400;
- a head must be complete ``header_timeout`` seconds after its first byte, however slowly it
  trickles in (twisted.web's own timer restarts on every byte); otherwise the connection is
  dropped.

Every refusal closes the connection: after a malformed head nobody can tell where the next
request would start.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel

MAX_REQUEST_LINE = 8192
MAX_HEAD = 16384
DEFAULT_HEADER_TIMEOUT = 10.0

_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
}
_VISIBLE = bytes(range(0x21, 0x7F))
_FIELD_VALUE = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))


# RFC 3986: an IP-literal, or a reg-name / IPv4 address (unreserved, pct-encoded, sub-delims),
# then an optional port
_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~%!$&'()*+,;=]*)(?::[0-9]*)?")


def valid_host(value: bytes) -> bool:
    """Whether a Host header value is ``host [":" port]`` (RFC 9112 section 3.2 wants a 400
    otherwise), with DNS labels of 1 to 63 characters (what IDNA, and so the Klein router,
    accepts; a longer or empty label made it fail with a 500)."""
    m = _HOST.fullmatch(value)
    if m is None:
        return False
    name = m.group(1)
    if not name or name[0] == 0x5B:  # empty, or "[...]"
        return True
    if name[-1] == 0x2E:  # one trailing dot: a fully qualified name
        name = name[:-1]
    return all(0 < len(label) <= 63 for label in name.split(b"."))


def origin_form(target: bytes) -> bytes:
    """The origin-form (``/path?query``) of an absolute-form target (``http://host/path?query``);
    any other target as it is."""
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        return target
    cut = len(rest)
    for mark in (b"/", b"?"):
        at = rest.find(mark)
        if 0 <= at < cut:
            cut = at
    path = rest[cut:]
    return path if path.startswith(b"/") else b"/" + path


def refusal(status: int, why: str) -> bytes:
    """A complete response that refuses a request and announces the close."""
    body = why.encode() + b"\n"
    return b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status,
        _REASONS[status],
        len(body),
        b"Connection: close\r\n",
        body,
    )


class StrictChannel(HTTPChannel):
    delimiter = b"\n"
    # longest line LineReceiver passes on (the delimiter is LF, so a CR may end it): while a
    # request line is read, then MAX_HEAD for header lines
    MAX_LENGTH = MAX_REQUEST_LINE + 1
    totalHeadersSize = MAX_HEAD
    header_timeout = DEFAULT_HEADER_TIMEOUT

    _deadline: Any = None
    _refused = False
    _head_bytes = 0
    _hosts = 0
    _host = b""
    _length_fields = 0
    _chunked = False
    _http11 = True

    def _reading_request_line(self) -> bool:
        return bool(self._HTTPChannel__first_line)  # type: ignore[attr-defined]

    def start_deadline(self, seconds: float) -> None:
        """Start the deadline of the head being read (the front protocol hands a connection
        over with what is left of its own)."""
        if self._deadline is None:
            self._deadline = self.callLater(max(0.0, seconds), self._head_expired)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _head_expired(self) -> None:
        self._deadline = None
        self._refused = True
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        if (
            data
            and self._deadline is None
            and self.line_mode
            and not self._handlingRequest
            and self._reading_request_line()
        ):
            self.start_deadline(self.header_timeout)
        super().dataReceived(data)

    def lineLengthExceeded(self, line: bytes) -> None:
        if self._reading_request_line():
            self._refuse(414, "request line too long (over 8 KiB)")
        else:
            self._refuse(431, "request head too large (over 16 KiB)")

    def lineReceived(self, line: bytes) -> None:
        if self._refused:
            return
        if line[-1:] == b"\r":
            line = line[:-1]
        if b"\r" in line:
            self._refuse(400, "bare CR in the request head")
            return
        self._head_bytes += len(line) + 2
        if self._head_bytes > MAX_HEAD:
            self._refuse(431, "request head too large (over 16 KiB)")
            return
        if self._reading_request_line():
            if not line:  # an empty line before a request: HTTPChannel skips one
                self._head_bytes = 0
                super().lineReceived(line)
                return
            self._request_line(line)
            return
        if not line:
            self._end_of_head()
            return
        if line[0] in b" \t":
            self._refuse(400, "obs-fold (a header line starting with whitespace)")
            return
        name, _, value = line.partition(b":")
        if value.translate(None, _FIELD_VALUE):
            self._refuse(400, "control character in a header value")
            return
        name = name.lower()
        if name == b"host":
            self._hosts += 1
            self._host = value.strip(b" \t")
        elif name == b"content-length":
            self._length_fields += 1
        elif name == b"transfer-encoding":
            if value.strip(b" \t").lower() != b"chunked" or self._chunked:
                self._refuse(400, "unsupported Transfer-Encoding (only chunked)")
                return
            self._chunked = True
        super().lineReceived(line)

    def _request_line(self, line: bytes) -> None:
        if len(line) > MAX_REQUEST_LINE:
            self._refuse(414, "request line too long (over 8 KiB)")
            return
        parts = line.split(b" ")
        if len(parts) != 3 or parts[1].translate(None, _VISIBLE):
            self._refuse(400, "malformed request line")
            return
        method, target, version = parts
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            self._refuse(400, "unsupported HTTP version")
            return
        self._http11 = version == b"HTTP/1.1"
        self.MAX_LENGTH = MAX_HEAD
        super().lineReceived(b"%s %s %s" % (method, origin_form(target), version))

    def _end_of_head(self) -> None:
        if (self._http11 and self._hosts != 1) or self._hosts > 1:
            self._refuse(400, "HTTP/1.1 needs exactly one Host header")
            return
        if self._hosts and not valid_host(self._host):
            self._refuse(400, "malformed Host header")
            return
        if self._length_fields > 1:
            self._refuse(400, "more than one Content-Length")
            return
        if self._length_fields and self._chunked:
            self._refuse(400, "Content-Length together with Transfer-Encoding")
            return
        self._stop_deadline()
        self._head_bytes = self._hosts = self._length_fields = 0
        self._chunked = False
        self.MAX_LENGTH = MAX_REQUEST_LINE + 1
        super().lineReceived(b"")

    def _refuse(self, status: int, why: str) -> None:
        self._refused = True
        self._stop_deadline()
        self.setTimeout(None)
        if self.transport is not None:
            self.transport.write(refusal(status, why))
            self.loseConnection()

    def _respondToBadRequestAndDisconnect(self) -> None:
        # twisted.web's own refusals (bad method token, bad header name, a Content-Length that
        # is not digits, bad chunking) in the same form as ours
        if not self._refused:
            self._refuse(400, "malformed request")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._stop_deadline()
        super().connectionLost(reason)
