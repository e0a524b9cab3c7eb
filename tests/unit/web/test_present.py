"""What the pages compute for people: sizes with units, file trees, magnet links (the spec's
hybrid one and the v1-only one for rtorrent), the `weightless get` command."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from weightless.torrent.magnet import entry_magnet, magnet_uri
from weightless.web.present import (
    base_url,
    file_tree,
    get_command,
    tag_list,
    v1_magnet,
)

V2 = "ab" * 32
V1 = "cd" * 20
ANNOUNCE = "http://tracker.example:8080/announce"


def test_file_tree_sums_sizes_and_counts_per_folder() -> None:
    tree = file_tree(
        [
            {"path": "train/shard-1.bin", "length": 100},
            {"path": "train/deep/shard-2.bin", "length": 50},
            {"path": "README.md", "length": 7},
            {"path": "Train2/a", "length": 1},
        ]
    )
    assert (tree.size, tree.count) == (158, 4)
    assert [f.name for f in tree.sorted_folders()] == ["train", "Train2"]
    train = tree.folders["train"]
    assert (train.size, train.count, train.files) == (150, 2, [("shard-1.bin", 100)])
    assert train.folders["deep"].files == [("shard-2.bin", 50)]
    assert tree.sorted_files() == [("README.md", 7)]


def test_single_file_torrent_is_one_file_at_the_top() -> None:
    tree = file_tree([{"path": "weights.safetensors", "length": 5}])
    assert (tree.folders, tree.files) == ({}, [("weights.safetensors", 5)])


def magnet(entry: dict[str, str], announce: str) -> str:
    """The entry's ``magnet`` as the registry gives it to the page."""
    return entry_magnet(entry["name"], entry["info_hash"], entry.get("v1_info_hash"), [announce])


def _xts(link: str) -> list[str]:
    return parse_qs(urlsplit(link).query)["xt"]


def test_hybrid_magnet_is_the_spec_s() -> None:
    entry = {"info_hash": V2, "v1_info_hash": V1, "name": "Llama weights & co/v4"}
    link = magnet(entry, ANNOUNCE)
    assert link.startswith(f"magnet:?xt=urn:btih:{V1}&xt=urn:btmh:1220{V2}&dn=")
    query = parse_qs(urlsplit(link).query)
    assert query["dn"] == ["Llama weights & co/v4"]
    assert query["tr"] == [ANNOUNCE]
    # the v1-only link, for clients that refuse urn:btmh (rtorrent)
    old = v1_magnet(entry, ANNOUNCE)
    assert old is not None and "btmh" not in old
    assert _xts(old) == [f"urn:btih:{V1}"]
    assert parse_qs(urlsplit(old).query)["tr"] == [ANNOUNCE]


def test_the_page_s_magnet_is_the_one_the_weightless_command_prints() -> None:
    """One builder: the same link, byte for byte, as `weightless create` and `publish` print."""
    entry = {"info_hash": V2, "v1_info_hash": V1, "name": "my model"}
    link = magnet(entry, ANNOUNCE)
    assert link == magnet_uri("my model", V2, V1, [ANNOUNCE])
    assert link == (
        f"magnet:?xt=urn:btih:{V1}&xt=urn:btmh:1220{V2}&dn=my+model"
        "&tr=http%3A%2F%2Ftracker.example%3A8080%2Fannounce"
    )
    assert v1_magnet(entry, ANNOUNCE) == magnet_uri("my model", None, V1, [ANNOUNCE])


def test_v2_only_and_v1_only_entries() -> None:
    v2_only = {"info_hash": V2, "name": "x"}
    assert _xts(magnet(v2_only, ANNOUNCE)) == [f"urn:btmh:1220{V2}"]
    assert v1_magnet(v2_only, ANNOUNCE) is None
    v1_only = {"info_hash": V1, "name": "x"}
    assert _xts(magnet(v1_only, ANNOUNCE)) == [f"urn:btih:{V1}"]
    assert v1_magnet(v1_only, ANNOUNCE) is None  # the magnet is already v1-only


def test_the_default_tracker_is_the_weightless_command_s() -> None:
    from weightless.client.trackers import Tracker
    from weightless.wire.route import DEFAULT_TRACKER

    assert Tracker().url == DEFAULT_TRACKER == "http://localhost:8080"
    assert get_command({"info_hash": V2}, DEFAULT_TRACKER) == f"weightless get {V2}"


def test_get_command_names_the_tracker_unless_it_is_the_default() -> None:
    assert get_command({"info_hash": V2}, "http://localhost:8080") == f"weightless get {V2}"
    assert (
        get_command({"info_hash": V2}, "https://t.example")
        == f"weightless get {V2} --tracker https://t.example"
    )


@pytest.mark.parametrize(
    ("host", "secure", "url"),
    [
        ("tracker.example:8080", False, "http://tracker.example:8080"),
        ("tracker.example", True, "https://tracker.example"),
        ("[2001:db8::1]:8080", False, "http://[2001:db8::1]:8080"),
        (None, False, "http://127.0.0.1:80"),
        ("evil.example/path?x=<script>", False, "http://127.0.0.1:80"),
        ("a b", False, "http://127.0.0.1:80"),
        ("", False, "http://127.0.0.1:80"),
    ],
)
def test_base_url_takes_only_a_plain_host(host: str | None, secure: bool, url: str) -> None:
    assert base_url(host, secure, "127.0.0.1:80") == url


def test_tag_list() -> None:
    assert tag_list("llm, weights,,fp16,llm ") == ["llm", "weights", "fp16"]
    assert tag_list(None) == []


def test_repository_links_and_commands() -> None:
    from weightless.web.present import repo_get_command, repo_url, when

    assert repo_url({"publisher": "acme", "name": "llm"}) == "/repos/acme/llm"
    assert repo_url({"publisher": "Org/Team A", "name": "my model/fp16 ?#"}) == (
        "/repos/Org%2FTeam%20A/my%20model/fp16%20%3F%23"
    )
    assert repo_url({"name": "llm"}) is None and repo_url({"publisher": "", "name": "x"}) is None

    def newest(publisher: str, name: str) -> dict[str, str]:
        return {"publisher": publisher, "name": name, "info_hash": "ab" * 32}

    assert repo_get_command(newest("acme", "llm"), "http://localhost:8080") == (
        "weightless get acme/llm"
    )
    assert repo_get_command(newest("Org", "my model; rm -rf ~"), "https://t.example") == (
        "weightless get 'Org/my model; rm -rf ~' --tracker https://t.example"
    )
    assert repo_get_command(newest("acme", "a/b@c d"), "http://localhost:8080") == (
        "weightless get 'acme/a/b@c d'"
    )
    # names that PUBLISHER/NAME would read back as another reference get the hash
    for publisher, name in [
        ("Org/Team", "llm"),  # split at the first "/"
        ("acme", "llm@v2"),  # read as llm at version v2
        ("acme", "llm "),  # the command strips what it is given
        (" acme", "llm"),
    ]:
        assert repo_get_command(newest(publisher, name), "http://localhost:8080") == (
            "weightless get " + "ab" * 32
        ), (publisher, name)
    assert when("2026-12-07T21:04:05Z") == "2026-12-07 21:04 UTC"
    assert when(None) == "" and when("2026-12-07") == "2026-12-07"


def test_the_one_file_command_prefers_config_json_and_quotes_paths() -> None:
    from weightless.web.present import file_get_command

    entry = {"info_hash": V2}
    files = [{"path": "model; rm -rf ~.bin", "length": 9}, {"path": "a b/config.json", "length": 1}]
    assert file_get_command(entry, files, "http://localhost:8080") == (
        f"weightless get {V2} 'a b/config.json'"
    )
    shards = [{"path": "shards/1 of 2.bin", "length": 1}, {"path": "x.bin", "length": 1}]
    assert file_get_command(entry, shards, "https://t.example") == (
        f"weightless get {V2} 'shards/1 of 2.bin' --tracker https://t.example"
    )
    assert file_get_command(entry, [{"path": "model.bin", "length": 1}], "https://t") is None
