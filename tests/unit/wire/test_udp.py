import struct

import pytest
import udp_client
from hypothesis import example, given
from hypothesis import strategies as st
from udp_client import AnnounceResponse, ConnectResponse, ErrorResponse, ScrapeResponse

from weightless.wire import udp
from weightless.wire.udp import (
    AnnounceRequest,
    ConnectRequest,
    ScrapeRequest,
    UdpParseError,
)

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)
counter = st.integers(0, 2**63 - 1)  # negative counters are refused (test_wire_counters.py)
hash20 = st.binary(min_size=20, max_size=20)

connects = st.builds(ConnectRequest, u32)
announces = st.builds(
    AnnounceRequest,
    connection_id=u64,
    transaction_id=u32,
    info_hash=hash20,
    peer_id=hash20,
    downloaded=counter,
    left=counter,
    uploaded=counter,
    event=st.integers(0, 3),
    ip=u32,
    key=u32,
    num_want=i32,
    port=st.integers(0, 65535),
    url_data=st.binary(max_size=1000),
)
scrapes = st.builds(
    ScrapeRequest, u64, u32, st.lists(hash20, min_size=1, max_size=udp.MAX_SCRAPE_HASHES)
)

CID = 0x1122334455667788
TID = 0xDEADBEEF
HASH = bytes(range(20))
PEER = b"-WL0001-abcdefghijkl"


def announce(**fields: object) -> bytes:
    args: dict = dict(
        connection_id=CID,
        transaction_id=TID,
        info_hash=HASH,
        peer_id=PEER,
        downloaded=1,
        left=2,
        uploaded=3,
        event=udp.EVENT_STARTED,
    )
    args.update(fields)
    return udp_client.encode_announce_request(**args)


# --- requests -----------------------------------------------------------------------------------


@given(st.one_of(connects, announces, scrapes))
def test_requests_round_trip(request: udp.Request) -> None:
    assert udp.parse_request(udp_client.encode_request(request)) == request


def test_connect_request_bytes_are_bep15() -> None:
    data = udp_client.encode_connect_request(TID)
    assert data == bytes.fromhex("0000041727101980" + "00000000" + "deadbeef")
    assert udp.parse_request(data) == ConnectRequest(TID)


def test_connect_tolerates_trailing_bytes() -> None:
    assert udp.parse_request(udp_client.encode_connect_request(7) + b"\x00" * 84) == ConnectRequest(
        7
    )


def test_announce_without_url_data_is_98_bytes() -> None:
    data = announce(num_want=-1, port=51413)
    assert len(data) == udp.ANNOUNCE_REQUEST_SIZE
    parsed = udp.parse_request(data)
    assert isinstance(parsed, AnnounceRequest)
    assert parsed.num_want == -1
    assert parsed.port == 51413
    assert parsed.url_data == b""
    assert parsed.info_hash == HASH and parsed.peer_id == PEER


@pytest.mark.parametrize("event", [4, 99, -1])
def test_unknown_event_reads_as_none(event: int) -> None:
    parsed = udp.parse_request(announce(event=event))
    assert isinstance(parsed, AnnounceRequest)
    assert parsed.event == udp.EVENT_NONE


def test_scrape_parses_hashes_in_order() -> None:
    hashes = [bytes([i]) * 20 for i in range(3)]
    parsed = udp.parse_request(udp_client.encode_scrape_request(CID, TID, hashes))
    assert parsed == ScrapeRequest(CID, TID, hashes)


# --- BEP 41 -------------------------------------------------------------------------------------


def test_long_url_data_splits_over_options_and_reassembles() -> None:
    path = b"/announce/" + b"u" * 64 + b"." + b"f" * 225  # 300 bytes
    assert len(path) == 300
    data = announce(url_data=path)
    options = data[udp.ANNOUNCE_REQUEST_SIZE :]
    assert options[:2] == b"\x02\xff"
    assert options[257:259] == bytes([2, 45])
    assert options[-1:] == b"\x00"
    parsed = udp.parse_request(data)
    assert isinstance(parsed, AnnounceRequest)
    assert parsed.url_data == path


def test_nop_options_are_skipped() -> None:
    options = b"\x01\x02\x05/anno\x01\x01\x02\x05unce/\x01\x00"
    parsed = udp.parse_request(announce() + options)
    assert isinstance(parsed, AnnounceRequest)
    assert parsed.url_data == b"/announce/"


def test_end_of_options_stops_parsing() -> None:
    parsed = udp.parse_request(announce() + b"\x02\x02/a\x00\x02\x02/b\x02")
    assert isinstance(parsed, AnnounceRequest)
    assert parsed.url_data == b"/a"


def test_unknown_option_stops_parsing_without_failing() -> None:
    parsed = udp.parse_request(announce() + b"\x02\x02/a\x7f\x03xyz\x02\x02/b")
    assert isinstance(parsed, AnnounceRequest)
    assert parsed.url_data == b"/a"


def test_only_padding_after_announce_gives_no_url_data() -> None:
    parsed = udp.parse_request(announce() + b"\x00" * 10)
    assert isinstance(parsed, AnnounceRequest)
    assert parsed.url_data == b""


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(b"\x02", id="type-without-length"),
        pytest.param(b"\x02\x05abc", id="length-past-end"),
        pytest.param(b"\x02\x02/a\x01\x02\xff", id="second-option-past-end"),
    ],
)
def test_malformed_options_are_sendable_errors(options: bytes) -> None:
    with pytest.raises(UdpParseError) as info:
        udp.parse_request(announce() + options)
    assert info.value.transaction_id == TID
    assert info.value.connection_id == CID


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 8, 15])
def test_short_packets_are_unsendable(size: int) -> None:
    with pytest.raises(UdpParseError) as info:
        udp.parse_request(udp_client.encode_connect_request(1)[:size])
    assert info.value.transaction_id is None
    assert info.value.connection_id is None


def test_connect_with_wrong_protocol_id() -> None:
    data = struct.pack(">QII", 0x41727101981, 0, TID)
    with pytest.raises(UdpParseError) as info:
        udp.parse_request(data)
    assert info.value.transaction_id == TID
    assert info.value.connection_id is None  # not an id: never answered


def test_unknown_action() -> None:
    with pytest.raises(UdpParseError) as info:
        udp.parse_request(struct.pack(">QII", CID, 9, TID))
    assert (info.value.transaction_id, info.value.connection_id) == (TID, CID)
    assert "action" in info.value.message


@pytest.mark.parametrize("size", [16, 50, 97])
def test_truncated_announce(size: int) -> None:
    with pytest.raises(UdpParseError) as info:
        udp.parse_request(announce()[:size])
    assert (info.value.transaction_id, info.value.connection_id) == (TID, CID)


@pytest.mark.parametrize(
    "hashes",
    [
        pytest.param(b"", id="none"),
        pytest.param(HASH[:19], id="partial-only"),
        pytest.param(HASH + HASH[:5], id="trailing-partial"),
        pytest.param(HASH * (udp.MAX_SCRAPE_HASHES + 1), id="too-many"),
    ],
)
def test_bad_scrape(hashes: bytes) -> None:
    with pytest.raises(UdpParseError) as info:
        udp.parse_request(struct.pack(">QII", CID, udp.ACTION_SCRAPE, TID) + hashes)
    assert (info.value.transaction_id, info.value.connection_id) == (TID, CID)


def test_scrape_of_max_hashes_is_accepted() -> None:
    hashes = [HASH] * udp.MAX_SCRAPE_HASHES
    parsed = udp.parse_request(udp_client.encode_scrape_request(CID, TID, hashes))
    assert isinstance(parsed, ScrapeRequest)
    assert len(parsed.info_hashes) == udp.MAX_SCRAPE_HASHES


@given(st.binary(max_size=2000))
@example(b"")
@example(struct.pack(">QII", udp.PROTOCOL_ID, 0, 1))
def test_random_bytes_only_raise_parse_errors(data: bytes) -> None:
    try:
        parsed = udp.parse_request(data)
    except UdpParseError as error:
        assert error.message
    else:
        assert isinstance(parsed, (ConnectRequest, AnnounceRequest, ScrapeRequest))


@given(
    st.integers(0, 4),
    st.binary(min_size=0, max_size=200),
    st.sampled_from([0, 1, 2, 3, 0x7F, 0xFF]),
)
def test_random_bodies_after_a_valid_header_only_raise_parse_errors(
    action: int, body: bytes, option: int
) -> None:
    for data in (
        struct.pack(">QII", CID, action, TID) + body,
        announce() + bytes([option]) + body,
    ):
        try:
            parsed = udp.parse_request(data)
        except UdpParseError as error:
            assert error.transaction_id == TID
        else:
            assert isinstance(parsed, (ConnectRequest, AnnounceRequest, ScrapeRequest))


def test_error_reply_needs_a_transaction_id_and_a_valid_connection() -> None:
    with pytest.raises(UdpParseError) as short:
        udp.parse_request(b"\x00" * 10)
    assert udp.error_reply(short.value, lambda cid: True) is None

    with pytest.raises(UdpParseError) as wrong_protocol:
        udp.parse_request(struct.pack(">QII", 1, 0, TID))
    assert udp.error_reply(wrong_protocol.value, lambda cid: True) is None

    with pytest.raises(UdpParseError) as truncated:
        udp.parse_request(announce()[:60])
    assert udp.error_reply(truncated.value, lambda cid: False) is None
    seen = []

    def connection_ok(cid: int) -> bool:
        seen.append(cid)
        return True

    reply = udp.error_reply(truncated.value, connection_ok)
    assert seen == [CID]
    assert reply is not None
    assert udp_client.parse_response(reply) == ErrorResponse(TID, truncated.value.message)


# --- responses ----------------------------------------------------------------------------------


def test_connect_response_bytes() -> None:
    data = udp.encode_connect_response(TID, CID)
    assert data == bytes.fromhex("00000000deadbeef1122334455667788")
    assert udp_client.parse_response(data) == ConnectResponse(TID, CID)


@given(u32, u64)
def test_connect_response_round_trip(tid: int, cid: int) -> None:
    assert udp_client.parse_response(udp.encode_connect_response(tid, cid)) == ConnectResponse(
        tid, cid
    )


@given(
    u32,
    st.integers(0, 2**31 - 1),
    st.integers(0, 2**31 - 1),
    st.integers(0, 2**31 - 1),
    st.sampled_from([6, 18]).flatmap(
        lambda size: st.lists(st.binary(min_size=size, max_size=size), max_size=80)
    ),
)
def test_announce_response_round_trip(
    tid: int, interval: int, leechers: int, seeders: int, peers: list[bytes]
) -> None:
    packed = b"".join(peers)
    data = udp.encode_announce_response(tid, interval, leechers, seeders, packed)
    assert len(data) == 20 + len(packed)
    assert udp_client.parse_response(data) == AnnounceResponse(
        tid, interval, leechers, seeders, packed
    )


@given(u32, st.lists(st.tuples(*[st.integers(0, 2**31 - 1)] * 3), max_size=udp.MAX_SCRAPE_HASHES))
def test_scrape_response_round_trip(tid: int, stats: list[tuple[int, int, int]]) -> None:
    data = udp.encode_scrape_response(tid, stats)
    assert len(data) == 8 + 12 * len(stats)
    assert udp_client.parse_response(data) == ScrapeResponse(tid, stats)


def test_scrape_response_layout() -> None:
    data = udp.encode_scrape_response(1, [(5, 7, 9)])
    assert data == struct.pack(">IIiii", 2, 1, 5, 7, 9)


@given(u32, st.text(max_size=200))
def test_error_round_trip(tid: int, message: str) -> None:
    data = udp.encode_error(tid, message)
    assert data[:4] == b"\x00\x00\x00\x03"
    parsed = udp_client.parse_response(data)
    assert isinstance(parsed, ErrorResponse)
    assert parsed.transaction_id == tid
    assert parsed.message == message.encode("utf-8", "replace").decode("utf-8", "replace")


@pytest.mark.parametrize(
    "data",
    [
        b"\x00" * 7,
        struct.pack(">II", 0, 1) + b"\x00" * 4,
        struct.pack(">II", 1, 1) + b"\x00" * 11,
        struct.pack(">II", 2, 1) + b"\x00" * 13,
        struct.pack(">II", 7, 1),
    ],
)
def test_bad_responses(data: bytes) -> None:
    with pytest.raises(UdpParseError):
        udp_client.parse_response(data)


@given(st.binary(max_size=300))
def test_random_responses_only_raise_parse_errors(data: bytes) -> None:
    try:
        parsed = udp_client.parse_response(data)
    except UdpParseError as error:
        assert error.message
    else:
        assert isinstance(
            parsed, (ConnectResponse, AnnounceResponse, ScrapeResponse, ErrorResponse)
        )


def test_decode_peers() -> None:
    v4 = bytes([10, 0, 0, 1]) + (6881).to_bytes(2, "big") + bytes([127, 0, 0, 2]) + b"\x00\x50"
    assert udp_client.decode_peers(v4) == [("10.0.0.1", 6881), ("127.0.0.2", 80)]
    v6 = bytes(15) + b"\x01" + (51413).to_bytes(2, "big")
    assert udp_client.decode_peers(v6, ipv6=True) == [("::1", 51413)]
    with pytest.raises(UdpParseError):
        udp_client.decode_peers(v4[:-1])


def test_peer_caps_keep_replies_in_one_datagram() -> None:
    def reply_size(peers: int, entry: int) -> int:
        return len(udp.encode_announce_response(1, 1800, 0, 0, b"\x00" * entry * peers))

    assert reply_size(udp.MAX_REPLY_PEERS_V4, 6) <= 1472 < reply_size(udp.MAX_REPLY_PEERS_V4 + 1, 6)
    assert (
        reply_size(udp.MAX_REPLY_PEERS_V6, 18) <= 1452 < reply_size(udp.MAX_REPLY_PEERS_V6 + 1, 18)
    )


def test_encoders_refuse_wrong_hash_sizes() -> None:
    with pytest.raises(ValueError):
        announce(info_hash=b"x" * 19)
    with pytest.raises(ValueError):
        udp_client.encode_scrape_request(CID, TID, [b"x" * 21])
