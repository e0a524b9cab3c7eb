import pytest

from weightless.wire.route import route

PK = b"alice.0123456789abcdef"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/announce?a=1", (b"announce", None, b"a=1")),
        (b"/announce/?a=1", (b"announce", None, b"a=1")),
        (b"/announce", (b"announce", None, b"")),
        (b"/announce/" + PK + b"?a=1", (b"announce", PK, b"a=1")),
        (b"/" + PK + b"/announce?a=1", (b"announce", PK, b"a=1")),
        (b"/" + PK + b"/announce", (b"announce", PK, b"")),
        (b"/scrape?info_hash=x", (b"scrape", None, b"info_hash=x")),
        (b"/scrape/", (b"scrape", None, b"")),
        (b"/scrape/" + PK + b"?info_hash=x", (b"scrape", PK, b"info_hash=x")),
        (b"/" + PK + b"/scrape?info_hash=x", (b"scrape", PK, b"info_hash=x")),
        # percent-encoded passkeys, in either place
        (b"/announce/bob%2Ex", (b"announce", b"bob.x", b"")),
        (b"/bob%2Ex/scrape", (b"scrape", b"bob.x", b"")),
        # a user id may begin with an action's name
        (b"/announcer.ab12/announce?a=1", (b"announce", b"announcer.ab12", b"a=1")),
        (b"/scraper.ab12/scrape", (b"scrape", b"scraper.ab12", b"")),
        (b"/announce/scrape", (b"announce", b"scrape", b"")),  # the spec's form comes first
    ],
)
def test_tracker_urls(target: bytes, expected: tuple[bytes, bytes | None, bytes]) -> None:
    assert route(target) == expected


@pytest.mark.parametrize(
    "target",
    [
        b"/",
        b"",
        b"/health",
        b"/api/registry?info_hash=x",
        b"/announcex",
        b"/scrapes",
        b"/announce/a/b",
        b"/a/b/announce",
        b"//announce",
        b"//scrape",
        b"/pk/announce/",
        b"/pk/announcex",
        b"/pk/Announce",
        b"/pk/metrics",
        b"/pk/",
        b"/pk",
    ],
)
def test_other_urls_are_not_the_trackers(target: bytes) -> None:
    assert route(target) is None


def test_the_get_command_names_the_tracker_unless_it_is_the_default() -> None:
    from weightless.wire.route import DEFAULT_TRACKER, get_command

    h = "ab" * 32
    assert get_command(h, DEFAULT_TRACKER) == f"weightless get {h}"
    assert get_command(h, "https://t.example") == f"weightless get {h} --tracker https://t.example"
