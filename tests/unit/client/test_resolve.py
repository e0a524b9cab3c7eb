"""What `weightless get WHAT` names (weightless.client.resolve): a v2 or v1 hash, a magnet
link, PUBLISHER/NAME[@VERSION] or NAME[@VERSION], resolved through a registry played in
memory."""

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


def repo(served: Served) -> dict[str, str]:
    """Three versions of acme/llm (v1 oldest), one of other/llm, one of acme/tools: their
    hashes by label."""
    made = {}
    for n, (publisher, name, version, when) in enumerate(
        [
            ("acme", "llm", "v1", "2026-01-01T00:00:00Z"),
            ("acme", "llm", "v3", "2026-03-01T00:00:00Z"),
            ("acme", "llm", "v2", "2026-02-01T00:00:00Z"),
            ("other", "llm-x", "v9", "2026-04-01T00:00:00Z"),
            ("acme", "tools", "v1", "2026-05-01T00:00:00Z"),
        ]
    ):
        key = f"{n + 1:x}0" * 32
        served.add(
            entry(key, None, name=name, publisher=publisher, version=version, created_at=when)
        )
        made[f"{publisher}/{name}@{version}"] = key
    return made


def test_publisher_and_name_give_the_newest_version(served: Served, registry: Registry) -> None:
    made = repo(served)
    assert resolve(registry, "acme/llm").key == made["acme/llm@v3"]
    assert resolve(registry, "acme/tools").key == made["acme/tools@v1"]
    asked = [dict(r.url.params) for r in served.requests]
    assert asked[0] == {"name": "llm", "publisher": "acme", "sort": "created_at", "limit": "100"}


def test_at_version_gives_that_version(served: Served, registry: Registry) -> None:
    made = repo(served)
    assert resolve(registry, "acme/llm@v1").key == made["acme/llm@v1"]
    assert resolve(registry, "acme/llm@v2").key == made["acme/llm@v2"]
    assert resolve(registry, "llm@v1").key == made["acme/llm@v1"]


def test_at_a_hash_prefix_of_eight_hex_or_more(served: Served, registry: Registry) -> None:
    made = repo(served)
    v2 = made["acme/llm@v2"]
    assert resolve(registry, f"acme/llm@{v2[:8]}").key == v2
    assert resolve(registry, f"acme/llm@{v2[:8].upper()}").key == v2
    with pytest.raises(ClientError):
        resolve(registry, f"acme/llm@{v2[:7]}")  # too short to be a prefix; no such label


def test_a_name_alone_of_one_publisher_gives_its_newest(served: Served, registry: Registry) -> None:
    made = repo(served)
    assert resolve(registry, "llm").key == made["acme/llm@v3"]


def test_a_name_of_several_publishers_lists_them(served: Served, registry: Registry) -> None:
    repo(served)
    served.add(
        entry("99" * 32, None, name="llm", publisher="rival", created_at="2027-01-01T00:00:00Z")
    )
    with pytest.raises(ClientError) as e:
        resolve(registry, "llm")
    message = str(e.value)
    assert "acme/llm" in message and "rival/llm" in message and "\n" not in message
    assert resolve(registry, "rival/llm").key == "99" * 32


def test_unknown_repositories_and_versions(served: Served, registry: Registry) -> None:
    repo(served)
    for what in ("acme/nothing", "nobody/llm", "acme/llm@v7", "acme/llm@deadbeef"):
        with pytest.raises(ClientError) as e:
            resolve(registry, what)
        assert "no registry entry" in str(e.value) and TRACKER.url in str(e.value)


def test_a_whole_name_with_a_slash_or_at_still_matches(served: Served, registry: Registry) -> None:
    served.add(entry("77" * 32, None, name="meta/llama@8b"))
    assert resolve(registry, "meta/llama@8b").key == "77" * 32


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


def crowd(served: Served, publisher: str | None, count: int, seed: int, day: str) -> None:
    """``count`` entries named llm of ``publisher``, all registered on ``day``."""
    for n in range(count):
        served.add(
            entry(
                f"{seed + n:064x}",
                None,
                name="llm",
                publisher=publisher,
                created_at=f"{day}T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
            )
        )


@pytest.mark.parametrize("rival", ["rival", None])
def test_a_name_alone_is_not_taken_by_whoever_registered_the_most_lately(
    served: Served, registry: Registry, rival: str | None
) -> None:
    # acme's llm, then 100 newer entries of llm by another publisher (or none): the newest
    # hundred are all the rival's, but the name is still of two publishers
    repo(served)
    crowd(served, rival, 100, 1 << 200, "2027-01-01")
    with pytest.raises(ClientError) as e:
        resolve(registry, "llm")
    assert "more than 100 registry entries are named 'llm'" in str(e.value)
    with pytest.raises(ClientError):
        resolve(registry, "llm@20202020")  # a hash prefix may be of an entry left out
    assert resolve(registry, "llm@v1").key == "10" * 32  # a label: all are in its search
    crowd(served, rival, 100, 1 << 201, "2027-02-01")
    for n in range(100):
        served.entries[f"{(1 << 201) + n:064x}"]["version"] = "v1"
    with pytest.raises(ClientError):
        resolve(registry, "llm@v1")  # now the label's search is full of the rival's
    assert resolve(registry, "acme/llm").key == "20" * 32


def test_a_name_alone_of_one_publisher_with_more_than_a_page(
    served: Served, registry: Registry
) -> None:
    repo(served)
    crowd(served, "acme", 150, 1 << 200, "2027-01-01")
    assert resolve(registry, "llm").key == f"{(1 << 200) + 149:064x}"
    last = dict(served.requests[-1].url.params)
    assert last == {"name": "llm", "publisher": "acme", "sort": "created_at", "limit": "1"}
