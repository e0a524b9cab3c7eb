"""The Prometheus text a /metrics scrape returns (weightless.metrics): totals by action, requests
by protocol, action and outcome, the gauges read at scrape time, the announce latency histogram
with cumulative buckets, and the sum of several workers' counters."""

from __future__ import annotations

from prometheus_client import generate_latest

from weightless.metrics import BUCKETS, Stats, TrackerCollector, make_registry


def scrape(stats: Stats, peers: int = 0, swarms: int = 0, registered: int = 0) -> list[str]:
    collector = TrackerCollector(stats, lambda: peers, lambda: swarms, lambda: registered)
    text = generate_latest(make_registry(collector)).decode()
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_a_fresh_tracker_reports_zeros() -> None:
    lines = scrape(Stats())
    for line in (
        "tracker_announces_total 0.0",
        "tracker_scrapes_total 0.0",
        "tracker_active_peers 0.0",
        "tracker_registered_torrents 0.0",
        "tracker_swarms_total 0.0",
        "tracker_store_rejected_total 0.0",
        'tracker_announce_duration_seconds_bucket{le="+Inf"} 0.0',
        "tracker_announce_duration_seconds_count 0.0",
        "tracker_announce_duration_seconds_sum 0.0",
    ):
        assert line in lines
    assert not any(line.startswith("tracker_requests_total{") for line in lines)


def test_requests_by_protocol_action_and_outcome() -> None:
    stats = Stats()
    for _ in range(3):
        stats.count("http", "announce", "ok")
    stats.count("udp", "announce", "rate_limited")
    stats.count("http", "scrape", "failure")
    stats.store_rejected = 2
    lines = scrape(stats, peers=7, swarms=2, registered=40)
    assert "tracker_announces_total 4.0" in lines  # every protocol, every outcome
    assert "tracker_scrapes_total 1.0" in lines
    assert 'tracker_requests_total{action="announce",outcome="ok",protocol="http"} 3.0' in lines
    assert (
        'tracker_requests_total{action="announce",outcome="rate_limited",protocol="udp"} 1.0'
        in lines
    )
    assert 'tracker_requests_total{action="scrape",outcome="failure",protocol="http"} 1.0' in lines
    assert "tracker_active_peers 7.0" in lines
    assert "tracker_swarms_total 2.0" in lines
    assert "tracker_registered_torrents 40.0" in lines
    assert "tracker_store_rejected_total 2.0" in lines


def test_gauges_are_read_when_scraped() -> None:
    peers = [1]
    collector = TrackerCollector(Stats(), lambda: peers[0], lambda: 0, lambda: 0)
    registry = make_registry(collector)
    assert b"tracker_active_peers 1.0" in generate_latest(registry)
    peers[0] = 5
    assert b"tracker_active_peers 5.0" in generate_latest(registry)


def test_latency_buckets_are_cumulative() -> None:
    stats = Stats()
    stats.observe(0.00001)  # in the first bucket
    stats.observe(BUCKETS[0])  # on its bound: still the first
    stats.observe(0.003)  # in the 0.005 bucket
    stats.observe(2.0)  # past the last bound: +Inf only
    lines = scrape(stats)
    assert f'tracker_announce_duration_seconds_bucket{{le="{BUCKETS[0]!r}"}} 2.0' in lines
    assert 'tracker_announce_duration_seconds_bucket{le="0.0025"} 2.0' in lines
    assert 'tracker_announce_duration_seconds_bucket{le="0.005"} 3.0' in lines
    assert 'tracker_announce_duration_seconds_bucket{le="0.5"} 3.0' in lines
    assert 'tracker_announce_duration_seconds_bucket{le="+Inf"} 4.0' in lines
    assert "tracker_announce_duration_seconds_count 4.0" in lines
    [total] = [x for x in lines if x.startswith("tracker_announce_duration_seconds_sum ")]
    assert abs(float(total.split()[1]) - 2.00306) < 1e-9


def test_the_cluster_reports_the_sum_of_its_workers() -> None:
    a, b = Stats(), Stats()
    a.count("http", "announce", "ok")
    b.count("http", "announce", "ok")
    b.count("udp", "scrape", "ok")
    a.observe(0.001)
    b.observe(0.3)
    a.store_rejected, b.store_rejected = 1, 2
    summed = Stats()
    summed.count("http", "announce", "ok")  # replaced, not added to
    summed.replace_with_sum([a.to_dict(), b.to_dict()])
    assert summed.requests == {("http", "announce", "ok"): 2, ("udp", "scrape", "ok"): 1}
    assert summed.total("announce") == 2 and summed.total("scrape") == 1
    assert summed.store_rejected == 3
    assert sum(summed.latency_counts) == 2 and abs(summed.latency_sum - 0.301) < 1e-9
    assert "tracker_announce_duration_seconds_count 2.0" in scrape(summed)
