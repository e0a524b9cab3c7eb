"""File names in .torrent files (weightless.torrent.metainfo): every spelling (``name``,
``name.utf-8``, ``path``, ``path.utf-8``, the v2 ``file tree``) refuses characters people must
not be shown and names that leave the download folder, and a safe spelling never hides an
unsafe one."""

from __future__ import annotations

from typing import Any

import pytest

from weightless.torrent.metainfo import TorrentError, parse_torrent

PIECE = 16384


def enc(obj: Any) -> bytes:
    """Bencode with keys sorted, as a strict reader wants them."""
    if isinstance(obj, int):
        return b"i%de" % obj
    if isinstance(obj, str):
        obj = obj.encode()
    if isinstance(obj, bytes):
        return b"%d:%s" % (len(obj), obj)
    if isinstance(obj, list):
        return b"l" + b"".join(enc(x) for x in obj) + b"e"
    return b"d" + b"".join(enc(k) + enc(obj[k]) for k in sorted(obj)) + b"e"


def single(name: Any, extra: dict[bytes, Any] | None = None) -> bytes:
    return enc(
        {
            b"info": {
                b"length": 3,
                b"name": name,
                b"piece length": PIECE,
                b"pieces": bytes(20),
                **(extra or {}),
            }
        }
    )


def multi(path: Any, extra: dict[bytes, Any] | None = None) -> bytes:
    files = [{b"length": 3, b"path": path, **(extra or {})}]
    return enc(
        {b"info": {b"files": files, b"name": b"root", b"piece length": PIECE, b"pieces": bytes(20)}}
    )


def tree(tree: dict[bytes, Any], name: bytes = b"root") -> bytes:
    info = {b"file tree": tree, b"meta version": 2, b"name": name, b"piece length": PIECE}
    return enc({b"info": info})


def leaf(length: int = 3) -> dict[bytes, Any]:
    return {b"": {b"length": length, b"pieces root": b"r" * 32}}


# How a bad name reaches a client, one builder per spelling: ``bad`` goes where the spelling is.
SPELLINGS = {
    "name": lambda bad: single(bad),
    "name.utf-8": lambda bad: single(b"ok", {b"name.utf-8": bad}),
    "name behind a safe name.utf-8": lambda bad: single(bad, {b"name.utf-8": b"ok"}),
    "v2 name": lambda bad: tree({b"f": leaf()}, name=bad),
    "path": lambda bad: multi([b"dir", bad]),
    "path.utf-8": lambda bad: multi([b"ok"], {b"path.utf-8": [b"dir", bad]}),
    "path behind a safe path.utf-8": lambda bad: multi([bad], {b"path.utf-8": [b"ok"]}),
    "file tree file": lambda bad: tree({bad: leaf()}),
    "file tree directory": lambda bad: tree({b"d": {bad: {b"f": leaf()}}}),
}

# Every class of unsafe character: C0 (escape, line breaks, tab, NUL), DEL, C1 (as UTF-8: CSI,
# OSC, NEL), the bidirectional embeddings and overrides, and the isolates.
UNSAFE = [
    "\x00",
    "\x01",
    "\x07",
    "\t",
    "\n",
    "\r",
    "\x1b",
    "\x1f",
    "\x7f",
    "\x80",
    "\x85",
    "\x9b",
    "\x9d",
    "\x9f",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
]
NOT_NAMES = [b"", b".", b"..", b"/etc", b"a/b", b"..\\x", b"a\\b", b"C:", b"c:evil", b"/"]


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
@pytest.mark.parametrize("char", UNSAFE, ids=lambda c: f"U+{ord(c):04X}")
def test_unsafe_characters_are_refused_in_every_spelling(spelling: str, char: str) -> None:
    bad = f"invoice{char}fdp.exe".encode()
    with pytest.raises(TorrentError, match=rf"U\+{ord(char):04X}|safe file name"):
        parse_torrent(SPELLINGS[spelling](bad))


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
@pytest.mark.parametrize("bad", NOT_NAMES, ids=repr)
def test_names_that_leave_the_folder_are_refused_in_every_spelling(
    spelling: str, bad: bytes
) -> None:
    # an empty key inside a file tree marks a file: {"": {"f": ...}} is a file without a length
    reason = "length" if (spelling, bad) == ("file tree directory", b"") else "safe file name|name"
    with pytest.raises(TorrentError, match=reason):
        parse_torrent(SPELLINGS[spelling](bad))


def test_the_spelling_is_named_in_the_reason() -> None:
    with pytest.raises(TorrentError, match=r"^name contains U\+202E"):
        parse_torrent(single("a\u202eb".encode(), {b"name.utf-8": b"ok"}))
    with pytest.raises(TorrentError, match=r"^name\.utf-8 contains U\+202E"):
        parse_torrent(single(b"ok", {b"name.utf-8": "a\u202eb".encode()}))
    with pytest.raises(TorrentError, match=r"^file 0 path component '\.\.'"):
        parse_torrent(multi([b".."], {b"path.utf-8": [b"ok"]}))
    with pytest.raises(TorrentError, match=r"^file 0 path\.utf-8 component '\.\.'"):
        parse_torrent(multi([b"ok"], {b"path.utf-8": [b".."]}))


@pytest.mark.parametrize(
    "name",
    [
        "café",
        "モデル",
        "نموذج",
        "модель-7b",
        "weights (v2).safetensors",
        "a b",
        "emoji-🚀",
        "model:v2",
    ],
)
def test_safe_names_in_any_script_are_kept(name: str) -> None:
    raw = name.encode()
    assert parse_torrent(single(raw)).name == name
    assert parse_torrent(multi([b"d", raw])).files == [(f"d/{name}", 3)]
    assert parse_torrent(tree({raw: leaf()})).files == [(name, 3)]


def test_a_legacy_encoded_spelling_beside_utf8_is_checked_byte_by_byte() -> None:
    legacy = {b"name.utf-8": "café".encode()}
    assert parse_torrent(single(b"caf\xe9", legacy)).name == "café"  # Latin-1, harmless
    assert parse_torrent(multi([b"caf\xe9"], {b"path.utf-8": [b"ok"]})).files == [("ok", 3)]
    for bad in (b"caf\x9b\xe9", b"\xe9\x1b]52;c;", b"..", b"\xe9/..", b"\xe9\\x", b"\xe9\x7f"):
        with pytest.raises(TorrentError, match="name"):
            parse_torrent(single(bad, legacy))
        with pytest.raises(TorrentError, match="path"):
            parse_torrent(multi([bad], {b"path.utf-8": [b"ok"]}))
    with pytest.raises(TorrentError, match="UTF-8"):  # no UTF-8 spelling beside it: refused
        parse_torrent(single(b"caf\xe9"))


@pytest.mark.parametrize("bad", [[b"a"], 5, [[b"a"]], [5], {}], ids=repr)
def test_a_name_of_the_wrong_shape_is_refused_in_either_spelling(bad: Any) -> None:
    with pytest.raises(TorrentError, match="name"):
        parse_torrent(single(bad, {b"name.utf-8": b"ok"}))
    with pytest.raises(TorrentError, match="name"):
        parse_torrent(single(b"ok", {b"name.utf-8": bad}))


@pytest.mark.parametrize("bad", [b"x", 5, [[b"a"]], [5], [], {}], ids=repr)
def test_a_path_of_the_wrong_shape_is_refused_in_either_spelling(bad: Any) -> None:
    with pytest.raises(TorrentError, match="path"):
        parse_torrent(multi([b"ok"], {b"path.utf-8": bad}))
    with pytest.raises(TorrentError, match="path"):
        parse_torrent(multi(bad, {b"path.utf-8": [b"ok"]}))
