from ipaddress import ip_network
from typing import Any

import pytest

from weightless.config import ConfigError, build, http_address
from weightless.tap import Options


def config(args: list[str] | None = None, env: dict[str, str] | None = None) -> Any:
    options = Options()
    options.parseArgs = lambda *a: None  # type: ignore[method-assign]
    options.postOptions = lambda: None  # type: ignore[method-assign]
    options.parseOptions(args or [])
    given = {k.replace("-", "_"): v for k, v in options.items()}
    return build(given, env or {}, cpu_count=2)


def test_defaults() -> None:
    c = config()
    assert (c.http, c.udp, c.udp_interface) == ("tcp:8080", 8080, "::")
    assert c.database == "sqlite:///weightless.db" and c.sqlite_path == "weightless.db"
    assert (c.workers, c.open, c.max_peers) == (1, False, 50)
    assert (c.interval, c.min_interval, c.peer_ttl) == (1800, 900, 3600)
    assert (c.rate_limit, c.rate_burst) == (5.0, 10.0)
    assert c.tracker_secret is None and c.registry_key is None


def test_go_tracker_env_names() -> None:
    c = config(
        env={
            "PORT": "9000",
            "DB_PATH": "/var/lib/w.db",
            "MAX_PEERS": "30",
            "OPEN_TRACKER": "true",
            "TRACKER_SECRET": "s",
            "REGISTRY_KEY": "k",
        }
    )
    assert (c.http, c.udp) == ("tcp:9000", 9000)
    assert c.sqlite_path == "/var/lib/w.db"
    assert (c.max_peers, c.open, c.tracker_secret, c.registry_key) == (30, True, b"s", "k")


def test_command_line_beats_env() -> None:
    c = config(
        [
            "--http",
            "tcp:7000:interface=127.0.0.1",
            "--max-peers",
            "10",
            "--database",
            "postgres://u@h/db",
            "--udp",
            "off",
        ],
        env={
            "WEIGHTLESS_HTTP": "tcp:1",
            "PORT": "2",
            "MAX_PEERS": "30",
            "DATABASE_URL": "sqlite:///x.db",
            "WEIGHTLESS_UDP": "9",
        },
    )
    assert c.http == "tcp:7000:interface=127.0.0.1"
    assert c.max_peers == 10 and c.udp is None
    assert c.database == "postgresql://u@h/db" and c.sqlite_path is None


def test_udp_defaults_to_the_http_port_and_repeatable_options() -> None:
    c = config(
        [
            "--http",
            "tcp:port=7001",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "::1",
            "--cors-origin",
            "https://a.example",
        ]
    )
    assert c.udp == 7001
    assert c.trusted_proxies == (ip_network("10.0.0.0/8"), ip_network("::1/128"))
    assert c.cors_origins == ("https://a.example",)


def test_workers_auto_is_the_cpu_count() -> None:
    assert config(["--workers", "auto"]).workers == 2
    assert config(env={"WEIGHTLESS_WORKERS": "3"}).workers == 3
    with pytest.raises(ConfigError, match="tcp: endpoint"):
        config(["--workers", "2", "--http", "ssl:8443"])


def test_http_address_of_an_endpoint() -> None:
    assert http_address("tcp:8080") == ("0.0.0.0", 8080)
    assert http_address(r"tcp:port=81:interface=\:\:1") == ("::1", 81)
    assert http_address("tcp:0:interface=127.0.0.1") == ("127.0.0.1", 0)
    assert http_address("tcp6:8080") == ("::", 8080)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http", "tcp:70000"], "port"),
        (["--http", "unix:/tmp/x"], "endpoint"),
        (["--database", "ftp://x"], "sqlite:///path or postgresql://"),
        (["--database", "sqlite:///"], "path"),
        (["--rate-limit", "-1"], "at least 0"),
        (["--rate-limit", "nan"], "finite"),
        (["--workers", "0"], "at least 1"),
        (["--max-peers", "abc"], "whole number"),
        (["--peer-ttl", "0"], "at least 1"),
        (["--interval", "10", "--min-interval", "20"], "must not exceed"),
        (["--trusted-proxy", "not-an-ip"], "trusted-proxy"),
        (["--udp", "70000"], "--udp"),
    ],
)
def test_bad_values_are_one_line_errors(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        config(args)
    assert "\n" not in str(info.value)


def test_bad_env_values_too() -> None:
    with pytest.raises(ConfigError, match="OPEN_TRACKER"):
        config(env={"OPEN_TRACKER": "maybe"})
    with pytest.raises(ConfigError, match="PORT"):
        config(env={"PORT": "http"})


def test_udp_interface_must_be_an_address() -> None:
    assert config(["--udp-interface", "127.0.0.1"]).udp_interface == "127.0.0.1"
    with pytest.raises(ConfigError, match="udp-interface"):
        config(["--udp-interface", "localhost:1"])


def test_connection_limits_and_timeouts() -> None:
    c = config()
    assert (c.header_timeout, c.max_connections, c.max_connections_per_ip) == (10.0, None, 128)
    assert c.ipv6_prefix == 64 and not c.proxy_protocol
    c = config(
        [
            "--header-timeout",
            "2.5",
            "--max-connections",
            "5000",
            "--max-connections-per-ip",
            "0",
            "--ipv6-prefix",
            "56",
        ]
    )
    assert (c.header_timeout, c.max_connections, c.max_connections_per_ip) == (2.5, 5000, 0)
    assert c.ipv6_prefix == 56


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--header-timeout", "0"], "--header-timeout"),
        (["--header-timeout", "-1"], "--header-timeout"),
        (["--header-timeout", "nan"], "--header-timeout"),
        (["--header-timeout", "soon"], "--header-timeout"),
        (["--max-connections", "0"], "--max-connections"),
        (["--max-connections", "many"], "--max-connections"),
        (["--max-connections-per-ip", "-1"], "--max-connections-per-ip"),
        (["--ipv6-prefix", "0"], "--ipv6-prefix"),
        (["--ipv6-prefix", "129"], "--ipv6-prefix"),
        (["--ipv6-prefix", "/64"], "--ipv6-prefix"),
    ],
)
def test_bad_limits_are_one_line_errors(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(args)


def test_proxy_protocol_endpoint() -> None:
    c = config(["--http", "haproxy:tcp:8081:interface=127.0.0.1"])
    assert c.proxy_protocol and c.udp == 8081
    assert http_address(c.http) == ("127.0.0.1", 8081)
    assert config(["--http", "haproxy:tcp:8081", "--workers", "3"]).workers == 3
    with pytest.raises(ConfigError, match="--http"):
        config(["--http", "haproxy:unix:/tmp/x"])


def test_listen_backlog_is_raised_unless_given() -> None:
    from weightless.config import with_backlog

    assert with_backlog("tcp:8080") == "tcp:8080:backlog=1024"
    assert with_backlog("haproxy:tcp:8080:interface=127.0.0.1") == (
        "haproxy:tcp:8080:interface=127.0.0.1:backlog=1024"
    )
    assert with_backlog("tcp:8080:backlog=10") == "tcp:8080:backlog=10"


# -- numbers in options and env vars are parsed strictly: a malformed one is the one-line
# start error, never a traceback


BAD = ["9" * 5000, "--5", "+5", "١٢", "1e3", "0x10", "5.0", "-"]


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("option", ["--max-peers", "--max-swarms", "--peer-ttl", "--workers"])
def test_malformed_numbers_are_one_line_errors(option: str, value: str) -> None:
    with pytest.raises(ConfigError, match=option) as info:
        config([option, value])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", BAD)
def test_malformed_env_numbers_too(value: str) -> None:
    with pytest.raises(ConfigError):
        config(env={"PORT": value or "x", "MAX_PEERS": value or "x"})


def test_max_swarms_option() -> None:
    assert config([]).max_swarms == 1_000_000
    assert config(["--max-swarms", "5"]).max_swarms == 5
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="max-swarms"):
            config(["--max-swarms", bad])


def test_swarm_store_memory_by_default_or_a_redis_url() -> None:
    assert config([]).swarm_store == "memory"
    assert config(["--swarm-store", "MEMORY"]).swarm_store == "memory"
    url = "redis://10.0.0.5:6380/2"
    assert config(["--swarm-store", url]).swarm_store == url
    assert config([], {"WEIGHTLESS_SWARM_STORE": url}).swarm_store == url
    assert config(["--swarm-store", "memory"], {"WEIGHTLESS_SWARM_STORE": url}).swarm_store == (
        "memory"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://", "expected memory or redis://HOST:PORT/DB"),
        ("http://host:6379", "expected memory or redis://HOST:PORT/DB"),
        ("redis://host:99999/0", "the port must be a number"),
        ("redis://host:6379/x", "the database must be a number"),
        ("redis://host:6379/" + "9" * 5000, "the database must be a number"),
        ("disk", "expected memory or redis"),
    ],
)
def test_a_bad_swarm_store_is_a_one_line_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        config(["--swarm-store", url])
    assert "\n" not in str(info.value) and "--swarm-store" in str(info.value)


def test_hub_url_from_the_option_or_hub_url() -> None:
    assert config().hub_url is None
    assert config(env={"HUB_URL": "https://hub.example/"}).hub_url == "https://hub.example"
    c = config(["--hub-url", "http://10.0.0.9:8000/base"], {"HUB_URL": "http://other"})
    assert c.hub_url == "http://10.0.0.9:8000/base"


@pytest.mark.parametrize("url", ["ftp://hub", "hub.example", "http://", "http://h/?key=1"])
def test_a_bad_hub_url_is_a_one_line_error(url: str) -> None:
    with pytest.raises(ConfigError, match="--hub-url") as info:
        config(["--hub-url", url])
    assert "\n" not in str(info.value)
