"""Prometheus metrics.

The hot path only bumps plain integers; a collector turns them into metrics when /metrics is
scraped, so counting costs an announce tens of nanoseconds, not a lock per metric."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

# announce latency buckets, seconds
BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class Stats:
    """What the tracker counts while it works."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}  # (protocol, action, outcome) -> n
        self.latency_counts = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.store_rejected = 0  # rows of flushes the database refused, set aside
        self.swarm_store_unavailable = 0  # requests refused while Redis did not answer
        # usage sync to a hub: batches the hub took, sends to try again, batches it refused
        # (set aside), and batches waiting to be sent
        self.hub_sent = 0
        self.hub_retried = 0
        self.hub_set_aside = 0
        self.hub_waiting = 0

    def count(self, protocol: str, action: str, outcome: str) -> None:
        key = (protocol, action, outcome)
        self.requests[key] = self.requests.get(key, 0) + 1

    def observe(self, seconds: float) -> None:
        self.latency_counts[bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def to_dict(self) -> dict[str, Any]:
        """This process's counters, for the worker that answers /metrics for the cluster."""
        return {
            "requests": [[*key, n] for key, n in self.requests.items()],
            "latency_counts": self.latency_counts,
            "latency_sum": self.latency_sum,
            "store_rejected": self.store_rejected,
            "swarm_store_unavailable": self.swarm_store_unavailable,
            "hub": [self.hub_sent, self.hub_retried, self.hub_set_aside, self.hub_waiting],
        }

    def replace_with_sum(self, parts: list[dict[str, Any]]) -> None:
        """Become the sum of several processes' counters."""
        self.requests = {}
        self.latency_counts = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.store_rejected = 0
        self.swarm_store_unavailable = 0
        self.hub_sent = self.hub_retried = self.hub_set_aside = self.hub_waiting = 0
        for part in parts:
            self.store_rejected += part.get("store_rejected", 0)
            self.swarm_store_unavailable += part.get("swarm_store_unavailable", 0)
            sent, retried, set_aside, waiting = part.get("hub", (0, 0, 0, 0))
            self.hub_sent += sent
            self.hub_retried += retried
            self.hub_set_aside += set_aside
            self.hub_waiting += waiting
            for protocol, action, outcome, n in part["requests"]:
                key = (protocol, action, outcome)
                self.requests[key] = self.requests.get(key, 0) + n
            for i, n in enumerate(part["latency_counts"]):
                self.latency_counts[i] += n
            self.latency_sum += part["latency_sum"]

    def total(self, action: str) -> int:
        return sum(n for (_, act, _), n in self.requests.items() if act == action)


class TrackerCollector(Collector):
    def __init__(
        self,
        stats: Stats,
        active_peers: Callable[[], int],
        swarms: Callable[[], int],
        registered: Callable[[], int],
    ) -> None:
        self.stats = stats
        self.active_peers = active_peers
        self.swarms = swarms
        self.registered = registered

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        yield CounterMetricFamily(
            "tracker_announces",
            "Total number of announce requests handled",
            value=stats.total("announce"),
        )
        yield CounterMetricFamily(
            "tracker_scrapes",
            "Total number of scrape requests handled",
            value=stats.total("scrape"),
        )
        yield GaugeMetricFamily(
            "tracker_active_peers", "Current number of active peers in memory", self.active_peers()
        )
        yield GaugeMetricFamily(
            "tracker_registered_torrents",
            "Total number of torrents in registry",
            self.registered(),
        )
        yield GaugeMetricFamily(
            "tracker_swarms_total", "Total number of active swarms", self.swarms()
        )
        yield CounterMetricFamily(
            "tracker_store_rejected",
            "Rows of queued writes (completions, user traffic) the database refused, set aside",
            value=stats.store_rejected,
        )
        yield CounterMetricFamily(
            "tracker_swarm_store_unavailable",
            "Announces and scrapes refused because the swarm store (Redis) did not answer",
            value=stats.swarm_store_unavailable,
        )
        yield CounterMetricFamily(
            "tracker_hub_batches_sent",
            "Usage sync batches the hub took (answered 200)",
            value=stats.hub_sent,
        )
        yield CounterMetricFamily(
            "tracker_hub_batches_retried",
            "Usage sync sends that failed (5xx, timeout, no connection) and are tried again",
            value=stats.hub_retried,
        )
        yield CounterMetricFamily(
            "tracker_hub_batches_set_aside",
            "Usage sync batches the hub refused with a 4xx other than 403, kept aside",
            value=stats.hub_set_aside,
        )
        yield GaugeMetricFamily(
            "tracker_hub_batches_waiting",
            "Usage sync batches stored and not yet taken by the hub",
            stats.hub_waiting,
        )
        requests = CounterMetricFamily(
            "tracker_requests",
            "Requests answered, by protocol, action and outcome",
            labels=["protocol", "action", "outcome"],
        )
        for labels, n in sorted(stats.requests.items()):
            requests.add_metric(list(labels), n)
        yield requests
        cumulative = 0
        buckets = []
        for bound, n in zip((*BUCKETS, float("inf")), stats.latency_counts, strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily(
            "tracker_announce_duration_seconds",
            "Time to answer an HTTP announce, from parsed request to reply bytes",
            buckets=buckets,
            sum_value=stats.latency_sum,
        )


def make_registry(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
