"""What a request pins: a v2 or v1 hash, or a magnet link's hashes, which the registry's entry,
its .torrent and the peers' metadata must all have."""

from __future__ import annotations

import pytest

from weightless.client.errors import ClientError
from weightless.client.pinning import Pins, pins_of

V2 = "ab" * 32
V1 = "cd" * 20
OTHER2 = "01" * 32
OTHER1 = "02" * 20


def test_what_each_request_pins() -> None:
    assert pins_of(V2) == Pins(V2, None)
    assert pins_of(f" {V1.upper()} ") == Pins(None, V1)
    assert pins_of(f"magnet:?xt=urn:btih:{V1}&xt=urn:btmh:1220{V2}&dn=x") == Pins(V2, V1)
    assert pins_of(f"magnet:?xt=urn:btih:{V1}") == Pins(None, V1)
    assert not pins_of("org/model@1.0") and not pins_of("ab" * 31)
    with pytest.raises(ClientError, match="bad magnet link"):
        pins_of("magnet:?xt=urn:btih:zz")


@pytest.mark.parametrize(
    ("pins", "v2", "v1", "ok"),
    [
        (Pins(V2, None), V2, V1, True),
        (Pins(V2, None), V2, None, True),
        (Pins(V2, None), OTHER2, V1, False),  # another torrent with the same v1 is no excuse
        (Pins(V2, None), None, V1, False),
        (Pins(None, V1), V2, V1, True),
        (Pins(None, V1), OTHER2, OTHER1, False),
        (Pins(None, V1), V2, None, False),
        (Pins(V2, V1), V2, OTHER1, False),
        (Pins(V2, V1), V2, V1, True),
        (Pins(None, None), OTHER2, OTHER1, True),  # a name pins nothing by itself
    ],
)
def test_check(pins: Pins, v2: str | None, v1: str | None, ok: bool) -> None:
    if ok:
        pins.check(v2, v1, "it")
    else:
        with pytest.raises(ClientError) as e:
            pins.check(v2, v1, "the registry's .torrent for x")
        assert str(e.value).startswith("refusing the registry's .torrent for x: its v")
        assert "\n" not in str(e.value)
