"""What `weightless get WHAT` names (weightless.client.resolve): a v2 or v1 hash, a magnet
link or an exact name, resolved through a registry played in memory."""

from __future__ import annotations

import httpx
import pytest

from weightless.client.errors import ClientError
from weightless.client.registry import Registry
from weightless.client.resolve import Target, resolve
from weightless.client.trackers import Tracker

from .kit import H40, H64, Served, entry, serve

TRACKER = Tracker("http://t.example:8080")
V1_ONLY = "12" * 20
OTHER64 = "ef" * 32
OTHER40 = "34" * 20


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Served:
    served = serve(monkeypatch)
    served.add(entry(H64, H40, name="hybrid", publisher="acme"))
    served.add(entry(V1_ONLY, None, name="old"))
    served.add(entry(OTHER64, None, name="v2only"))
    return served


@pytest.fixture
def registry(served: Served) -> Registry:
    return Registry(TRACKER)


def magnet(v1: str | None = None, v2: str | None = None, name: str | None = None) -> str:
    parts = []
    if v1:
        parts.append(f"xt=urn:btih:{v1}")
    if v2:
        parts.append(f"xt=urn:btmh:1220{v2}")
    if name:
        parts.append(f"dn={name}")
    return "magnet:?" + "&".join(parts)


def test_a_v2_hash_any_case_and_spaces(served: Served, registry: Registry) -> None:
    target = resolve(registry, f"  {H64.upper()}\n")
    assert target == Target(H64, H40, served.entries[H64], "hybrid")
    assert target.key == H64
    assert served.requests[0].url.params["info_hash"] == H64  # asked in lowercase


def test_a_v1_hash_of_a_hybrid_entry_gives_both_hashes(served: Served, registry: Registry) -> None:
    target = resolve(registry, H40)
    assert (target.info_hash, target.v1_info_hash, target.key) == (H64, H40, H64)


def test_a_v1_only_entry(registry: Registry) -> None:
    target = resolve(registry, V1_ONLY)
    assert (target.info_hash, target.v1_info_hash, target.name) == (None, V1_ONLY, "old")
    assert target.key == V1_ONLY


def test_an_unknown_hash(registry: Registry) -> None:
    with pytest.raises(ClientError) as e:
        resolve(registry, "99" * 32)
    assert str(e.value) == (
        f"no registry entry at http://t.example:8080 has the info hash {'99' * 32}"
    )


def test_an_exact_name(served: Served, registry: Registry) -> None:
    served.add(entry("56" * 32, None, name="hybrid-2"))  # a substring match is not the name
    assert resolve(registry, "hybrid").key == H64


def test_an_unknown_name_says_names_match_exactly(registry: Registry) -> None:
    with pytest.raises(ClientError) as e:
        resolve(registry, "hyb")
    assert "is named 'hyb'" in str(e.value) and "`weightless search`" in str(e.value)
    assert "\n" not in str(e.value)


def test_several_entries_of_one_name_list_their_hashes(served: Served, registry: Registry) -> None:
    for i in range(7):
        served.add(entry(f"{i:064x}", None, name="dup", publisher="p" if i == 0 else None))
    with pytest.raises(ClientError) as e:
        resolve(registry, "dup")
    message = str(e.value)
    assert message.startswith("7 registry entries are named 'dup'; give one's info hash: ")
    assert f"{0:064x} (p), {1:064x}, " in message
    assert f"{4:064x} and 2 more" in message and f"{5:064x}" not in message


def test_a_magnet_of_a_registered_entry_uses_the_registry(
    served: Served, registry: Registry
) -> None:
    target = resolve(registry, magnet(H40, H64, "whatever"))
    assert target == Target(H64, H40, served.entries[H64], "hybrid")
    assert served.requests[0].url.params["info_hash"] == H64  # the v2 hash first


def test_a_magnet_with_only_its_v1_hash_finds_the_hybrid_entry(registry: Registry) -> None:
    assert resolve(registry, magnet(H40)).info_hash == H64


def test_a_magnet_whose_hashes_belong_to_two_entries(registry: Registry) -> None:
    with pytest.raises(ClientError) as e:
        resolve(registry, magnet(V1_ONLY, H64))
    assert str(e.value) == "the magnet link's v1 and v2 hashes belong to different entries"


def test_an_unregistered_magnet_is_fetched_from_peers(registry: Registry) -> None:
    target = resolve(registry, magnet(OTHER40, "77" * 32, "from-peers"))
    assert target == Target("77" * 32, OTHER40, None, "from-peers")
    assert target.key == "77" * 32
    assert resolve(registry, magnet(OTHER40)) == Target(None, OTHER40, None, None)


def test_a_bad_magnet_link(registry: Registry) -> None:
    with pytest.raises(ClientError) as e:
        resolve(registry, "magnet:?xt=urn:btih:nothex")
    assert str(e.value).startswith("bad magnet link: ")


# -- hostile answers: a registry that sends the wrong types still gives one clear line, never
# a Python exception that the `weightless` command would show as a traceback.


@pytest.mark.parametrize(
    "body", [[1, 2], "entry", {"name": "no hash"}, {"info_hash": 5}, None, 7], ids=repr
)
def test_a_lookup_answered_with_the_wrong_types(
    served: Served, registry: Registry, body: object
) -> None:
    served.override = lambda request: httpx.Response(200, json=body)
    with pytest.raises(ClientError):
        resolve(registry, H64)


def test_a_search_answered_with_entries_that_are_not_objects(
    served: Served, registry: Registry
) -> None:
    served.override = lambda request: httpx.Response(
        200, json=["hybrid"], headers={"X-Total-Count": "1"}
    )
    with pytest.raises(ClientError):
        resolve(registry, "hybrid")
