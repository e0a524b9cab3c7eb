"""The operations of the ``weightless`` command as Python calls: `create`, `publish`, `seed`,
`search`, `passkey`, `token`, `verify` (`get` is in `weightless.client.fetching`). Every
failure a user can cause (unknown name, unreachable tracker, bad key, disk full, bad torrent
file, timeout) raises `ClientError` with a one-line reason; Ctrl-C raises KeyboardInterrupt
after the transfer has stopped cleanly and saved its resume data."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import libtorrent as lt

from weightless.client import card as cards
from weightless.client import signatures
from weightless.client.errors import ClientError
from weightless.client.fetching import TrackerLike, registry_torrent
from weightless.client.fetching import tracker_of as _tracker
from weightless.client.pinning import pins_of
from weightless.client.registry import Entry, Registry, SearchPage
from weightless.client.resolve import resolve
from weightless.client.scrape import check_passkey
from weightless.client.torrents import Hashed, Made, create_torrent, load_torrent, read_torrent
from weightless.client.torrents import write_torrent as _write
from weightless.client.trackers import Tracker, env_passkey, make_passkey
from weightless.client.transfer import OnStatus, Settings, Transfer, percent
from weightless.wire import route
from weightless.wire.passkey import publisher_token

# A signer returns the .torrent bytes with a signature added outside ``info`` (the hashes do
# not change).
Signer = Callable[[bytes], bytes]

REGISTRY_FIELDS = (
    "name",
    "description",
    "publisher",
    "license",
    "category",
    "tags",
    "version",
)


@dataclass(frozen=True)
class Created:
    """A .torrent written by `create`: its path, hashes (hex) and its hybrid magnet link."""

    torrent: Path
    info_hash: str | None  # v2, 64 hex; None for a v1-only torrent
    v1_info_hash: str | None  # 40 hex; None for a v2-only torrent
    magnet: str
    made: Made

    def as_json(self) -> dict[str, Any]:
        return {
            "torrent": str(self.torrent),
            "info_hash": self.info_hash,
            "v1_info_hash": self.v1_info_hash,
            "magnet": self.magnet,
        }


def create(
    path: str | os.PathLike[str],
    *,
    tracker: TrackerLike | None = None,
    output: str | os.PathLike[str] | None = None,
    passkey: str | None = None,
    piece_length: int = 0,
    v1_only: bool = False,
    v2_only: bool = False,
    name: str | None = None,
    web_seeds: tuple[str, ...] | list[str] = (),
    private: bool = False,
    comment: str | None = None,
    source: str | None = None,
    on_hashed: Hashed | None = None,
    exclude: tuple[str, ...] | list[str] = (),
) -> Created:
    """Hash a file or folder into a hybrid v1+v2 .torrent (BEP 52 with BEP 47 pad files)
    announcing to ``tracker``'s HTTP and UDP URLs (with ``passkey`` in them if given), and
    write it to ``output`` (default ``NAME.torrent`` in the current folder).

    ``piece_length`` is in bytes (0: chosen from the size by libtorrent's rule);
    ``on_hashed(done_bytes, total_bytes)`` reports progress. A folder leaves out ``.git/``,
    ``.hg/``, ``.svn/``, ``__pycache__/``, ``.DS_Store``, ``Thumbs.db`` and what ``exclude``
    globs match (paths inside the folder, ``fnmatch`` rules); a symbolic link out of the
    folder is refused (`weightless.client.contents`). Raises `ClientError`.
    """
    created = _make(
        Path(path),
        _tracker(tracker),
        output,
        passkey=passkey,
        piece_length=piece_length,
        v1_only=v1_only,
        v2_only=v2_only,
        name=name,
        web_seeds=web_seeds,
        private=private,
        comment=comment,
        source=source,
        on_hashed=on_hashed,
        exclude=tuple(exclude),
    )
    _write(created.torrent, created.made.data)
    return created


def _make(
    path: Path,
    where: Tracker,
    output: str | os.PathLike[str] | None,
    *,
    passkey: str | None = None,
    web_seeds: tuple[str, ...] | list[str] = (),
    **options: Any,
) -> Created:
    """A new .torrent of ``path`` in memory, with the path it is to be written to; ``passkey``
    defaults to ``WL_PASSKEY``."""
    made = create_torrent(
        path,
        trackers=where.announce_urls(env_passkey(passkey)),
        web_seeds=tuple(web_seeds),
        **options,
    )
    target = Path(output) if output is not None else Path(f"{made.info.name}.torrent")
    return Created(
        target, made.info_hash, made.v1_info_hash, made.magnet(where.public_announce), made
    )


@dataclass(frozen=True)
class Published:
    """What `publish` registered: the .torrent (a path when one was written), its hashes, the
    magnet link and the registry entry as ``GET /api/registry`` returns it."""

    created: Created
    entry: Entry

    def as_json(self) -> dict[str, Any]:
        return {**self.created.as_json(), "entry": self.entry}

    def get_command(self, tracker: Tracker) -> str:
        """The command that fetches it."""
        return route.get_command(self.entry["info_hash"], tracker.url)


def publish(
    path_or_torrent: str | os.PathLike[str],
    *,
    tracker: TrackerLike | None = None,
    api_key: str | None = None,
    fields: dict[str, str] | None = None,
    sign: Signer | None = None,
    card: str | os.PathLike[str] | None = None,
    **create_options: Any,
) -> Published:
    """Register a torrent in the registry with ``POST /api/registry/torrent`` (the exact bytes),
    then its model card with ``PUT /api/registry/card``.

    Given a .torrent file, that file is uploaded as it is; given data, a .torrent is made of
    it as `create` does (``create_options`` are its keyword arguments: ``output``,
    ``passkey``, ``on_hashed``...). ``fields`` are the entry's ``name``, ``description``,
    ``publisher``, ``license``, ``category``, ``tags``, ``version``. ``card`` is a Markdown
    file (default: the folder's ``README.md``); its YAML front matter gives ``license`` and
    ``tags`` when ``fields`` do not. A hash already registered keeps every field not given
    (the entry is read and sent back merged). ``api_key`` (the registry key or a publisher
    token) defaults to ``WL_API_KEY``, then ``REGISTRY_KEY``. ``sign`` adds a signature.

    The local .torrent (a new one, or the given one once signed) is written only after the
    registry accepted it: a refused publish leaves the files as they were. Raises
    `ClientError` (401 for a bad key, 403 for another publisher's name, 409 for a blocked
    hash, ...).
    """
    where = _tracker(tracker)
    source = Path(path_or_torrent)
    given = {k: v for k, v in (fields or {}).items() if v}
    unknown = set(given) - set(REGISTRY_FIELDS)
    if unknown:
        raise ClientError(f"unknown registry fields: {', '.join(sorted(unknown))}")
    is_torrent = source.is_file() and source.suffix == ".torrent"
    card_path = Path(card) if card is not None else None if is_torrent else cards.find(source)
    found_card = cards.read(card_path) if card_path is not None else None
    if found_card is not None:  # the command line first, then the card's front matter
        from_card = {"license": found_card.license, "tags": found_card.tags}
        given = {**{k: v for k, v in from_card.items() if v}, **given}
    if is_torrent:
        made = load_torrent(source)
        created = Created(
            source, made.info_hash, made.v1_info_hash, made.magnet(where.public_announce), made
        )
    else:
        output = create_options.pop("output", None)
        created = _make(source, where, output, **create_options)
    data = original = created.made.data
    if sign is not None:
        data = sign(data)
        made = read_torrent(data, "the signed torrent")
        if made.registry_hash != created.made.registry_hash:
            raise ClientError("signing changed the info hash")
        created = Created(created.torrent, made.info_hash, made.v1_info_hash, created.magnet, made)
    key = api_key or os.environ.get("WL_API_KEY") or os.environ.get("REGISTRY_KEY")
    with Registry(where, key) as registry:
        before = registry.entry(created.made.registry_hash)
        answer = registry.upload(data, merge_fields(before, given))
        # accepted: the local file is the one registered (a new one, or signed in place)
        if not is_torrent or data != original:
            _write(created.torrent, data)
        info_hash = str(answer.get("info_hash") or created.made.registry_hash)
        if found_card is not None:
            registry.put_card(info_hash, found_card.text)
        entry = registry.entry(info_hash)
    if entry is None:
        raise ClientError("the registry accepted the torrent but does not show it")
    return Published(created, entry)


def merge_fields(entry: Entry | None, given: dict[str, str]) -> dict[str, str]:
    """The fields to register: those ``given``, and for the others the registered entry's
    (so that publishing again changes only what was asked)."""
    kept = {k: str(entry[k]) for k in REGISTRY_FIELDS if entry and entry.get(k) not in (None, "")}
    return {**kept, **given}


def _data_folder(data: Path, name: str) -> Path:
    """The save path of a torrent named ``name``: ``data`` holds it, or is it."""
    if (data / name).exists():
        return data
    if data.name == name and data.exists():
        return data.parent
    raise ClientError(
        f"{data} holds no {name!r} (give the folder that holds it, or the data itself)"
    )


def seed(
    torrent_or_hash: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    tracker: TrackerLike | None = None,
    passkey: str | None = None,
    settings: Settings | None = None,
    on_status: OnStatus | None = None,
    trust: bool = False,
    ready: Callable[[Transfer], None] | None = None,
) -> None:
    """Seed until interrupted (KeyboardInterrupt).

    ``torrent_or_hash`` is a .torrent file or anything `get` takes; ``data`` is the folder
    that holds the torrent's data, or the data itself. The data is checked first (`ClientError`
    if it does not match), unless ``trust`` (it was just hashed: libtorrent's seed mode checks
    each piece when first sent). ``ready`` is called once seeding starts.
    """
    where = _tracker(tracker)
    passkey = env_passkey(passkey)
    check_passkey(where, passkey)  # before the data is checked: the tracker's refusal, at once
    source = Path(torrent_or_hash)
    if source.is_file():
        made = load_torrent(source)
    else:
        with Registry(where) as registry:
            target = resolve(registry, str(torrent_or_hash))
            raw = registry_torrent(
                registry, target, pins_of(str(torrent_or_hash)), str(torrent_or_hash)
            )
        if raw is None:
            raise ClientError(f"the registry has no .torrent file of {target.key}")
        made = read_torrent(raw, "the registry's .torrent")
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(made.data)
    params.save_path = str(_data_folder(Path(data), made.info.name).resolve())
    # a seeder sends and never fetches: data that fails the check (or, in seed mode, a piece
    # that fails as it is sent) is an error, not something to download from the swarm into
    # the user's folder
    params.flags |= lt.torrent_flags.upload_mode
    if trust:
        params.flags |= lt.torrent_flags.seed_mode
    with Transfer(params, where.announce_urls(passkey), settings or Settings()) as transfer:
        while True:
            status = transfer.status()
            if transfer.failure:
                raise ClientError(transfer.failure)
            if status.state not in ("checking", "metadata"):
                break
            if on_status is not None:
                on_status(status)
            time.sleep(0.1)
        if status.state != "seeding":
            raise ClientError(
                f"the data in {params.save_path} does not match {made.info.name!r}: "
                f"{percent(status)} of it verifies"
            )
        if ready is not None:
            ready(transfer)
        transfer.seed_forever(on_status)


def search(
    query: str | None = None,
    *,
    tracker: TrackerLike | None = None,
    category: str | None = None,
    publisher: str | None = None,
    tags: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> SearchPage:
    """``GET /api/registry/search``: ``query`` matches names by substring (any case);
    ``category`` and ``publisher`` exactly; ``tags`` by substring; ``sort`` is
    ``created_at``, ``completions`` or ``seeders``; ``limit`` 1-100. Returns a `SearchPage`
    (``total``: every match; ``entries``: this page). Raises `ClientError`."""
    with Registry(_tracker(tracker)) as registry:
        return registry.search(
            query,
            category=category,
            publisher=publisher,
            tags=tags,
            sort=sort,
            limit=limit,
            offset=offset,
        )


def passkey(user_id: str, secret: str | None = None) -> str:
    """The passkey of ``user_id``: ``USER_ID.hex(HMAC-SHA256(secret, USER_ID))``, the secret
    defaulting to ``TRACKER_SECRET``. Raises `ClientError` without a secret or for a bad id."""
    return make_passkey(user_id, secret)


def token(publisher: str, registry_key: str | None = None) -> str:
    """The publisher token of ``publisher``: ``PUBLISHER.hex(HMAC-SHA256(REGISTRY_KEY,
    "publisher:" + PUBLISHER))``, sent as ``X-Weightless-Key`` to write that publisher's
    entries; the key defaults to ``REGISTRY_KEY``. Raises `ClientError` without a key or for
    an empty name."""
    key = registry_key or os.environ.get("REGISTRY_KEY")
    if not key:
        raise ClientError(
            "a publisher token needs the registry key: set REGISTRY_KEY or give --secret"
        )
    try:
        return publisher_token(key.encode("utf-8"), publisher)
    except ValueError as e:
        raise ClientError(str(e)) from None


def verify(
    what: str,
    *,
    tracker: TrackerLike | None = None,
    publisher: str | None = None,
    offline: bool = False,
) -> signatures.Verification:
    """Check the signature of a .torrent file (a path) or of a registry entry (a v2 or v1
    hash, a magnet link or ``PUBLISHER/NAME[@VERSION]``) and whether its key is trusted for the
    publisher (``publisher``, else the entry's). A file is checked offline; the registry is
    asked only for the trusted keys (not at all with ``offline``). Raises `ClientError` for
    a file that is not a torrent, an unknown entry or an unreachable tracker (for an entry)."""
    where = _tracker(tracker)
    path = Path(what)
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ClientError(f"cannot read {path}: {e.strerror or e}") from None
        found = signatures.verify_torrent(data, None, str(path))
        if offline or not found.valid:
            return found
        try:
            with Registry(where) as registry:
                info = read_torrent(data, str(path)).info
                entry = registry.entry(info.info_hash_hex)
                name = publisher or (entry or {}).get("publisher")
                trusted = registry.trusted_keys(name) if name else None
        except ClientError as e:
            return replace(found, reason=f"{found.reason} (trust not checked: {e})")
        return signatures.verify_torrent(data, trusted, str(path))
    with Registry(where) as registry:
        target = resolve(registry, what)
        entry = target.entry
        if entry is None:
            raise ClientError(f"{what} is not in the registry at {where.url}")
        torrent = registry.torrent(str(entry["info_hash"]))
        name = publisher or entry.get("publisher")
        trusted = registry.trusted_keys(name) if name else None
    return signatures.verify_entry(entry, torrent, trusted)
