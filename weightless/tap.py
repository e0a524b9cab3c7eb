"""``twistd weightless``: options, and the one place where the objects are wired together."""

from __future__ import annotations

import mmap
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from prometheus_client.registry import CollectorRegistry
from twisted.application import service, strports
from twisted.protocols.haproxy._wrapper import HAProxyWrappingFactory
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.web.server import Site

from weightless.cluster.ipc import Mesh
from weightless.cluster.router import Router
from weightless.cluster.seat import Seat, die_with_supervisor
from weightless.cluster.sharedcount import SharedCounts
from weightless.cluster.sharedlimit import SharedRateLimiter
from weightless.cluster.supervisor import Supervisor
from weightless.cluster.worker import AdoptedPorts, ClusterLive, ClusterMetrics, Sharing
from weightless.config import Config, ConfigError, from_environ, with_backlog
from weightless.metrics import Stats, TrackerCollector, make_registry
from weightless.registry.live import ChangeFeed, CountsPublisher, LiveRegistry
from weightless.registry.postgres import PostgresStore
from weightless.registry.service import RegistryService, pool_runner
from weightless.registry.sqlite import SQLiteStore
from weightless.registry.store import IStore
from weightless.service import Maintenance, TrackerService
from weightless.state.keyfile import load_or_create
from weightless.state.swarmfile import SwarmFile
from weightless.tracker.accounting import Accounting, PendingWrites
from weightless.tracker.catalog import Catalog
from weightless.tracker.core import Policy, Tracker
from weightless.tracker.ratelimit import Limiter, RateLimiter
from weightless.tracker.swarm import SwarmStore
from weightless.udp.port import UDPService
from weightless.udp.protocol import UDPTracker
from weightless.web.app import WebApp
from weightless.web.bodylimit import LimitedRequest
from weightless.web.clientip import ClientIP
from weightless.web.connlimit import (
    ConnectionLimits,
    Counts,
    LocalCounts,
    default_max_connections,
    raise_open_file_limit,
)
from weightless.web.front import FrontFactory
from weightless.web.pages import Pages
from weightless.web.registry_api import STORE_TIMEOUT, RegistryAPI
from weightless.web.tracker_http import TrackerHTTP
from weightless.wire.connid import ConnectionIdValidator
from weightless.wire.passkey import Passkeys


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Weightless: a BitTorrent tracker (HTTP and UDP) with a registry of AI models and "
        "datasets. Every option also has an environment variable; the option wins."
    )
    optFlags = [["open", None, "track any info hash, not only registered ones (OPEN_TRACKER)"]]
    optParameters: list[list[Any]] = [
        ["http", None, None, "HTTP endpoint, e.g. tcp:8080 (WEIGHTLESS_HTTP, PORT) [tcp:8080]"],
        ["udp", None, None, "UDP port, or 'off' (WEIGHTLESS_UDP) [the HTTP port]"],
        ["udp-interface", None, None, "address the UDP socket binds [::]"],
        [
            "udp-connection-ttl",
            None,
            None,
            "seconds a UDP connection id stays valid (BEP 15 says 120; clients keep them "
            "longer) [300]",
        ],
        [
            "database",
            None,
            None,
            "sqlite:///path or postgresql://user@host:port/db (DATABASE_URL, DB_PATH) "
            "[sqlite:///weightless.db]",
        ],
        ["workers", None, None, "worker processes, or 'auto' (WEIGHTLESS_WORKERS) [1]"],
        [
            "udp-key-file",
            None,
            None,
            "where the key of UDP connection ids is kept, so that clients' ids survive a "
            "restart (WEIGHTLESS_UDP_KEY_FILE) [weightless.udp-key]",
        ],
        [
            "swarm-file",
            None,
            None,
            "where swarms are saved on a clean stop and restored at start, or 'off' "
            "(WEIGHTLESS_SWARM_FILE) [weightless.swarms]",
        ],
        ["max-peers", None, None, "most peers in one announce reply (MAX_PEERS) [50]"],
        [
            "max-swarms",
            None,
            None,
            "with --open, most swarms tracked at once; a new hash beyond it gets 'tracker is "
            "full' [1000000]",
        ],
        ["interval", None, None, "announce interval sent to clients, seconds [1800]"],
        ["min-interval", None, None, "minimum announce interval, seconds [900]"],
        ["peer-ttl", None, None, "drop a peer not heard from for this long, seconds [3600]"],
        ["rate-limit", None, None, "requests per second per client IP, 0 = off [5]"],
        ["rate-burst", None, None, "token bucket burst per client IP [10]"],
        [
            "header-timeout",
            None,
            None,
            "seconds a request head may take to arrive, however slowly it trickles [10]",
        ],
        [
            "max-connections",
            None,
            None,
            "open HTTP connections in all (per worker process) [the open-file limit, raised "
            "to its hard limit, less a reserve]",
        ],
        [
            "max-connections-per-ip",
            None,
            None,
            "open HTTP connections from one address (IPv6: one --ipv6-prefix network), "
            "0 = no limit [128]",
        ],
        [
            "ipv6-prefix",
            None,
            None,
            "per-address limits (rate, connections) key an IPv6 client by this prefix [64]",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["trusted_proxy"] = []
        self["cors_origin"] = []
        self.config: Config | None = None

    def opt_trusted_proxy(self, cidr: str) -> None:
        """address or CIDR of a proxy allowed to set X-Forwarded-For (repeatable)"""
        self["trusted_proxy"].append(cidr)

    def opt_cors_origin(self, origin: str) -> None:
        """origin allowed by CORS on /api/* (repeatable)"""
        self["cors_origin"].append(origin)

    def parseOptions(self, options: list[str] | None = None) -> None:
        # kept so that a supervisor can start its workers with the same options
        self.argv = list(sys.argv[1:] if options is None else options)
        super().parseOptions(options)

    def postOptions(self) -> None:
        given = {key.replace("-", "_"): value for key, value in self.items()}
        try:
            self.config = from_environ(given)
        except ConfigError as e:
            # one line for the operator (and the journal), not twistd's whole usage text
            sys.stderr.write(f"weightless: {e}\n")
            raise SystemExit(1) from None


def open_store(config: Config, reactor: Any) -> IStore:
    path = config.sqlite_path
    if path is not None:
        return SQLiteStore(path, reactor)
    return PostgresStore(config.database, reactor)


def makeService(options: Options) -> service.IService:
    from twisted.internet import reactor

    config = options.config
    assert config is not None
    seat = Seat.from_env(os.environ)
    if seat is None and config.workers > 1:
        return Supervisor(config, options.argv, reactor)
    try:
        return tracker_service(config, reactor, seat)
    except OSError as e:  # a state file that cannot be read or written at all
        sys.stderr.write(f"weightless: could not start: {e}\n")
        raise SystemExit(1) from None


def tracker_service(config: Config, reactor: Any, seat: Seat | None) -> service.IService:
    """The tracker: the whole of it, or (with a seat) one worker of several."""
    if seat is not None:
        die_with_supervisor(seat.supervisor)
    return services(config, reactor, seat, wire(config, reactor, open_store(config, reactor), seat))


@dataclass
class Wiring:
    """The tracker's objects, connected: what serves a request. Tests build theirs here too,
    so the wiring under test is the one that ships."""

    config: Config
    reactor: Any
    store: IStore
    catalog: Catalog
    swarms: SwarmStore
    pending: PendingWrites
    passkeys: Passkeys | None
    accounting: Accounting | None
    tracker: Tracker
    stats: Stats
    metrics: CollectorRegistry
    client_ip: ClientIP
    limiter: Limiter
    router: Router | None
    live: LiveRegistry
    http: TrackerHTTP
    api: RegistryAPI
    web: WebApp
    site: Site
    front: FrontFactory
    udp: UDPTracker | None
    maintenance: Maintenance
    refresh_metrics: Callable[[], Any] | None = None


def wire(
    config: Config,
    reactor: Any,
    store: IStore,
    seat: Seat | None = None,
    rand: Callable[[], float] | None = None,
    timer: Callable[[], float] = perf_counter,
    store_timeout: float = STORE_TIMEOUT,
    clock: Any = None,
) -> Wiring:
    """Every object of one tracker process on ``store`` (``seat``: one worker of several).
    ``rand``, ``timer``, ``store_timeout`` and ``clock`` (what times the database's answers)
    are for tests: a fixed peer order, time that moves only when told."""
    rand = rand or random.Random().random
    catalog, swarms, pending = Catalog(), SwarmStore(rand), PendingWrites()
    passkeys = Passkeys(config.tracker_secret) if config.tracker_secret else None
    accounting = Accounting(pending, config.peer_ttl) if passkeys is not None else None
    tracker = Tracker(policy(config, seat), catalog, swarms, pending, passkeys, accounting, rand)
    stats = Stats()
    client_ip = ClientIP(config.trusted_proxies)
    router = None
    counts: Counts
    refresh_metrics = None
    limiter: Limiter
    if seat is None:
        limiter = RateLimiter(config.rate_limit, config.rate_burst, ipv6_prefix=config.ipv6_prefix)
        counts = LocalCounts()
        live = LiveRegistry(catalog, swarms)
        collected = TrackerCollector(
            stats,
            active_peers=lambda: swarms.peer_count,
            swarms=lambda: len(swarms.swarms),
            registered=lambda: len(catalog.entries),
        )
    else:
        with open(seat.limiter_path, "r+b") as table:
            limiter = SharedRateLimiter(
                mmap.mmap(table.fileno(), 0),
                config.rate_limit,
                config.rate_burst,
                ipv6_prefix=config.ipv6_prefix,
            )
        with open(seat.connections_path, "r+b") as table:
            counts = SharedCounts(
                mmap.mmap(table.fileno(), 0), seat.index, seat.workers, bytes.fromhex(seat.secret)
            )
        router = Router(Mesh(seat.index, seat.workers, seat.directory, reactor), tracker)
        live = ClusterLive(catalog, swarms, router, relay=config.sqlite_path is not None)
        cluster = ClusterMetrics(router, stats, swarms)
        collected = TrackerCollector(
            cluster.total,
            active_peers=lambda: cluster.peers,
            swarms=lambda: cluster.swarm_count,
            registered=lambda: len(catalog.entries),
        )
        refresh_metrics = cluster.refresh
    metrics = make_registry(collected)
    http = TrackerHTTP(tracker, limiter, stats, reactor.seconds, timer, router=router)
    # the registry's rules, once: the JSON API and the HTML pages both answer from it
    registry = RegistryService(
        store,
        live,
        pending,
        clock or reactor,
        pool_runner(reactor),
        store_timeout,
        config.registry_key,
    )
    api = RegistryAPI(registry, limiter, client_ip, reactor, config.cors_origins)
    web = WebApp(
        http,
        store,
        metrics,
        client_ip,
        reactor,
        api.resource(),
        refresh_metrics=refresh_metrics,
        pages=Pages(registry, limiter, client_ip, reactor, passkeys is not None).resource(),
        clock=clock,
    )
    site = Site(web.app.resource(), reactor=reactor)
    site.requestFactory = LimitedRequest
    site.displayTracebacks = False
    limits = ConnectionLimits(
        config.max_connections_per_ip,
        config.max_connections or default_max_connections(raise_open_file_limit()),
        config.ipv6_prefix,
        counts,
    )
    front = FrontFactory(
        site,
        http,
        client_ip,
        reactor,
        limits,
        header_timeout=config.header_timeout,
        proxied=config.proxy_protocol,
    )
    udp_tracker = None
    if config.udp is not None:
        secret = load_or_create(config.udp_key_file) if seat is None else bytes.fromhex(seat.secret)
        connection_ids = ConnectionIdValidator(secret, max_age=config.udp_connection_ttl)
        udp_tracker = UDPTracker(
            tracker, limiter, stats, connection_ids, reactor.seconds, router=router
        )
    maintenance = Maintenance(
        store, pending, swarms, accounting, config.peer_ttl, reactor, stats=stats
    )
    return Wiring(
        config, reactor, store, catalog, swarms, pending, passkeys, accounting, tracker, stats,
        metrics, client_ip, limiter, router, live, http, api, web, site, front, udp_tracker,
        maintenance, refresh_metrics,
    )  # fmt: skip


def policy(config: Config, seat: Seat | None) -> Policy:
    return Policy(
        open=config.open,
        max_peers=config.max_peers,
        # each worker owns its share of the swarms (hashes are spread evenly among them)
        max_swarms=max(1, config.max_swarms // (seat.workers if seat is not None else 1)),
        interval=config.interval,
        min_interval=config.min_interval,
        peer_ttl=config.peer_ttl,
    )


def services(config: Config, reactor: Any, seat: Seat | None, w: Wiring) -> service.IService:
    """The services of a wired tracker: start-up and stop, listeners, background work."""
    router = w.router
    catalog = w.catalog
    swarm_file = None
    if config.swarm_file is not None:
        swarm_file = SwarmFile(
            config.swarm_file,
            w.swarms,
            config.peer_ttl,
            reactor.seconds,
            keep=lambda key: (
                key not in catalog.blocked and (router is None or router.owner(key) == router.index)
            ),
            write_path=None if seat is None else f"{config.swarm_file}.{seat.index}",
        )
    top = TrackerService(
        w.store, catalog, w.maintenance, reactor, _exit_failed, swarm_file, config.pending_file
    )
    if seat is None:
        strports.service(with_backlog(config.http), w.front, reactor=reactor).setServiceParent(top)
        if w.udp is not None and config.udp is not None:
            UDPService(reactor, config.udp, w.udp, config.udp_interface).setServiceParent(top)
    else:
        assert router is not None and isinstance(w.live, ClusterLive)
        udp = (
            None if w.udp is None or seat.udp_fd is None else (seat.udp_fd, seat.udp_family, w.udp)
        )
        # the supervisor bound a plain TCP socket: the PROXY protocol is wrapped on here
        listener: Any = HAProxyWrappingFactory(w.front) if config.proxy_protocol else w.front
        AdoptedPorts(
            reactor, router.mesh, (seat.http_fd, seat.http_family, listener), udp
        ).setServiceParent(top)
        Sharing(w.live, reactor).setServiceParent(top)
    owned = w.live.owned if isinstance(w.live, ClusterLive) else None
    CountsPublisher(w.live, w.store, reactor, owned=owned).setServiceParent(top)
    ChangeFeed(w.store, w.live).setServiceParent(top)
    return top


def _exit_failed(failure: Failure) -> None:
    """Start-up failed (e.g. the database cannot be opened): exit non-zero, not serve."""
    # fd 2 itself: under twistd, sys.stderr is redirected into the log
    os.write(2, f"weightless: could not start: {failure.getErrorMessage()}\n".encode())
    os._exit(1)
