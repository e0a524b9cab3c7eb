import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightless.netaddr import normalize_ip, pack_ip
from weightless.wire.connid import ConnectionIdValidator


def source(host: str) -> bytes:
    """What the UDP adapter binds an id to: the client's packed IP, never its port (BEP 15,
    aquatic, opentracker: libtorrent reuses one id for every session of a process)."""
    return pack_ip(normalize_ip(host))


SECRET = b"m" * 32
ADDR = source("192.0.2.7")
NOW = 1_700_000_000.25

times = st.floats(0, 2**33, allow_nan=False, allow_infinity=False)
addrs = st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16))


def validator(**kwargs: float) -> ConnectionIdValidator:
    return ConnectionIdValidator(SECRET, **kwargs)


@given(times, addrs, st.floats(0, 120))
def test_valid_for_the_same_address_within_max_age(now: float, addr: bytes, later: float) -> None:
    v = validator(max_age=120)
    cid = v.make(addr, now)
    assert 0 <= cid < 2**64
    assert v.valid(cid, addr, now)
    assert v.valid(cid, addr, now + later)


def test_invalid_for_another_ip() -> None:
    v = validator()
    cid = v.make(ADDR, NOW)
    assert not v.valid(cid, source("192.0.2.8"), NOW)
    assert not v.valid(cid, source("2001:db8::7"), NOW)
    assert not v.valid(cid, source("::ffff:192.0.2.8"), NOW)
    # the IPv4-mapped form of the same client is the same client (a dual-stack socket)
    assert v.valid(cid, source("::ffff:192.0.2.7"), NOW)
    v6 = v.make(source("2001:db8::7"), NOW)
    assert v.valid(v6, source("2001:db8:0:0::7"), NOW)
    assert not v.valid(v6, source("2001:db8::8"), NOW)


def test_invalid_after_max_age() -> None:
    v = validator(max_age=120)
    cid = v.make(ADDR, 1000.0)
    assert v.valid(cid, ADDR, 1120.9)
    assert not v.valid(cid, ADDR, 1121.0)
    assert not v.valid(cid, ADDR, 1000.0 + 86400)


def test_max_age_is_configurable() -> None:
    v = validator(max_age=3600)
    cid = v.make(ADDR, NOW)
    assert v.valid(cid, ADDR, NOW + 3000)
    assert not v.valid(cid, ADDR, NOW + 3700)


def test_ids_from_the_future_beyond_skew_are_refused() -> None:
    v = validator(skew=5)
    cid = v.make(ADDR, NOW)
    assert v.valid(cid, ADDR, NOW - 5)
    assert not v.valid(cid, ADDR, NOW - 6)
    assert not v.valid(cid, ADDR, NOW - 86400)


@given(st.integers(0, 63))
def test_tampered_ids_are_refused(bit: int) -> None:
    v = validator()
    cid = v.make(ADDR, NOW)
    assert not v.valid(cid ^ (1 << bit), ADDR, NOW + 1)


@pytest.mark.parametrize("cid", [-1, 2**64, 2**80])
def test_out_of_range_ids_are_refused(cid: int) -> None:
    assert not validator().valid(cid, ADDR, NOW)


@given(st.integers(0, 2**31), st.floats(0, 120))
def test_valid_across_a_key_rotation(start: int, later: float) -> None:
    v = validator(max_age=120, rotate=60)
    made = start * 60 + 59.5  # the last second of an epoch
    cid = v.make(ADDR, made)
    assert v.valid(cid, ADDR, made + later)
    assert not v.valid(cid, ADDR, made + 122)


def test_keys_really_rotate() -> None:
    # The same address at the same offset into two epochs gets unrelated MACs.
    v = validator(rotate=60)
    a = v.make(ADDR, 60.0) & 0xFFFFFFFF
    b = v.make(ADDR, 120.0) & 0xFFFFFFFF
    assert a != b


def test_timestamp_wraparound() -> None:
    v = validator(max_age=120)
    cid = v.make(ADDR, 2**32 - 10)
    assert v.valid(cid, ADDR, 2**32 + 10)
    assert not v.valid(cid, ADDR, 2**32 + 200)


@given(times, addrs, st.floats(0, 100))
def test_validators_sharing_a_secret_agree(now: float, addr: bytes, later: float) -> None:
    # Workers are separate processes: each builds its own validator from the master secret.
    one = ConnectionIdValidator(bytes(SECRET), max_age=120, rotate=60)
    other = ConnectionIdValidator(bytes(SECRET), max_age=120, rotate=60)
    assert one.make(addr, now) == other.make(addr, now)
    assert other.valid(one.make(addr, now), addr, now + later)


def test_another_secret_disagrees() -> None:
    cid = validator().make(ADDR, NOW)
    assert not ConnectionIdValidator(b"n" * 32).valid(cid, ADDR, NOW)


def test_key_cache_stays_small() -> None:
    v = validator(max_age=120, rotate=1)
    for second in range(2000):
        assert v.valid(v.make(ADDR, float(second)), ADDR, second + 1.0)
    assert len(v._keys) <= 123 + 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": b""},
        {"secret": SECRET, "max_age": 0},
        {"secret": SECRET, "rotate": 0.5},
        {"secret": SECRET, "skew": -1},
    ],
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ConnectionIdValidator(**kwargs)
