import hashlib

from weightless.tracker.catalog import Catalog, CatalogEntry

V2 = hashlib.sha256(b"x").hexdigest()
V1 = hashlib.sha1(b"x").hexdigest()


def test_hybrid_entry_links_v1_and_truncated_v2_to_one_swarm() -> None:
    catalog = Catalog()
    entry = CatalogEntry(V2, V1, 0)
    catalog.add(entry)
    key_v1, found_v1 = catalog.by_wire[bytes.fromhex(V1)]
    key_v2, found_v2 = catalog.by_wire[bytes.fromhex(V2)[:20]]
    assert key_v1 == key_v2 == bytes.fromhex(V2)[:20]
    assert found_v1 is found_v2 is entry


def test_lookup_by_either_hash_in_any_case() -> None:
    catalog = Catalog()
    entry = CatalogEntry(V2, V1, 0)
    catalog.add(entry)
    assert catalog.lookup(V2.upper()) is entry
    assert catalog.lookup(V1.upper()) is entry
    assert catalog.lookup("0" * 40) is None


def test_v1_only_entry() -> None:
    catalog = Catalog()
    entry = CatalogEntry(V1, None, 0)
    catalog.add(entry)
    assert catalog.by_wire[bytes.fromhex(V1)] == (bytes.fromhex(V1), entry)


def test_re_registering_keeps_completions_and_drops_old_alias() -> None:
    catalog = Catalog()
    catalog.add(CatalogEntry(V2, V1, 5))
    catalog.add(CatalogEntry(V2, None, 0))
    assert catalog.entries[V2].completions == 5
    assert bytes.fromhex(V1) not in catalog.by_wire


def test_remove_and_block() -> None:
    catalog = Catalog()
    entry = CatalogEntry(V2, V1, 0)
    catalog.add(entry)
    catalog.remove(entry)
    catalog.block([V2, V1])
    assert not catalog.by_wire and not catalog.entries
    assert catalog.blocked == {bytes.fromhex(V2)[:20], bytes.fromhex(V1)}
    catalog.unblock([V1])
    assert catalog.blocked == {bytes.fromhex(V2)[:20]}


def test_load_replaces_everything() -> None:
    catalog = Catalog()
    catalog.add(CatalogEntry(V1, None, 0))
    catalog.load([CatalogEntry(V2, None, 1)], [V1])
    assert list(catalog.entries) == [V2]
    assert catalog.blocked == {bytes.fromhex(V1)}
