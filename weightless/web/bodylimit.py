"""Request bodies refused while they stream in: a 413 as soon as Content-Length (or, chunked,
the bytes so far) passes the path's limit, never after buffering the whole body."""

from __future__ import annotations

import json
from typing import Any

from twisted.web.server import Request

from weightless.registry.service import MAX_CARD
from weightless.torrent.metainfo import MAX_TORRENT_BYTES

JSON_LIMIT = 1 << 20  # the spec's 1 MB for POST /api/registry, and every other body
TORRENT_LIMIT = MAX_TORRENT_BYTES  # POST /api/registry/torrent: a raw .torrent file
TORRENT_PATH = b"/api/registry/torrent"
CARD_LIMIT = MAX_CARD  # PUT /api/registry/card: a model card
CARD_PATH = b"/api/registry/card"


def limit_for(target: bytes) -> int:
    """The body limit of a request target (origin-form or absolute-form)."""
    path = target.partition(b"?")[0]
    if b"://" in path:
        path = b"/" + path.split(b"://", 1)[1].partition(b"/")[2]
    path = path.rstrip(b"/")
    if path == TORRENT_PATH:
        return TORRENT_LIMIT
    return CARD_LIMIT if path == CARD_PATH else JSON_LIMIT


class LimitedRequest(Request):
    """A `Site` request factory. The target is read from the channel (twisted.web parses the
    request line there and hands it to the request only once the body is in)."""

    limit_for = staticmethod(limit_for)
    # nothing reads form fields from a body (the API takes JSON and raw .torrent files): never
    # parse one, on the reactor, with the email package (a control character in its
    # Content-Type made that raise out of the channel)
    _parsePOSTFormSubmission = False
    _limit = JSON_LIMIT
    _received = 0
    _refused = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # no form decoding of bodies into request.args: nothing reads them (the API parses its
        # own query strings), and a malformed multipart body got twisted's bare 400, not a 415
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(*args, **kwargs)

    def gotLength(self, length: int | None) -> None:
        self._limit = self.limit_for(getattr(self.channel, "_path", b"/"))
        if length is not None and length > self._limit:
            super().gotLength(None)
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit:
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)

    def _refuse(self) -> None:
        self._refused = True
        # no "100 Continue" after the answer: the client must not send the body at all
        self.requestHeaders.removeHeader(b"expect")
        body = json.dumps(
            {"error": f"request body too large: the limit is {self._limit} bytes"}
        ).encode()
        transport = self.channel.transport
        assert transport is not None
        transport.write(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        transport.loseConnection()
