import bencodepy

from weightless.wire import bencode


def test_announce_reply_decodes_as_bencode() -> None:
    body = bencode.announce(1800, 900, 3, 4, 5, b"\x7f\x00\x00\x01\x1a\xe1", b"")
    assert bencodepy.decode(body) == {
        b"complete": 3,
        b"incomplete": 4,
        b"downloaded": 5,
        b"interval": 1800,
        b"min interval": 900,
        b"peers": b"\x7f\x00\x00\x01\x1a\xe1",
    }
    # keys in sorted order, as bencode requires: a re-encoding is byte-identical
    assert bencodepy.encode(bencodepy.decode(body)) == body


def test_announce_reply_with_ipv6_peers() -> None:
    six = bytes(16) + b"\x1a\xe1"
    body = bencode.announce(60, 30, 1, 0, 0, b"", six)
    decoded = bencodepy.decode(body)
    assert decoded[b"peers6"] == six and decoded[b"peers"] == b""
    assert bencodepy.encode(decoded) == body


def test_failure_reason_in_utf8() -> None:
    assert bencodepy.decode(bencode.failure("kaputt: ü")) == {
        b"failure reason": "kaputt: ü".encode()
    }


def test_dict_peers_with_and_without_peer_id() -> None:
    body = bencode.announce_dict_peers(
        10, 5, 1, 1, 0, [("10.0.0.1", 6881, b"p" * 20), ("::1", 1, None)]
    )
    peers = bencodepy.decode(body)[b"peers"]
    assert peers == [
        {b"ip": b"10.0.0.1", b"port": 6881, b"peer id": b"p" * 20},
        {b"ip": b"::1", b"port": 1},
    ]


def test_scrape_files_sorted_by_hash() -> None:
    body = bencode.scrape([(b"b" * 20, 1, 2, 3), (b"a" * 20, 4, 5, 6)])
    assert bencodepy.encode(bencodepy.decode(body)) == body
    files = bencodepy.decode(body)[b"files"]
    assert files[b"a" * 20] == {b"complete": 4, b"downloaded": 5, b"incomplete": 6}
