"""Whether a tracker will serve us, asked before any hashing (weightless.client.scrape): one
scrape of a hash no torrent has, on the passkey's path; a refusal about the passkey stops the
command in the tracker's words, without the passkey in full; anything else lets it go on."""

from __future__ import annotations

import httpx
import pytest

from weightless.client.errors import ClientError
from weightless.client.scrape import check_passkey, refusal
from weightless.client.trackers import Tracker, make_passkey

from .kit import Served, serve

TRACKER = Tracker("http://tracker.example:8080/prefix")
ALICE = make_passkey("alice", "s3cret")
NEEDS = b"d14:failure reason61:this tracker needs a passkey: announce to /{passkey}/announcee"


def answering(monkeypatch: pytest.MonkeyPatch, response: httpx.Response) -> Served:
    served = serve(monkeypatch)
    served.override = lambda request: response
    return served


def test_a_tracker_that_needs_a_passkey_stops_a_command_without_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = answering(monkeypatch, httpx.Response(200, content=NEEDS))
    with pytest.raises(ClientError) as e:
        check_passkey(TRACKER, None)
    assert str(e.value) == (
        "the tracker at http://tracker.example:8080/prefix refused: this tracker needs a "
        "passkey: announce to /{passkey}/announce (give --passkey (or WL_PASSKEY), or "
        "--user-id with TRACKER_SECRET)"
    )
    (asked,) = served.requests
    assert asked.url.path == "/prefix/scrape"
    assert asked.url.params["info_hash"] == "\x00" * 20  # no torrent's hash: no swarm touched


def test_a_refused_passkey_is_named_by_its_user_only(monkeypatch: pytest.MonkeyPatch) -> None:
    served = answering(
        monkeypatch, httpx.Response(200, content=b"d14:failure reason15:invalid passkeye")
    )
    with pytest.raises(ClientError) as e:
        check_passkey(TRACKER, ALICE)
    assert (
        str(e.value) == "the tracker at http://tracker.example:8080/prefix refused: invalid passkey"
    )
    assert served.requests[0].url.path == f"/prefix/{ALICE}/scrape"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, content=b"d5:filesdee"),  # served: a tracker without passkeys
        httpx.Response(200, content=b"d14:failure reason10:slow down!e"),  # not about passkeys
        httpx.Response(429, content=b"Rate limit exceeded. Please slow down."),
        httpx.Response(404, json={"error": "no such route"}),  # not a Weightless tracker
        httpx.Response(200, content=b"<html>not bencode</html>"),
        httpx.Response(200, content=b"li1ee"),
        httpx.Response(200, content=b"d14:failure reasoni7ee"),
        httpx.Response(302, headers={"Location": "http://elsewhere.example/scrape"}),
    ],
)
def test_anything_else_lets_the_transfer_find_out(
    monkeypatch: pytest.MonkeyPatch, response: httpx.Response
) -> None:
    answering(monkeypatch, response)
    assert refusal(TRACKER, None) is None
    check_passkey(TRACKER, ALICE)


def test_an_unreachable_tracker_is_left_to_the_transfer(monkeypatch: pytest.MonkeyPatch) -> None:
    served = serve(monkeypatch)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    served.override = down
    assert refusal(TRACKER, ALICE) is None
