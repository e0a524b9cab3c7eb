"""HTTP answers read within bounds, for everything the client asks a registry or a tracker.

- Time: one deadline for the whole exchange (connecting, sending, the head and the body),
  not per read: every socket read and write is given only the time left, so a server that
  trickles a byte a second is cut off at the deadline like one that sends nothing.
- Size: the body is read up to a limit in bytes (after any content decoding); a larger
  ``Content-Length`` is refused before reading, and a body that goes past the limit is cut
  off there, so a server streaming gigabytes costs at most the limit in memory. Content
  codings (gzip, deflate, even applied twice) are decoded here a bounded step at a time, so a
  bomb costs no more; any other coding (br, zstd) is refused with one line.
- Origin: keys (``X-Weightless-Key``) and passkeys go only to the origin they were given for.
  A redirect to another origin (scheme, host or port) is refused with one line; a redirect
  within the origin is followed, at most `MAX_REDIRECTS` times (301, 302 and 303 as GET, 307
  and 308 with the same method and body, as browsers do). No cookie a server sets is kept
  or sent back: the client has no session to keep, and a cookie would only follow the user.

Every failure is a `ClientError` with one line.
"""

from __future__ import annotations

import json
import math
import ssl
import time
import zlib
from dataclasses import dataclass
from functools import cache
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpx

from weightless.client.errors import ClientError, Unreachable
from weightless.wire.units import human_size

DEADLINE = 30.0  # seconds for one exchange, from connecting to the last byte of the body
MAX_JSON = 16 << 20  # 16 MiB: the most a JSON answer may hold
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Answer:
    """A whole answer: status, reason phrase, headers and the body (at most the limit)."""

    status: int
    reason: str
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        """The body as JSON (RFC 8259); `ValueError` when it is not, nests too deeply to read,
        or holds a number JSON cannot carry (NaN, Infinity, 1e999): Python's reader takes
        those, and ``--json`` would then print what is not JSON."""
        try:
            return json.loads(self.body, parse_constant=_no_constant, parse_float=_finite)
        except RecursionError:  # [[[[... within the size limit: not an answer of ours
            raise ValueError("JSON nested too deeply") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large for a JSON number")
    return number


def origin(url: httpx.URL) -> tuple[str, str, int]:
    """(scheme, host, port) with the scheme's default port filled in (RFC 6454)."""
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme, 0)
    return url.scheme, url.host.lower(), port


def _show(url: httpx.URL) -> str:
    scheme, host, port = origin(url)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port == _DEFAULT_PORTS.get(scheme) else f":{port}")


class _Clock:
    """The deadline every socket operation of the current exchange is held to."""

    def __init__(self) -> None:
        self.deadline: float | None = None

    def left(self, timeout: float | None, error: type[Exception]) -> float | None:
        if self.deadline is None:
            return timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise error("the deadline has passed")
        return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, clock: _Clock) -> None:
        self._inner = inner
        self._clock = clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._clock.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._clock.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = self._clock.left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, left), self._clock)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's sockets, each operation given at most the time left before the deadline."""

    def __init__(self, clock: _Clock) -> None:
        self._inner = httpcore.SyncBackend()
        self._clock = clock

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        left = self._clock.left(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, left, local_address, socket_options)
        return _Stream(stream, self._clock)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        left = self._clock.left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, left, socket_options), self._clock)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@cache
def _verified_tls() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CAs, or SSL_CERT_FILE): made once, when the
    first https origin is asked (it costs about 0.1 s to load)."""
    return httpx.create_ssl_context()


def _no_tls() -> ssl.SSLContext:
    """For an http origin: a context that verifies against no CA, so TLS can never succeed
    (a redirect to https is another origin and refused anyway), and costs nothing to make."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class Bounded:
    """An HTTP client for one origin's answers (see the module). ``where`` names the server
    in messages (``the tracker at http://host:8080``); ``deadline`` is in seconds; ``https``
    says whether the origin is https (only then are the system's CAs loaded)."""

    def __init__(self, where: str, deadline: float = DEADLINE, *, https: bool = True) -> None:
        self.where = where
        self.seconds = deadline
        self._clock = _Clock()
        transport = httpx.HTTPTransport(verify=_verified_tls() if https else _no_tls())
        pool = getattr(transport, "_pool", None)
        if isinstance(pool, httpcore.ConnectionPool):  # not through a proxy
            pool._network_backend = _Backend(self._clock)
        self._http = httpx.Client(
            transport=transport,
            timeout=deadline,
            headers={"User-Agent": "weightless-client", "Accept-Encoding": "identity"},
            follow_redirects=False,
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),  # keeps no cookie
        )

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, url: str, *, limit: int = MAX_JSON, **kwargs: Any) -> Answer:
        """One exchange, redirects within the origin included, within ``self.seconds``; the
        body at most ``limit`` bytes. Raises `ClientError`."""
        start = time.monotonic()
        self._clock.deadline = start + self.seconds
        try:
            request = self._http.build_request(method, url, **kwargs)
            first = origin(request.url)
            for _ in range(MAX_REDIRECTS + 1):
                response = self._http.send(request, stream=True)
                try:
                    target = response.next_request
                    if target is None:
                        return self._read(response, limit)
                    if origin(target.url) != first:
                        raise ClientError(
                            f"{self.where} redirected to {_show(target.url)}, another origin: "
                            "refused (keys and passkeys go only where they were given; if "
                            "the tracker moved, give its new URL with --tracker)"
                        )
                finally:
                    response.close()
                request = target
            raise ClientError(f"{self.where} redirected more than {MAX_REDIRECTS} times")
        except httpx.TimeoutException:
            raise Unreachable(f"{self.where} did not answer within {self.seconds:g} s") from None
        except httpx.HTTPError as e:
            reason = str(e) or type(e).__name__
            raise Unreachable(f"cannot reach {self.where}: {reason}") from None
        finally:
            self._clock.deadline = None

    def _read(self, response: httpx.Response, limit: int) -> Answer:
        declared = response.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > limit:
            raise ClientError(f"{self.where} sent an answer of {declared} bytes; {_over(limit)}")
        codings = _codings(response.headers.get("Content-Encoding", ""))
        for coding in codings:
            if coding not in _INFLATE:
                raise ClientError(
                    f"{self.where} sent an answer in the content coding {coding!r}, which the "
                    "client does not read"
                )
        # decoded here, never by httpx: each step yields at most what is still allowed, so
        # a bomb (gzip of gzip: 200 MiB in 1 KiB) costs no more memory than the limit
        steps = [_Inflate(c) for c in reversed(codings)]
        chunks = response.iter_raw()
        if response.is_stream_consumed:  # read whole and decoded already (an in-memory answer)
            steps, chunks = [], iter([response.content])
        body = bytearray()
        try:
            for chunk in chunks:
                for step in steps:
                    chunk = step.feed(chunk, limit - len(body))
                body += chunk
                if len(body) > limit:
                    raise ClientError(f"{self.where} sent an answer too long; {_over(limit)}")
        except zlib.error:
            raise ClientError(f"{self.where} sent a damaged {', '.join(codings)} body") from None
        return Answer(response.status_code, response.reason_phrase, response.headers, bytes(body))


_INFLATE = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _codings(header: str) -> list[str]:
    """The content codings of an answer (RFC 9110 8.4), in the order they were applied."""
    found = [c.strip().lower() for c in header.split(",")]
    return [c for c in found if c and c != "identity"]


class _Inflate:
    """One gzip or deflate step, giving at most ``room + 1`` bytes per call (the one past
    the limit says it is too long); "deflate" is zlib's format, or raw deflate as some
    servers send it."""

    def __init__(self, coding: str) -> None:
        self._wbits = _INFLATE[coding]
        self._z = zlib.decompressobj(self._wbits)
        self._fresh = coding == "deflate"

    def feed(self, data: bytes, room: int) -> bytes:
        out = bytearray()
        while data and len(out) <= room:
            try:
                out += self._z.decompress(data, room + 1 - len(out))
            except zlib.error:
                if not self._fresh:
                    raise
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
                out += self._z.decompress(data, room + 1 - len(out))
            self._fresh = False
            data = self._z.unconsumed_tail
        return bytes(out)


def _over(limit: int) -> str:
    return f"the most read is {human_size(limit)}"
