"""``twistd weightless``: options, and the one place where the objects are wired together."""

from __future__ import annotations

import mmap
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic_ns, perf_counter
from typing import Any

from prometheus_client.registry import CollectorRegistry
from twisted.application import service, strports
from twisted.protocols.haproxy._wrapper import HAProxyWrappingFactory
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.web.client import Agent
from twisted.web.server import Site

from weightless.cluster.ipc import Mesh
from weightless.cluster.router import Router
from weightless.cluster.seat import Seat, die_with_supervisor
from weightless.cluster.sharedcount import SharedCounts
from weightless.cluster.sharedlimit import SharedRateLimiter
from weightless.cluster.supervisor import Supervisor
from weightless.cluster.worker import AdoptedPorts, ClusterLive, ClusterMetrics, Sharing
from weightless.config import Config, ConfigError, from_environ, with_backlog
from weightless.hubsync import HubSync
from weightless.metrics import Stats, TrackerCollector, make_registry
from weightless.registry.live import ChangeFeed, CountsPublisher, LiveRegistry
from weightless.registry.parsepool import ParsePool
from weightless.registry.postgres import PostgresStore
from weightless.registry.service import STORE_TIMEOUT, RegistryService
from weightless.registry.sharedlive import CountsReader, SharedLive
from weightless.registry.sqlite import SQLiteStore
from weightless.registry.store import IStore
from weightless.service import Maintenance, TrackerService
from weightless.sharedswarms.redis import RedisConnection, RedisSwarms
from weightless.sharedswarms.tracker import SharedTracker
from weightless.state.keyfile import load_or_create
from weightless.state.pendingfile import worker_baselines
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
from weightless.web.registry_api import RegistryAPI
from weightless.web.tracker_http import TrackerHTTP
from weightless.wire.connid import ConnectionIdValidator
from weightless.wire.passkey import Passkeys


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Weightless: a BitTorrent tracker (HTTP and UDP) with a registry of AI models and "
        "datasets. Options with an environment variable name it in brackets; the option wins."
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
        [
            "swarm-store",
            None,
            None,
            "where swarms are kept: memory, or redis://HOST:PORT/DB to share them with other "
            "trackers (WEIGHTLESS_SWARM_STORE) [memory]",
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
            "hub-url",
            None,
            None,
            "send per-user traffic to this hub every 10 s (POST URL/api/internal/usage-sync) "
            "(HUB_URL) [off]",
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
    usage_sync = config.hub_url is not None  # flushes keep each user's traffic for the hub
    if path is not None:
        return SQLiteStore(path, reactor, usage_sync=usage_sync)
    return PostgresStore(config.database, reactor, usage_sync=usage_sync)


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
    parse_pool: ParsePool
    refresh_metrics: Callable[[], Any] | None = None
    shared: SharedTracker | None = None  # --swarm-store redis://: swarms in Redis


@dataclass
class Core:
    """The tracker's state and rules, the same in one process and in each worker."""

    catalog: Catalog
    swarms: SwarmStore
    pending: PendingWrites
    passkeys: Passkeys | None
    accounting: Accounting | None
    tracker: Tracker
    stats: Stats
    shared: SharedTracker | None = None


@dataclass
class Variant:
    """What differs between the whole tracker in one process and one worker of several:
    where rate and connection counts live, the router, the registry's live view, what
    /metrics counts."""

    limiter: Limiter
    counts: Counts
    router: Router | None
    live: LiveRegistry
    collected: TrackerCollector
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
    core = tracker_core(config, seat, rand or random.Random().random)
    core.shared = shared_swarms(config, reactor, core)
    v = single_process(config, core) if seat is None else worker_seat(config, reactor, seat, core)
    client_ip = ClientIP(config.trusted_proxies)
    metrics = make_registry(v.collected)
    http = TrackerHTTP(
        core.tracker, v.limiter, core.stats, reactor.seconds, timer, v.router, core.shared
    )
    parse_pool = ParsePool(reactor)
    api, pages = registry(
        config, reactor, store, core, v, client_ip, store_timeout, clock, parse_pool
    )
    web = web_app(reactor, store, v, client_ip, http, metrics, api, pages, clock, core.shared)
    site, front = http_front(config, reactor, web, http, client_ip, v.counts)
    udp = udp_tracker(config, reactor, seat, core, v.limiter, v.router)
    maintenance = background(config, reactor, store, core)
    return Wiring(
        config, reactor, store, core.catalog, core.swarms, core.pending, core.passkeys,
        core.accounting, core.tracker, core.stats, metrics, client_ip, v.limiter, v.router,
        v.live, http, api, web, site, front, udp, maintenance, parse_pool, v.refresh_metrics,
        core.shared,
    )  # fmt: skip


def shared_swarms(config: Config, reactor: Any, core: Core) -> SharedTracker | None:
    """With ``--swarm-store redis://...``: announces and scrapes on the swarms in Redis,
    every process and machine on that Redis sharing them. None for the memory store."""
    if config.swarm_store == "memory":
        return None
    stats = core.stats

    def refused() -> None:
        stats.swarm_store_unavailable += 1

    swarms = RedisSwarms(config.swarm_store, reactor, on_outage=refused)
    return SharedTracker(core.tracker, swarms, reactor.seconds)


def tracker_core(config: Config, seat: Seat | None, rand: Callable[[], float]) -> Core:
    """Registered entries, swarms, pending writes, passkeys and the announce/scrape rules."""
    catalog, swarms, pending = Catalog(), SwarmStore(rand), PendingWrites()
    passkeys = Passkeys(config.tracker_secret) if config.tracker_secret else None
    accounting = Accounting(pending, config.peer_ttl) if passkeys is not None else None
    tracker = Tracker(policy(config, seat), catalog, swarms, pending, passkeys, accounting, rand)
    return Core(catalog, swarms, pending, passkeys, accounting, tracker, Stats())


def background(config: Config, reactor: Any, store: IStore, core: Core) -> Maintenance:
    """Batched writes to the store and the expiry of peers, on the reactor's clock."""
    return Maintenance(
        store,
        core.pending,
        core.swarms,
        core.accounting,
        config.peer_ttl,
        reactor,
        stats=core.stats,
    )


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


def single_process(config: Config, core: Core) -> Variant:
    """The whole tracker in this process: its own counts, its own swarms."""
    swarms, catalog = core.swarms, core.catalog
    collected = TrackerCollector(
        core.stats,
        active_peers=lambda: swarms.peer_count,
        swarms=lambda: len(swarms.swarms),
        registered=lambda: len(catalog.entries),
    )
    limiter = RateLimiter(config.rate_limit, config.rate_burst, ipv6_prefix=config.ipv6_prefix)
    live: LiveRegistry = LiveRegistry(catalog, swarms)
    if core.shared is not None:
        live = SharedLive(catalog, core.shared.swarms, core.shared.clock, config.peer_ttl)
    return Variant(limiter, LocalCounts(), None, live, collected)


def worker_seat(config: Config, reactor: Any, seat: Seat, core: Core) -> Variant:
    """One worker of several: counts in the supervisor's shared tables, a router to the
    other workers, live counts and /metrics gathered from all of them."""
    limiter, counts = shared_limits(config, seat)
    router = Router(Mesh(seat.index, seat.workers, seat.directory, reactor), core.tracker)
    relay = config.sqlite_path is not None
    live: ClusterLive | SharedLive
    if core.shared is None:
        live = ClusterLive(core.catalog, core.swarms, router, relay, reactor, monotonic_ns)
    else:  # every worker reads the swarms from Redis itself: the mesh relays registry writes
        live = SharedLive(
            core.catalog,
            core.shared.swarms,
            core.shared.clock,
            config.peer_ttl,
            router.catalog_changed if relay else None,
        )
    cluster = ClusterMetrics(router, core.stats, core.swarms)
    router.on_catalog = live.apply
    if isinstance(live, ClusterLive):  # with Redis, every worker reads counts there
        core.tracker.on_completed = live.completed
        router.live_of = live.live_of
    router.stats_of = cluster.local
    catalog = core.catalog
    collected = TrackerCollector(
        cluster.total,
        active_peers=lambda: cluster.peers,
        swarms=lambda: cluster.swarm_count,
        registered=lambda: len(catalog.entries),
    )
    return Variant(limiter, counts, router, live, collected, cluster.refresh)


def shared_limits(config: Config, seat: Seat) -> tuple[Limiter, Counts]:
    """The rate limiter and the open connections per address, in the tables the supervisor
    made for all its workers."""
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
    return limiter, counts


def registry(
    config: Config,
    reactor: Any,
    store: IStore,
    core: Core,
    v: Variant,
    client_ip: ClientIP,
    store_timeout: float,
    clock: Any,
    parse_pool: ParsePool,
) -> tuple[RegistryAPI, Pages]:
    """The registry's rules, once, and their two faces: the JSON API and the HTML pages.
    Uploads are parsed in ``parse_pool``'s process, away from the announces."""
    service = RegistryService(
        store,
        v.live,
        core.pending,
        clock or reactor,
        parse_pool.run,
        store_timeout,
        config.registry_key,
    )
    passkeys = core.passkeys is not None
    api = RegistryAPI(service, v.limiter, client_ip, reactor, config.cors_origins, passkeys)
    pages = Pages(service, v.limiter, client_ip, reactor, passkeys)
    return api, pages


def web_app(
    reactor: Any,
    store: IStore,
    v: Variant,
    client_ip: ClientIP,
    http: TrackerHTTP,
    metrics: CollectorRegistry,
    api: RegistryAPI,
    pages: Pages,
    clock: Any,
    shared: SharedTracker | None = None,
) -> WebApp:
    """Every HTTP route: tracker, registry API and pages, /health, /metrics."""
    return WebApp(
        http,
        store,
        metrics,
        client_ip,
        reactor,
        api.resource(),
        refresh_metrics=v.refresh_metrics,
        pages=pages.resource(),
        clock=clock,
        swarm_store_reachable=None if shared is None else _reachable(shared.swarms),
    )


def _reachable(swarms: RedisSwarms) -> Callable[[], bool]:
    return lambda: swarms.reachable


def http_front(
    config: Config,
    reactor: Any,
    web: WebApp,
    http: TrackerHTTP,
    client_ip: ClientIP,
    counts: Counts,
) -> tuple[Site, FrontFactory]:
    """The HTTP listener's factory: announces and scrapes on the fast path, the rest to the
    web application's site, within the connection limits."""
    site = Site(web.resource(), reactor=reactor)
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
    return site, front


def udp_tracker(
    config: Config,
    reactor: Any,
    seat: Seat | None,
    core: Core,
    limiter: Limiter,
    router: Router | None,
) -> UDPTracker | None:
    """The BEP 15 protocol (None with --udp off). Its connection ids survive a restart: the
    key is kept in a file (or, for workers, handed down by the supervisor)."""
    if config.udp is None:
        return None
    secret = load_or_create(config.udp_key_file) if seat is None else bytes.fromhex(seat.secret)
    connection_ids = ConnectionIdValidator(secret, max_age=config.udp_connection_ttl)
    if core.shared is not None:
        router = None  # every worker answers from Redis itself: nothing is forwarded
    udp = UDPTracker(
        core.tracker, limiter, core.stats, connection_ids, reactor.seconds, router, core.shared
    )
    if router is not None:
        router.udp_answer = udp.answer_forwarded  # announces other workers got for our swarms
    return udp


def services(config: Config, reactor: Any, seat: Seat | None, w: Wiring) -> service.IService:
    """The services of a wired tracker: start-up and stop, listeners, background work."""
    top = TrackerService(
        w.store,
        w.catalog,
        w.maintenance,
        reactor,
        _exit_failed,
        swarm_file(config, reactor, seat, w),
        config.pending_file,
        None if seat is None else worker_baselines(config.baselines_file, seat.index),
    )
    if seat is None:
        strports.service(with_backlog(config.http), w.front, reactor=reactor).setServiceParent(top)
        if w.udp is not None and config.udp is not None:
            UDPService(reactor, config.udp, w.udp, config.udp_interface).setServiceParent(top)
    else:
        worker_listeners(config, reactor, seat, w).setServiceParent(top)
        if isinstance(w.live, ClusterLive):
            Sharing(w.live, reactor).setServiceParent(top)
    w.parse_pool.setServiceParent(top)
    if w.shared is not None:
        RedisConnection(w.shared.swarms).setServiceParent(top)
    if config.hub_url is not None and (seat is None or seat.index == 0):
        # one sender: every worker's flushes write the traffic into the one database
        hub_sync(config, reactor, w).setServiceParent(top)
    owned = w.live.owned if isinstance(w.live, ClusterLive) else None
    if w.shared is None or seat is None or seat.index == 0:  # shared counts: one writer
        CountsPublisher(w.live, w.store, reactor, owned=owned).setServiceParent(top)
    elif isinstance(w.live, SharedLive):  # the other workers read them for their pages
        CountsReader(w.live, reactor).setServiceParent(top)
    ChangeFeed(w.store, w.live).setServiceParent(top)
    return top


def hub_sync(config: Config, reactor: Any, w: Wiring) -> HubSync:
    """Usage sync to the hub of ``--hub-url``, through Twisted's HTTP client."""
    assert config.hub_url is not None
    return HubSync(w.store, config.hub_url, config.registry_key, Agent(reactor), reactor, w.stats)


def swarm_file(config: Config, reactor: Any, seat: Seat | None, w: Wiring) -> SwarmFile | None:
    """Where swarms are saved on a clean stop (each worker its own) and restored at start."""
    if config.swarm_file is None or w.shared is not None:  # swarms in Redis: nothing to save
        return None
    router, catalog = w.router, w.catalog
    return SwarmFile(
        config.swarm_file,
        w.swarms,
        config.peer_ttl,
        reactor.seconds,
        keep=lambda key: (
            key not in catalog.blocked and (router is None or router.owner(key) == router.index)
        ),
        write_path=None if seat is None else f"{config.swarm_file}.{seat.index}",
    )


def worker_listeners(config: Config, reactor: Any, seat: Seat, w: Wiring) -> AdoptedPorts:
    """A worker listens on the sockets its supervisor bound (and on the mesh)."""
    assert w.router is not None
    udp = None if w.udp is None or seat.udp_fd is None else (seat.udp_fd, seat.udp_family, w.udp)
    # the supervisor bound a plain TCP socket: the PROXY protocol is wrapped on here
    listener: Any = HAProxyWrappingFactory(w.front) if config.proxy_protocol else w.front
    return AdoptedPorts(reactor, w.router.mesh, (seat.http_fd, seat.http_family, listener), udp)


def _exit_failed(failure: Failure) -> None:
    """Start-up failed (e.g. the database cannot be opened): exit non-zero, not serve."""
    # fd 2 itself: under twistd, sys.stderr is redirected into the log
    os.write(2, f"weightless: could not start: {failure.getErrorMessage()}\n".encode())
    os._exit(1)
