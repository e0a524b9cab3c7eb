"""Every tracker URL form (``/announce/{passkey}`` and ``/{passkey}/announce``, the same for
scrape) is served the same way by the fast front protocol and by the Klein tree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers import (
    Conn,
    FakeStore,
    Stack,
    announce_path,
    bdecode,
    build_stack,
    compact_peers,
    make_passkey,
    scrape_path,
)
from treq.testing import StubTreq
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

HASH = bytes(range(20))
SECRET = "passkey url secret"
Get = Callable[[bytes, str], tuple[int, bytes]]


def front(stack: Stack) -> Get:
    def get(target: bytes, host: str) -> tuple[int, bytes]:
        reply = Conn(stack, host).get(target)
        return reply.status, reply.body

    return get


def klein(stack: Stack) -> Get:
    treq = StubTreq(stack.web.resource())

    def get(target: bytes, host: str) -> tuple[int, bytes]:
        headers = {b"X-Forwarded-For": [host.encode()]}
        response = _settled(treq.get(b"http://tracker.example" + target, headers=headers))
        return response.code, _settled(treq.content(response))

    return get


def _settled(d: Deferred[Any]) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "no answer yet"
    return results[0]


def make(secret: bool) -> Stack:
    return build_stack(
        FakeStore(lambda: succeed(None)),
        Clock(),
        secret=SECRET.encode() if secret else None,
        trusted_proxies=("127.0.0.1/32",),  # the Klein client's address
    )


ADAPTERS = pytest.mark.parametrize("adapter", [front, klein], ids=["front", "klein"])
FORMS = pytest.mark.parametrize("passkey_first", [False, True], ids=["spec-form", "passkey-first"])


@ADAPTERS
@FORMS
def test_passkey_urls_are_served_and_accounted(
    adapter: Callable[[Stack], Get], passkey_first: bool
) -> None:
    stack = make(secret=True)
    get = adapter(stack)
    key = make_passkey(SECRET, "alice")
    status, body = get(
        announce_path(HASH, 6881, key, passkey_first, event="started", uploaded=0, left=0),
        "198.51.100.1",
    )
    assert status == 200 and b"failure reason" not in bdecode(body), body
    get(announce_path(HASH, 6881, key, passkey_first, uploaded=700, left=0), "198.51.100.1")
    assert stack.pending.traffic == {"alice": [700, 0]}
    other = make_passkey(SECRET, "bob")
    status, body = get(announce_path(HASH, 6882, other, passkey_first), "198.51.100.2")
    assert compact_peers(bdecode(body)[b"peers"]) == [("198.51.100.1", 6881)]
    status, body = get(scrape_path(HASH, passkey=key, passkey_first=passkey_first), "198.51.100.3")
    assert status == 200
    assert bdecode(body)[b"files"][HASH] == {b"complete": 1, b"downloaded": 0, b"incomplete": 1}


@ADAPTERS
@FORMS
def test_bad_or_missing_passkeys_are_refused(
    adapter: Callable[[Stack], Get], passkey_first: bool
) -> None:
    stack = make(secret=True)
    get = adapter(stack)
    bad = "alice." + "0" * 64
    for target in (
        announce_path(HASH, 6881, bad, passkey_first),
        scrape_path(HASH, passkey=bad, passkey_first=passkey_first),
    ):
        status, body = get(target, "198.51.100.1")
        assert (status, bdecode(body)) == (200, {b"failure reason": b"invalid passkey"})
    for target in (announce_path(HASH, 6881), scrape_path(HASH)):
        status, body = get(target, "198.51.100.1")
        assert b"passkey" in bdecode(body)[b"failure reason"]
    assert not stack.swarms.swarms


@FORMS
def test_without_a_secret_every_form_is_served_alike(passkey_first: bool) -> None:
    """Through the front and the Klein tree, byte for byte, like /announce."""
    targets = [
        announce_path(HASH, 6881, "any-key", passkey_first, left=0),
        announce_path(HASH, 6882, "any-key", passkey_first),
        announce_path(HASH, 6883),
        scrape_path(HASH, passkey="any-key", passkey_first=passkey_first),
        scrape_path(HASH),
    ]
    answers = []
    for adapter in (front, klein):
        get = adapter(make(secret=False))
        answers.append([get(target, "198.51.100.1") for target in targets])
    assert answers[0] == answers[1]
    files = bdecode(answers[0][3][1])[b"files"]
    assert files[HASH] == {b"complete": 1, b"downloaded": 0, b"incomplete": 2}
    assert bdecode(answers[0][4][1]) == bdecode(answers[0][3][1])
