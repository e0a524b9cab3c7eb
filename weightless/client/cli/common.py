"""What the subcommands share: tracker options, output (human or ``--json``), progress bars
on stderr, and errors as one line with a non-zero status."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from weightless.client.errors import ClientError
from weightless.client.trackers import DEFAULT_TRACKER, Tracker, pick_passkey
from weightless.client.transfer import Settings, Status

F = TypeVar("F", bound=Callable[..., Any])
REFRESH = 0.1  # seconds between redraws of a progress bar

stderr = Console(stderr=True, highlight=False)


def fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def _udp_port(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if value.lower() == "off":
        return 0
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise fail(f"--udp-port must be a port number or 'off', not {value!r}")
    return int(value)


def tracker_options(f: F) -> F:
    """--tracker, --udp-port, --announce-via, --json."""
    f = click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead."
    )(f)
    f = click.option(
        "--announce-via",
        envvar="WL_ANNOUNCE_VIA",
        default="http,udp",
        show_default=True,
        metavar="PROTOCOLS",
        help="Announce protocols, comma-separated: http, udp or both (env WL_ANNOUNCE_VIA).",
    )(f)
    f = click.option(
        "--udp-port",
        envvar="WL_UDP_PORT",
        metavar="PORT|off",
        help=(
            "The tracker's UDP (BEP 15) port (env WL_UDP_PORT). "
            "[default: the HTTP port, as the tracker does]"
        ),
    )(f)
    f = click.option(
        "--tracker",
        envvar="WL_TRACKER",
        default=DEFAULT_TRACKER,
        show_default=True,
        metavar="URL",
        help="The tracker's base URL (env WL_TRACKER).",
    )(f)
    return f


def make_tracker(tracker: str, udp_port: str | None, announce_via: str) -> Tracker:
    protocols = tuple(p.strip().lower() for p in announce_via.split(",") if p.strip())
    return Tracker(tracker, _udp_port(udp_port), protocols)


def passkey_options(f: F) -> F:
    """--passkey, --user-id, --secret."""
    f = click.option(
        "--secret",
        envvar="TRACKER_SECRET",
        metavar="SECRET",
        help="The tracker's TRACKER_SECRET, to make a passkey from --user-id (env TRACKER_SECRET).",
    )(f)
    f = click.option(
        "--user-id", metavar="USER_ID", help="Make the passkey of this user (needs the secret)."
    )(f)
    f = click.option(
        "--passkey",
        envvar="WL_PASSKEY",
        metavar="PASSKEY",
        help="Your passkey (USER_ID.SIGNATURE) for a tracker with TRACKER_SECRET (env WL_PASSKEY).",
    )(f)
    return f


def the_passkey(passkey: str | None, user_id: str | None, secret: str | None) -> str | None:
    return pick_passkey(passkey, user_id, secret)


_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?B)?(?:/s)?")


def _rate(value: str | None, what: str) -> int:
    if not value:
        return 0
    match = _RATE.fullmatch(value.strip())
    if not match:
        raise fail(f"{what} must be bytes per second such as 500k, 20M, 1.5G, not {value!r}")
    scale = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def transfer_options(f: F) -> F:
    """--listen, --dht, --download-limit, --upload-limit."""
    f = click.option(
        "--upload-limit", metavar="RATE", help="Most bytes/s to send (500k, 20M). [default: none]"
    )(f)
    f = click.option(
        "--download-limit",
        metavar="RATE",
        help="Most bytes/s to receive (500k, 20M). [default: none]",
    )(f)
    f = click.option(
        "--dht",
        is_flag=True,
        help="Also find peers through the DHT, local discovery and peer exchange "
        "(off by default: peers come only from this tracker).",
    )(f)
    f = click.option(
        "--listen",
        envvar="WL_LISTEN",
        metavar="ADDR:PORT,...",
        help="Where to accept peers, as libtorrent's listen_interfaces (env WL_LISTEN). "
        "[default: 0.0.0.0:6881,[::]:6881]",
    )(f)
    return f


def make_settings(
    listen: str | None, dht: bool, download_limit: str | None, upload_limit: str | None
) -> Settings:
    return Settings(
        listen=listen,
        dht=dht,
        download_limit=_rate(download_limit, "--download-limit"),
        upload_limit=_rate(upload_limit, "--upload-limit"),
    )


def emit(as_json: bool, obj: dict[str, Any] | str, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False))
    else:
        human()


def size(n: int | None) -> str:
    """A size in decimal units (kB, MB, GB), as disks and downloads are counted."""
    return "" if n is None else decimal(int(n))


def binary(n: int) -> str:
    """A power-of-two size such as a piece length: 256 KiB, 4 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or n % 1024:
            return f"{n} {unit}"
        n //= 1024
    return f"{n} TiB"


@contextmanager
def hashing_bar(name: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr for hashing: bytes hashed, rate, ETA. Redrawn from the
    callback (libtorrent holds the GIL while it hashes, so no thread could draw it)."""
    progress = Progress(
        TextColumn("hashing {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        auto_refresh=False,
        transient=False,
        disable=not stderr.is_terminal,
    )
    task = progress.add_task(name, total=None)
    last = [0.0]

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)
        now = time.monotonic()
        if now - last[0] >= REFRESH or done >= total:
            last[0] = now
            progress.refresh()

    with progress:
        yield update


@contextmanager
def transfer_bar(verb: str) -> Iterator[Callable[[Status], None]]:
    """A progress bar on stderr for a transfer: verified bytes, rate and ETA (rich's estimate
    over the last 30 s of updates), peers, and the upload while seeding."""
    progress = Progress(
        TextColumn("{task.fields[state]} {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[peers]}"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[sent]}"),
        console=stderr,
        auto_refresh=False,
        disable=not stderr.is_terminal,
    )
    task = progress.add_task("", total=None, state=verb, peers="", sent="")
    labels = {"metadata": "fetching metadata of", "checking": "checking"}

    def update(s: Status) -> None:
        state = labels.get(s.state, "downloading" if s.state != "seeding" else "seeding")
        if s.state == "seeding" and verb != "seeding" and not s.uploaded:
            state = "verified"
        peers = f"{s.peers} peer{'s' if s.peers != 1 else ''}"
        if s.tracker_error and not s.peers:
            peers += f" (tracker: {s.tracker_error})"
        sent = (
            f"↑ {decimal(int(s.upload_rate))}/s, {decimal(s.uploaded)} sent" if s.uploaded else ""
        )
        progress.update(
            task,
            description=s.name,
            completed=s.done,
            total=s.total or None,
            state=state,
            peers=peers,
            sent=sent,
        )
        progress.refresh()

    with progress:
        yield update


def run(call: Callable[[], Any]) -> Any:
    """Run an API call, turning a ClientError or OSError into a one-line error."""
    try:
        return call()
    except ClientError as e:
        raise fail(str(e)) from None
    except OSError as e:
        raise fail(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}") from None


def interrupted(message: str) -> NoReturn:
    stderr.print(message)
    sys.exit(130)
