"""What a transfer's status line says (weightless.client.cli.progress): binary units, peers and
seeders, "waiting for peers" once none came for a while (and why), the time left."""

from __future__ import annotations

from weightless.client.cli import progress
from weightless.client.transfer import Status

MiB = 1024**2


def status(**fields: object) -> Status:
    base: dict[str, object] = dict(
        name="m",
        state="downloading",
        total=100 * MiB,
        done=25 * MiB,
        download_rate=5 * MiB,
        upload_rate=0.0,
        peers=3,
        seeds=1,
        downloaded=25 * MiB,
        uploaded=0,
        tracker_error=None,
    )
    base.update(fields)
    return Status(**base)  # type: ignore[arg-type]


def test_a_download_with_peers() -> None:
    assert progress.numbers(status(), 0.0) == (
        "25.0 MiB of 100.0 MiB  5.0 MiB/s  3 peers (1 seeder)  0:00:15 left"
    )
    assert progress.peers(status(peers=1, seeds=0), 0.0) == "1 peer (0 seeders)"


def test_no_peer_for_a_while_says_waiting_and_what_the_tracker_lists() -> None:
    alone = status(peers=0, seeds=0, download_rate=0.0)
    assert progress.peers(alone, 1.0) == "looking for peers"
    assert progress.peers(alone, progress.WAITING) == "waiting for peers"
    none = status(peers=0, seeds=0, download_rate=0.0, swarm_seeds=0, swarm_peers=1)
    assert progress.peers(none, 60.0) == "waiting for peers (the tracker lists no seeder)"
    some = status(peers=0, swarm_seeds=2, swarm_peers=0)
    assert progress.peers(some, 60.0) == (
        "waiting for peers (the tracker lists 2 seeders; none has connected)"
    )
    # a seeder waits for leechers: what the tracker lists is no news to it
    assert progress.peers(status(peers=0, state="seeding", swarm_seeds=1), 60.0, "seeding") == (
        "waiting for peers"
    )
    # downloaded, the seeders gone: nothing to wait for
    assert progress.peers(status(peers=0, state="seeding", done=100 * MiB), 60.0) == ""
    # never the unknown "-:--:--": no estimate at all while nothing moves
    assert "left" not in progress.numbers(alone, 60.0) and "-:--" not in progress.numbers(
        alone, 60.0
    )


def test_a_tracker_refusal_is_shown_at_once_in_its_words_and_escaped() -> None:
    refused = status(peers=0, tracker_error="this tracker needs a passkey\x1b[2J")
    assert progress.peers(refused, 0.0) == (
        "waiting for peers; the tracker says: this tracker needs a passkey\\x1b[2J"
    )


def test_states() -> None:
    assert progress.state(status(state="metadata"), "getting") == "fetching metadata of"
    assert progress.state(status(state="checking"), "getting") == "checking"
    assert progress.state(status(state="seeding"), "getting") == "verified"
    assert progress.state(status(state="seeding", uploaded=1), "getting") == "seeding"
    assert progress.state(status(state="seeding"), "seeding") == "seeding"
    assert progress.state(status(), "getting") == "downloading"


def test_time_left() -> None:
    assert progress.left(status(done=0, total=3600 * MiB, download_rate=MiB)) == "1:00:00 left"
    assert progress.left(status(total=10**15, done=0, download_rate=1.0)) == "more than 4 days left"
    assert progress.left(status(done=100 * MiB)) == ""


def test_seeding_shows_what_was_sent() -> None:
    seeding = status(
        state="seeding", done=100 * MiB, download_rate=0.0, upload_rate=MiB, uploaded=3 * MiB
    )
    assert progress.numbers(seeding, 0.0) == (
        "100.0 MiB of 100.0 MiB  3 peers (1 seeder)  ↑ 1.0 MiB/s, 3.0 MiB sent"
    )
