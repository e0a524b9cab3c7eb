"""Options and environment variables, turned into one validated Config.

A command-line option beats its env var; the original Go tracker's env names are honoured."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address
from urllib.parse import urlsplit

from weightless.netaddr import parse_networks


class ConfigError(ValueError):
    """A bad setting; the message is one line for the operator."""


@dataclass(frozen=True)
class Config:
    http: str = "tcp:8080"
    udp: int | None = 8080
    udp_interface: str = "::"
    udp_connection_ttl: int = 300
    swarm_file: str | None = "weightless.swarms"
    udp_key_file: str = "weightless.udp-key"
    pending_file: str = "weightless.pending"  # writes the database did not take at a stop
    database: str = "sqlite:///weightless.db"
    swarm_store: str = "memory"  # or redis://HOST:PORT/DB: swarms shared by several trackers
    workers: int = 1
    open: bool = False
    tracker_secret: bytes | None = None
    registry_key: str | None = None
    max_peers: int = 50
    max_swarms: int = 1_000_000  # --open: swarms tracked at most, in all
    interval: int = 1800
    min_interval: int = 900
    peer_ttl: int = 3600
    rate_limit: float = 5.0
    rate_burst: float = 10.0
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    cors_origins: tuple[str, ...] = field(default=())
    header_timeout: float = 10.0  # seconds for a whole request head
    max_connections: int | None = None  # None: the open-file limit, less a reserve
    max_connections_per_ip: int = 128  # 0: no limit
    ipv6_prefix: int = 64  # per-address state keys an IPv6 client by this prefix
    hub_url: str | None = (
        None  # where per-user traffic is synced (POST .../api/internal/usage-sync)
    )

    @property
    def proxy_protocol(self) -> bool:
        """Connections start with a PROXY protocol header (``--http haproxy:tcp:...``)."""
        return self.http.lower().startswith("haproxy:")

    @property
    def baselines_file(self) -> str:
        """Where passkey peers' accounting baselines are kept at a clean stop."""
        return f"{self.pending_file}-baselines"

    @property
    def sqlite_path(self) -> str | None:
        """The file of a ``sqlite:///path`` URL (``sqlite:////abs/path`` for an absolute one)."""
        if self.database.startswith("sqlite:///"):
            return self.database[len("sqlite:///") :]
        return None


TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def endpoint_port(description: str) -> int:
    """The port of a tcp:/ssl: endpoint description; ConfigError when there is none or it is
    out of range."""
    parts = _fields(_without_proxy(description))
    kind = parts[0].lower()
    if kind not in ("tcp", "tcp6", "ssl") or len(parts) < 2:
        raise ConfigError(
            f"--http {description!r}: expected an endpoint like tcp:8080 or "
            "tcp:8080:interface=127.0.0.1 (haproxy:tcp:8080 behind a PROXY protocol sender)"
        )
    port = None
    for i, part in enumerate(parts[1:]):
        key, eq, value = part.partition("=")
        if eq and key == "port":
            port = value
        elif not eq and i == 0:
            port = part
    if port is None or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--http {description!r}: the port must be a number from 0 to 65535")
    return int(port)


def http_address(description: str) -> tuple[str, int]:
    """(interface, port) of a tcp: endpoint description, for binding it by hand."""
    port = endpoint_port(description)
    description = _without_proxy(description)
    interface = "::" if description.lower().startswith("tcp6") else "0.0.0.0"
    for part in _fields(description)[1:]:
        key, eq, value = part.partition("=")
        if eq and key == "interface":
            interface = value
    return interface, port


LISTEN_BACKLOG = 1024  # Twisted's default is 50; the kernel caps it at net.core.somaxconn


def with_backlog(description: str) -> str:
    """The endpoint description with a listen backlog of LISTEN_BACKLOG unless it sets one.
    With Twisted's 50, a burst of connections overflows the accept queue, and the kernel then
    leaves clients that sent nothing yet in a half-open state for a minute, past every limit
    the tracker keeps."""
    if any(part.startswith("backlog=") for part in _fields(description)):
        return description
    return f"{description}:backlog={LISTEN_BACKLOG}"


def _without_proxy(description: str) -> str:
    """The endpoint inside ``haproxy:`` (Twisted's PROXY protocol wrapper), or as given."""
    if description.lower().startswith("haproxy:"):
        return description[len("haproxy:") :]
    return description


def _fields(description: str) -> list[str]:
    """The colon-separated fields of an endpoint description (``\\:`` escapes a colon)."""
    return [f.replace("\\:", ":") for f in re.split(r"(?<!\\):", description)]


def _int(name: str, value: str, low: int, high: int | None = None) -> int:
    # ASCII digits only, and few of them: int() of 5,000 digits raises, not a one-line error
    if not re.fullmatch(r"-?[0-9]{1,30}", value.strip()):
        raise ConfigError(f"{name} {value!r}: expected a whole number")
    number = int(value)
    if number < low or (high is not None and number > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} {value!r}: must be {bound}")
    return number


def _float(name: str, value: str, low: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} {value!r}: expected a number") from None
    if not number >= low or number == float("inf"):
        raise ConfigError(f"{name} {value!r}: must be a finite number, at least {low:g}")
    return number


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ConfigError(f"{name} {value!r}: expected true or false")


Pick = Callable[..., "str | None"]


def build(options: Mapping[str, object], env: Mapping[str, str], cpu_count: int) -> Config:
    """A Config from parsed command-line ``options`` (None = not given) and ``env``."""
    pick = _picker(options, env)
    http, udp, udp_interface = _listeners(pick, env)
    interval, min_interval = _intervals(pick)
    rate, burst = _rate_limit(pick)
    secret = env.get("TRACKER_SECRET") or None
    swarm_file = pick("swarm_file", "WEIGHTLESS_SWARM_FILE") or "weightless.swarms"
    header_timeout, max_connections, max_connections_per_ip, ipv6_prefix = _connections(pick)
    return Config(
        http=http,
        udp=udp,
        udp_interface=udp_interface,
        swarm_file=None if swarm_file.strip().lower() == "off" else swarm_file,
        udp_key_file=pick("udp_key_file", "WEIGHTLESS_UDP_KEY_FILE") or "weightless.udp-key",
        udp_connection_ttl=_int(
            "--udp-connection-ttl", pick("udp_connection_ttl") or "300", 120, 86400
        ),
        database=_database(pick, env),
        swarm_store=_swarm_store(pick),
        workers=_workers(pick, http, cpu_count),
        open=bool(options.get("open")) or _bool("OPEN_TRACKER", env.get("OPEN_TRACKER", "false")),
        tracker_secret=secret.encode("utf-8") if secret else None,
        registry_key=env.get("REGISTRY_KEY") or None,
        hub_url=_hub_url(pick("hub_url", "HUB_URL")),
        max_peers=_int("--max-peers", pick("max_peers", "MAX_PEERS") or "50", 1, 1000),
        max_swarms=_int("--max-swarms", pick("max_swarms") or "1000000", 1),
        interval=interval,
        min_interval=min_interval,
        peer_ttl=_int("--peer-ttl", pick("peer_ttl") or "3600", 1),
        rate_limit=rate,
        rate_burst=burst,
        trusted_proxies=_trusted_proxies(options),
        cors_origins=tuple(str(o) for o in options.get("cors_origin") or []),  # type: ignore[attr-defined]
        header_timeout=header_timeout,
        max_connections=max_connections,
        max_connections_per_ip=max_connections_per_ip,
        ipv6_prefix=ipv6_prefix,
    )


def _picker(options: Mapping[str, object], env: Mapping[str, str]) -> Pick:
    """``pick(option, *env_names)``: the option's value, else the first env var set."""

    def pick(option: str, *names: str) -> str | None:
        given = options.get(option)
        if given is not None:
            return str(given)
        for name in names:
            if env.get(name):
                return env[name]
        return None

    return pick


def _listeners(pick: Pick, env: Mapping[str, str]) -> tuple[str, int | None, str]:
    """(HTTP endpoint, UDP port or None, UDP interface)."""
    http = pick("http", "WEIGHTLESS_HTTP")
    if http is None and env.get("PORT"):
        http = f"tcp:{_int('PORT', env['PORT'], 0, 65535)}"
    http = http or "tcp:8080"
    http_port = endpoint_port(http)
    udp_raw = pick("udp", "WEIGHTLESS_UDP")
    if udp_raw is None:
        udp: int | None = http_port
    elif udp_raw.strip().lower() == "off":
        udp = None
    else:
        udp = _int("--udp", udp_raw, 0, 65535)
    udp_interface = pick("udp_interface") or "::"
    try:
        ip_address(udp_interface)
    except ValueError:
        raise ConfigError(f"--udp-interface {udp_interface!r}: expected an IP address") from None
    return http, udp, udp_interface


def _database(pick: Pick, env: Mapping[str, str]) -> str:
    database = pick("database", "DATABASE_URL")
    if database is None and env.get("DB_PATH"):
        database = "sqlite:///" + env["DB_PATH"]
    database = database or "sqlite:///weightless.db"
    if database.startswith("postgres://"):
        database = "postgresql://" + database[len("postgres://") :]
    if database.startswith("sqlite:///"):
        if len(database) == len("sqlite:///"):
            raise ConfigError(f"--database {database!r}: missing the file path")
    elif not database.startswith("postgresql://"):
        raise ConfigError(
            f"--database {database!r}: expected sqlite:///path or postgresql://user@host/db"
        )
    return database


def _swarm_store(pick: Pick) -> str:
    store = (pick("swarm_store", "WEIGHTLESS_SWARM_STORE") or "memory").strip()
    if store.lower() == "memory":
        return "memory"
    try:
        redis_address(store)
    except ValueError as e:
        raise ConfigError(f"--swarm-store {store!r}: {e}") from None
    return store


def redis_address(url: str) -> tuple[str, int, int]:
    """(host, port, database) of ``redis://HOST[:PORT][/DB]``; ValueError says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError("expected memory or redis://HOST:PORT/DB")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    path = parts.path.strip("/")
    if path and not (path.isascii() and path.isdigit() and len(path) < 6):
        raise ValueError("the database must be a number (redis://HOST:PORT/0)")
    return parts.hostname, port, int(path or 0)


def _workers(pick: Pick, http: str, cpu_count: int) -> int:
    workers_raw = pick("workers", "WEIGHTLESS_WORKERS") or "1"
    if workers_raw.strip().lower() == "auto":
        workers = cpu_count
    else:
        workers = _int("--workers", workers_raw, 1)
    if workers > 1 and not _without_proxy(http).lower().startswith("tcp"):
        raise ConfigError(f"--http {http!r}: --workers above 1 needs a tcp: endpoint")
    return workers


def _intervals(pick: Pick) -> tuple[int, int]:
    interval = _int("--interval", pick("interval") or "1800", 1)
    min_interval = _int("--min-interval", pick("min_interval") or "900", 1)
    if min_interval > interval:
        raise ConfigError(f"--min-interval {min_interval}: must not exceed --interval {interval}")
    return interval, min_interval


def _rate_limit(pick: Pick) -> tuple[float, float]:
    rate = _float("--rate-limit", pick("rate_limit") or "5", 0)
    burst = _float("--rate-burst", pick("rate_burst") or "10", 0)
    if rate > 0 and burst < 1:
        raise ConfigError(f"--rate-burst {burst:g}: must be at least 1 while rate limiting is on")
    return rate, burst


def _trusted_proxies(options: Mapping[str, object]) -> tuple[IPv4Network | IPv6Network, ...]:
    proxies = options.get("trusted_proxy") or []
    try:
        return parse_networks(str(p) for p in proxies)  # type: ignore[attr-defined]
    except ValueError as e:
        raise ConfigError(f"--trusted-proxy: {e}") from None


def _connections(pick: Pick) -> tuple[float, int | None, int, int]:
    """--header-timeout, --max-connections (None: from the open-file limit),
    --max-connections-per-ip and --ipv6-prefix."""
    header_timeout = _float("--header-timeout", pick("header_timeout") or "10", 0)
    if header_timeout <= 0:
        raise ConfigError(f"--header-timeout {header_timeout:g}: must be above 0")
    max_connections_raw = pick("max_connections")
    max_connections = (
        None if max_connections_raw is None else _int("--max-connections", max_connections_raw, 1)
    )
    per_ip = _int("--max-connections-per-ip", pick("max_connections_per_ip") or "128", 0)
    ipv6_prefix = _int("--ipv6-prefix", pick("ipv6_prefix") or "64", 1, 128)
    return header_timeout, max_connections, per_ip, ipv6_prefix


def _hub_url(value: str | None) -> str | None:
    """``--hub-url`` / HUB_URL: an http(s) URL without a query, or unset."""
    if not value or not value.strip():
        return None
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(f"--hub-url {value!r}: expected http://host[:port][/path]")
    return url


def from_environ(options: Mapping[str, object]) -> Config:
    return build(options, os.environ, os.cpu_count() or 1)
