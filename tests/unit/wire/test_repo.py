"""``PUBLISHER/NAME[@VERSION]`` and ``NAME[@VERSION]``: taken apart, the searches that find the
candidates, and the one entry chosen (newest, version label or hash prefix, one publisher)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from weightless.wire.repo import (
    Ambiguous,
    NoMatch,
    Page,
    Reference,
    choose,
    confirm,
    confirmations,
    parse_reference,
    searches,
)


def entry(
    name: str, publisher: str | None, version: str | None, day: int, seed: str
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "info_hash": hashlib.sha256(seed.encode()).hexdigest(),
        "v1_info_hash": hashlib.sha1(seed.encode()).hexdigest(),
        "name": name,
        "created_at": f"2026-12-{day:02d}T10:00:00Z",
    }
    if publisher is not None:
        out["publisher"] = publisher
    if version is not None:
        out["version"] = version
    return out


OLD = entry("llama", "meta", "v1", 1, "old")
NEW = entry("llama", "meta", "v2", 9, "new")
MID = entry("llama", "meta", None, 5, "mid")
OTHER = entry("llama", "someone", "v1", 3, "other")
WHOLE = entry("meta/llama@v1", None, None, 2, "whole")


@pytest.mark.parametrize(
    ("what", "ref"),
    [
        ("meta/llama", Reference("meta", "llama", None, "meta/llama")),
        ("meta/llama@v1.0", Reference("meta", "llama", "v1.0", "meta/llama@v1.0")),
        ("llama@v1", Reference(None, "llama", "v1", "llama@v1")),
        ("llama", Reference(None, "llama", None, "llama")),
        ("org/a/b", Reference("org", "a/b", None, "org/a/b")),
        ("me@home.org/x", Reference("me@home.org", "x", None, "me@home.org/x")),
        ("llama@", Reference(None, "llama@", None, "llama@")),
        ("@v1", Reference(None, "@v1", None, "@v1")),
        ("/llama", Reference(None, "/llama", None, "/llama")),
        ("a@b c", Reference(None, "a@b c", None, "a@b c")),
    ],
)
def test_what_is_taken_apart(what: str, ref: Reference) -> None:
    assert parse_reference(what) == ref


def test_the_searches_cover_the_repository_the_version_and_the_whole_name() -> None:
    found = searches(parse_reference("meta/llama@v1"))
    assert [(s.get("publisher"), s["name"], s.get("version")) for s in found] == [
        ("meta", "llama", None),
        ("meta", "llama", "v1"),
        (None, "meta/llama@v1", None),
    ]
    assert all(s["sort"] == "created_at" for s in found)
    assert searches(parse_reference("llama")) == [
        {"name": "llama", "sort": "created_at", "limit": "100"}
    ]


def test_a_repository_names_its_newest_entry() -> None:
    assert choose(parse_reference("meta/llama"), [OLD, NEW, MID, OTHER]) == NEW
    assert choose(parse_reference("someone/llama"), [OLD, NEW, MID, OTHER]) == OTHER


def test_of_two_entries_of_the_same_second_the_first_the_search_listed_wins() -> None:
    # the search lists newest first to the microsecond; created_at shows only the second
    first, second = entry("llama", "meta", "b", 9, "zzz"), entry("llama", "meta", "a", 9, "aaa")
    for order in ([first, second], [second, first]):
        assert choose(parse_reference("meta/llama"), order) is order[0]


def test_a_version_is_a_label_or_a_hash_prefix_of_8_hex_or_more() -> None:
    every = [OLD, NEW, MID, OTHER]
    assert choose(parse_reference("meta/llama@v1"), every) == OLD
    assert choose(parse_reference(f"meta/llama@{MID['info_hash'][:8]}"), every) == MID
    assert choose(parse_reference(f"meta/llama@{MID['v1_info_hash'][:12].upper()}"), every) == MID
    with pytest.raises(NoMatch, match="at version"):
        choose(parse_reference(f"meta/llama@{MID['info_hash'][:7]}"), every)
    with pytest.raises(NoMatch):
        choose(parse_reference("meta/llama@v3"), every)


def test_a_name_alone_needs_one_publisher() -> None:
    assert choose(parse_reference("llama@v2"), [OLD, NEW]) == NEW
    assert choose(parse_reference("llama"), [OLD, NEW, MID]) == NEW
    with pytest.raises(Ambiguous, match="meta/llama, someone/llama"):
        choose(parse_reference("llama"), [OLD, NEW, OTHER])
    # the version narrows first: only meta has v2
    assert choose(parse_reference("llama@v2"), [OLD, NEW, OTHER]) == NEW
    with pytest.raises(NoMatch, match="'nothing'"):
        choose(parse_reference("nothing"), [OLD])


def test_an_entry_whose_whole_name_is_what_still_matches() -> None:
    assert choose(parse_reference("meta/llama@v1"), [WHOLE]) == WHOLE
    # entries of another name never match, whatever their publisher
    assert (
        choose(parse_reference("meta/llama"), [OLD, entry("llama-2", "meta", None, 30, "x")]) == OLD
    )


def test_a_search_that_left_entries_out_is_confirmed_by_a_count() -> None:
    ref = parse_reference("llama")
    (base,) = searches(ref)
    full = Page(base, 3, 3)
    assert confirmations(ref, NEW, [full]) == []  # every match was listed
    cut = Page(base, 250, 100)
    (wanted,) = confirmations(ref, NEW, [cut])
    assert wanted.params == {**base, "publisher": "meta", "limit": "1"}
    confirm(ref, wanted, 250)  # all 250 are meta's
    with pytest.raises(Ambiguous, match="more than 100 registry entries are named 'llama'"):
        confirm(ref, wanted, 249)
    with pytest.raises(Ambiguous):
        confirmations(ref, WHOLE, [cut])  # no publisher: no count can say all are its
    # PUBLISHER/NAME lists only that publisher's entries: nothing to confirm
    (repo_search, *_) = searches(parse_reference("meta/llama"))
    assert confirmations(parse_reference("meta/llama"), NEW, [Page(repo_search, 250, 100)]) == []
    # a label's entries are all in the search by version; a hex VERSION may be a hash prefix
    labelled = parse_reference("llama@v2")
    by_name, by_version, _ = searches(labelled)
    assert confirmations(labelled, NEW, [Page(by_name, 250, 100), Page(by_version, 1, 1)]) == []
    assert len(confirmations(labelled, NEW, [Page(by_version, 101, 100)])) == 1
    hexed = parse_reference("llama@deadbeef")
    assert len(confirmations(hexed, NEW, [Page(searches(hexed)[0], 250, 100)])) == 1


def test_a_repository_wins_over_entries_whose_whole_name_is_what() -> None:
    # anyone may register an entry named "meta/llama": it must not make meta/llama ambiguous
    squat = entry("meta/llama", "evil", None, 30, "squat")
    nameless = entry("meta/llama", None, "v1", 31, "nameless")
    assert choose(parse_reference("meta/llama"), [OLD, NEW, squat, nameless]) == NEW
    squat_v1 = entry("meta/llama@v1", "evil", None, 32, "squat-v1")
    assert choose(parse_reference("meta/llama@v1"), [OLD, NEW, squat_v1, WHOLE]) == OLD
    # without a repository entry of that version, whole names are all there is
    assert choose(parse_reference("meta/llama"), [squat]) == squat
    with pytest.raises(Ambiguous):
        choose(
            parse_reference("meta/llama@v3"),
            [OLD, NEW, squat_v1 | {"name": "meta/llama@v3"}, WHOLE | {"name": "meta/llama@v3"}],
        )
