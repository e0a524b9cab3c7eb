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
from rich.progress import BarColumn, Progress, TextColumn

from weightless.client.cli import progress as lines
from weightless.client.errors import ClientError
from weightless.client.trackers import DEFAULT_TRACKER, Tracker, hide_passkeys, pick_passkey
from weightless.client.transfer import Settings, Status
from weightless.wire.text import printable
from weightless.wire.units import human_rate, human_size

F = TypeVar("F", bound=Callable[..., Any])
REFRESH = 0.1  # seconds between redraws of a progress bar

# no markup: names from a registry or a torrent are shown as they are (escaped), never read
# as rich's [link=...] or [style] tags; soft_wrap: a message is one line whatever its length
# (rich would break it at 80 columns when stderr is not a terminal, or at the window's width)
stderr = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def fail(message: str) -> click.ClickException:
    """One line for stderr, a registry's or tracker's words in it escaped (`printable`), and
    no passkey in it in full."""
    return click.ClickException(printable(hide_passkeys(message)))


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
    """Bytes per second in binary units, as the command shows them: 500k is 500 KiB/s."""
    if not value:
        return 0
    match = _RATE.fullmatch(value.strip())
    if not match:
        raise fail(f"{what} must be bytes per second such as 500k, 20M, 1.5G, not {value!r}")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def transfer_options(f: F) -> F:
    """--listen, --dht, --download-limit, --upload-limit."""
    f = click.option(
        "--upload-limit",
        metavar="RATE",
        help="Most bytes/s to send (500k = 500 KiB/s, 20M = 20 MiB/s). [default: none]",
    )(f)
    f = click.option(
        "--download-limit",
        metavar="RATE",
        help="Most bytes/s to receive (500k = 500 KiB/s, 20M = 20 MiB/s). [default: none]",
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


@contextmanager
def hashing_bar(name: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr for hashing: bytes hashed of the total, rate, time left.
    Redrawn from the callback (libtorrent holds the GIL while it hashes, so no thread could
    draw it)."""
    progress = Progress(
        TextColumn("hashing {task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.fields[numbers]}", markup=False),
        console=stderr,
        auto_refresh=False,
        transient=False,
        disable=not stderr.is_terminal,
    )
    task = progress.add_task(printable(name), total=None, numbers="")
    started = time.monotonic()
    last = [0.0]

    def update(done: int, total: int) -> None:
        now = time.monotonic()
        rate = done / (now - started) if now > started else 0.0
        eta = (total - done) / rate if rate > 0 else None
        numbers = f"{human_size(done)} of {human_size(total)}  {human_rate(rate)}"
        if eta is not None and done < total:
            numbers += f"  {lines.time_left(eta)}"
        progress.update(task, completed=done, total=total, numbers=numbers)
        if now - last[0] >= REFRESH or done >= total:
            last[0] = now
            progress.refresh()

    with progress:
        yield update


class TransferBar:
    """A status line on stderr for a transfer (see `progress`): call it with each `Status`.
    `finish` ends the line (so that what follows, the data's path, has a line of its own);
    `resume` starts it again (seeding after a download)."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.progress = Progress(
            TextColumn("{task.fields[state]} {task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[numbers]}", markup=False),
            console=stderr,
            auto_refresh=False,
            disable=not stderr.is_terminal,
        )
        self.task = self.progress.add_task("", total=None, state=verb, numbers="")
        self.last_peer = time.monotonic()
        self.live = False

    def __call__(self, s: Status) -> None:
        now = time.monotonic()
        if s.peers:
            self.last_peer = now
        self.progress.update(
            self.task,
            description=printable(s.name),
            completed=s.done,
            total=s.total or None,
            state=lines.state(s, self.verb),
            numbers=lines.numbers(s, now - self.last_peer, self.verb),
        )
        if self.live:
            self.progress.refresh()

    def resume(self) -> None:
        if not self.live:
            self.live = True
            self.progress.start()

    def finish(self) -> None:
        if self.live:
            self.live = False
            self.progress.stop()


@contextmanager
def transfer_bar(verb: str) -> Iterator[TransferBar]:
    """A `TransferBar`, drawn while inside."""
    bar = TransferBar(verb)
    bar.resume()
    try:
        yield bar
    finally:
        bar.finish()


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
