"""Parse untrusted .torrent files (BEP 3, 47, 52) into what the registry stores and shows.

Pure: no I/O. The info hashes are taken over the exact bytes of the ``info`` value as they appear
in the file, never over a re-encoding: a re-encoding can differ (unsorted keys, say) and would
give a hash that no client announces. Anything malformed raises `TorrentError` with a reason that
can be shown to the uploader; no other exception escapes `parse_torrent`.

The bytes are read by the strict decoder of `weightless.torrent.bdecode`; magnet links are
built by `weightless.torrent.magnet`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from weightless.torrent import signing
from weightless.torrent.bdecode import BdecodeError, Spans, bdecode
from weightless.torrent.signing import BadKey, BadSignature, Signature
from weightless.wire.numbers import INT64_MAX
from weightless.wire.text import describe, unsafe_char

MAX_TREE_DEPTH = 64  # directories in one file path
MAX_FILES = 100_000  # file entries, pad files included
MAX_TORRENT_BYTES = 16 << 20  # the largest .torrent file the registry takes, and the client reads
MAX_ITEMS = 40 * MAX_FILES  # bencode values: room for MAX_FILES in a hybrid; caps time, memory
MIN_V2_PIECE_LENGTH = 16 * 1024
MAX_SIGNATURES = 16  # signature objects in one file (each costs about 0.1-0.4 ms to verify)

_UNSAFE = re.compile(r"[/\\]|^[A-Za-z]:")  # path separators, a Windows drive

FileList = list[tuple[tuple[str, ...], int, bool]]  # path in the torrent, length, is a pad file


class TorrentError(ValueError):
    """The .torrent file is malformed; the message says why."""


class BadPublicKey(TorrentError):
    """A signature in the file names a ``pub`` that is not an acceptable Ed25519 public key
    (``weightless.torrent.signing.check_public_key``): the file is refused, not merely
    unverified."""


@dataclass(frozen=True)
class TorrentInfo:
    """What the registry needs from a .torrent: hashes and the /api/registry/meta view."""

    v1_info_hash: bytes | None
    v2_info_hash: bytes | None
    name: str
    piece_length: int
    piece_count: int
    total_size: int
    files: list[tuple[str, int]]
    signatures: tuple[Signature, ...] = ()  # each verified against both info hashes

    @property
    def info_hash_hex(self) -> str:
        """The registry key: the v2 hash, or the v1 hash of a v1-only torrent."""
        digest = self.v2_info_hash or self.v1_info_hash
        assert digest is not None
        return digest.hex()

    @property
    def v1_info_hash_hex(self) -> str | None:
        return self.v1_info_hash.hex() if self.v1_info_hash else None

    def meta(self) -> dict[str, Any]:
        """The JSON body of GET /api/registry/meta."""
        return {
            "name": self.name,
            "piece_length": self.piece_length,
            "piece_count": self.piece_count,
            "total_size": self.total_size,
            "files": [{"path": path, "length": length} for path, length in self.files],
            "signed": bool(self.signatures),
            "public_keys": [s.public_key_hex for s in self.signatures],
        }


def _component(raw: object, what: str) -> str:
    """One file or directory name; refuse anything a client could be tricked with: not UTF-8,
    empty, ``.``, ``..``, a path separator, a drive (``C:``), or a character people must not
    be shown (``weightless.wire.text.unsafe_char``: controls, bidirectional overrides)."""
    if not isinstance(raw, bytes):
        raise TorrentError(f"{what} is not a string")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TorrentError(f"{what} is not valid UTF-8") from None
    if text in ("", ".", "..") or _UNSAFE.search(text):
        raise TorrentError(f"{what} {text!r} is not a safe file name")
    char = unsafe_char(text)
    if char is not None:
        raise TorrentError(f"{what} contains {describe(char)}: not a safe file name")
    return text


def _legacy_component(raw: object, what: str) -> None:
    """The legacy spelling of a name beside its ``.utf-8`` one: checked as `_component` when it
    is UTF-8. In another encoding (never empty, ``.`` or ``..``: those are UTF-8) its bytes are
    read as Latin-1, where 0x80-0x9f are the C1 controls, and checked the same way."""
    if isinstance(raw, bytes) and not _is_utf8(raw):
        text = raw.decode("latin-1")
        if _UNSAFE.search(text) or unsafe_char(text) is not None:
            raise TorrentError(f"{what} {raw!r} is not a safe file name")
        return
    _component(raw, what)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _spelled(d: dict[bytes, Any], key: bytes, what: str) -> tuple[object, str]:
    """(the value of ``key.utf-8`` when there is one, else of ``key``; which of the two), so
    that some creators' ``.utf-8`` spelling beside a legacy-encoded ``key`` is the one shown.
    Both spellings are checked by the caller: a safe one must not hide an unsafe other."""
    utf8 = key + b".utf-8"
    if utf8 in d:
        return d[utf8], f"{what}{utf8.decode()}"
    return d.get(key), f"{what}{key.decode()}"


def _name(info: dict[bytes, Any]) -> str:
    """The torrent's name, from ``name.utf-8`` or ``name``; every spelling present checked."""
    value, spelling = _spelled(info, b"name", "")
    name = _component(value, spelling)
    if spelling != "name" and b"name" in info:
        _legacy_component(info[b"name"], "name")
    return name


def _path(entry: dict[bytes, Any], what: str) -> tuple[str, ...]:
    """A v1 file's path, from ``path.utf-8`` or ``path``; every spelling present checked."""
    value, spelling = _spelled(entry, b"path", f"{what} ")
    parts = _path_list(value, spelling, _component)
    if spelling.endswith(".utf-8") and b"path" in entry:
        _path_list(entry[b"path"], f"{what} path", _legacy_component)
    return tuple(str(p) for p in parts)


def _path_list(value: object, what: str, check: Callable[[object, str], object]) -> list[object]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_TREE_DEPTH:
        raise TorrentError(f"{what} must be a list of 1 to {MAX_TREE_DEPTH} names")
    return [check(p, f"{what} component") for p in value]


def _length(raw: object, what: str) -> int:
    if not isinstance(raw, int) or not 0 <= raw <= INT64_MAX:
        raise TorrentError(f"{what} must be a non-negative integer")
    return raw


def _is_pad(entry: dict[bytes, Any], what: str) -> bool:
    """BEP 47: an ``attr`` containing 'p' marks padding that no one stores or lists."""
    attr = entry.get(b"attr", b"")
    if not isinstance(attr, bytes):
        raise TorrentError(f"{what} attr is not a string")
    return b"p" in attr


def _v1_files(info: dict[bytes, Any], name: str) -> FileList:
    """The files of a v1 info dict; a single-file torrent's one file is named after it."""
    if b"files" not in info:
        return [((name,), _length(info.get(b"length"), "length"), _is_pad(info, "torrent"))]
    if b"length" in info:
        raise TorrentError("info has both 'length' and 'files'")
    entries = info[b"files"]
    if not isinstance(entries, list) or not entries:
        raise TorrentError("'files' must be a non-empty list")
    if len(entries) > MAX_FILES:
        raise TorrentError(f"more than {MAX_FILES} files")
    files: FileList = []
    for i, entry in enumerate(entries):
        what = f"file {i}"
        if not isinstance(entry, dict):
            raise TorrentError(f"{what} is not a dictionary")
        size = _length(entry.get(b"length"), f"{what} length")
        files.append((_path(entry, what), size, _is_pad(entry, what)))
    return files


def _v2_files(tree: object, prefix: tuple[str, ...], out: FileList) -> None:
    """Walk a BEP 52 file tree depth first: {name: {name: ... {"": {length, pieces root}}}}."""
    where = "/".join(prefix) or "file tree"
    if not isinstance(tree, dict) or not tree:
        raise TorrentError(f"{where} must be a non-empty dictionary")
    if len(prefix) >= MAX_TREE_DEPTH:
        raise TorrentError(f"file tree deeper than {MAX_TREE_DEPTH} directories")
    for key, node in tree.items():
        path = (*prefix, _component(key, "file tree name"))
        if not isinstance(node, dict) or b"" not in node:
            _v2_files(node, path, out)
            continue
        leaf, what = node[b""], "/".join(path)
        if len(node) != 1:
            raise TorrentError(f"file tree entry {what} is both a file and a directory")
        if not isinstance(leaf, dict):
            raise TorrentError(f"file tree entry {what} is not a dictionary")
        if len(out) >= MAX_FILES:
            raise TorrentError(f"more than {MAX_FILES} files")
        size, pad = _length(leaf.get(b"length"), f"{what} length"), _is_pad(leaf, what)
        root = leaf.get(b"pieces root")
        if size and not pad and not (isinstance(root, bytes) and len(root) == 32):
            raise TorrentError(f"{what} needs a 32 byte 'pieces root'")
        out.append((path, size, pad))


def _v2_layout(files: FileList, piece_length: int) -> FileList:
    """The files of a v2 file tree as libtorrent lays them out, and a hybrid's v1 file list
    must spell them: in tree order, each followed by a pad file (BEP 47) up to the next piece
    boundary, the last one too."""
    out: FileList = []
    for path, size, pad in files:
        out.append((path, size, pad))
        if size % piece_length:
            gap = piece_length - size % piece_length
            out.append(((".pad", str(gap)), gap, True))
    return out


def _without_tail_padding(files: FileList) -> FileList:
    """``files`` without the pad file after the last file that holds data (empty files after
    it stay): hybrids made before libtorrent wrote that pad leave it out, and it takes both."""
    for i in range(len(files) - 1, -1, -1):
        _, size, pad = files[i]
        if size == 0:
            continue
        return files[:i] + files[i + 1 :] if pad else files
    return files


def _hybrid_mismatch(v1: FileList, v2: FileList, piece_length: int) -> str | None:
    """Why a hybrid's v1 file list and v2 file tree describe different files, or None. The
    rule is libtorrent's (``torrent_info``, ``files_compatible``): as many entries (the v2
    layout's tail padding dropped when the v1 list has one entry fewer), the same total, and
    at each index a file that holds data (not a pad file, not empty) on one side only if on
    both, with the same path, length and offset; pad files and empty files match each
    other."""
    layout = _v2_layout(v2, piece_length)
    if len(layout) == len(v1) + 1:
        layout = _without_tail_padding(layout)
    if len(v1) != len(layout):
        return (
            f"the v1 file list has {len(v1)} entries where the v2 file tree needs "
            f"{len(layout)} (pad files included)"
        )
    offset1 = offset2 = 0
    for i, ((path1, size1, pad1), (path2, size2, pad2)) in enumerate(zip(v1, layout, strict=True)):
        real1, real2 = not pad1 and size1 > 0, not pad2 and size2 > 0
        if (real1 or real2) and (real1, path1, size1, offset1) != (real2, path2, size2, offset2):
            return (
                f"file {i} is {'/'.join(path1)!r} ({size1} bytes at {offset1}) in the v1 file "
                f"list but {'/'.join(path2)!r} ({size2} bytes at {offset2}) in the v2 file tree"
            )
        offset1, offset2 = offset1 + size1, offset2 + size2
    if offset1 != offset2:
        return f"the v1 file list adds up to {offset1} bytes, the v2 file tree to {offset2}"
    return None


def _signatures(
    listed: object, btih: bytes | None, btmh: bytes | None, verify: bool = True
) -> tuple[Signature, ...]:
    """The top-level ``signatures`` list, every object checked and (with ``verify``) verified:
    one that does not verify makes the whole file invalid (it was tampered with, or signed
    another torrent)."""
    if listed is None:
        return ()
    if not isinstance(listed, list):
        raise TorrentError("'signatures' must be a list")
    if len(listed) > MAX_SIGNATURES:
        raise TorrentError(f"more than {MAX_SIGNATURES} signatures")
    found: list[Signature] = []
    for i, value in enumerate(listed, 1):
        try:
            signature = signing.from_object(value)
            if verify:
                signing.verify(signature, btih, btmh)
        except BadKey as e:
            raise BadPublicKey(f"signature {i}: {e}") from None
        except BadSignature as e:
            raise TorrentError(f"signature {i}: {e}") from None
        if any(s.pub == signature.pub for s in found):
            raise TorrentError(f"signature {i}: key {signature.public_key_hex} signs twice")
        found.append(signature)
    return tuple(found)


def parse_torrent(
    data: bytes | bytearray | memoryview, verify_signatures: bool = True
) -> TorrentInfo:
    """Validate a .torrent file, compute its info hashes and verify its signatures;
    `TorrentError` if anything is malformed or a signature does not verify. A file verified
    when it was stored may skip ``verify_signatures`` (their shape is still checked)."""
    return _parse(data, verify_signatures)[0]


def _parse(
    data: bytes | bytearray | memoryview, verify_signatures: bool = True
) -> tuple[TorrentInfo, Spans]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TorrentError("torrent data must be bytes")
    raw = bytes(data)
    if not raw.startswith(b"d"):
        raise TorrentError("a torrent file must be a bencoded dictionary")
    try:
        top, spans = bdecode(raw, MAX_ITEMS)
    except BdecodeError as e:
        raise TorrentError(str(e)) from None
    info, info_span = top.get(b"info"), spans.get(b"info")
    if info_span is None or not isinstance(info, dict):
        raise TorrentError("missing 'info' dictionary")
    raw_info = raw[info_span[0] : info_span[1]]

    name = _name(info)
    piece_length = info.get(b"piece length")
    if not isinstance(piece_length, int) or not 0 < piece_length <= INT64_MAX:
        raise TorrentError("'piece length' must be a positive integer")

    version = info.get(b"meta version", 1)
    if version not in (1, 2):
        raise TorrentError(f"unsupported meta version {version!r}")
    is_v2 = version == 2
    is_v1 = b"pieces" in info
    if not is_v1 and not is_v2:
        raise TorrentError("info has neither 'pieces' (v1) nor 'meta version' 2 (v2)")
    if b"file tree" in info and not is_v2:
        raise TorrentError("'file tree' without 'meta version' 2")
    if not is_v1 and (b"files" in info or b"length" in info):
        raise TorrentError("v1 file list without 'pieces'")

    v2_files: FileList = []
    if is_v2:
        if piece_length < MIN_V2_PIECE_LENGTH or piece_length & (piece_length - 1):
            raise TorrentError("v2 'piece length' must be a power of two of at least 16 KiB")
        if b"file tree" not in info:
            raise TorrentError("v2 torrent without 'file tree'")
        _v2_files(info[b"file tree"], (), v2_files)
    v1_files: FileList = []
    if is_v1:
        v1_files = _v1_files(info, name)
        pieces = info[b"pieces"]
        if not isinstance(pieces, bytes) or len(pieces) % 20:
            raise TorrentError("'pieces' must be a string whose length is a multiple of 20")
        piece_count = len(pieces) // 20
        if piece_count != -(-sum(size for _, size, _ in v1_files) // piece_length):
            raise TorrentError("'pieces' does not match the total length of the files")
        mismatch = _hybrid_mismatch(v1_files, v2_files, piece_length) if is_v2 else None
        if mismatch is not None:
            raise TorrentError(
                f"the v1 file list and the v2 file tree describe different files: {mismatch}"
            )
    else:
        piece_count = sum(-(-size // piece_length) for _, size, pad in v2_files if not pad)
    # a hybrid's files are named as its v2 file tree names them (so libtorrent shows them):
    # the two lists agree on every file that holds data, not on the names of empty ones
    files = v2_files if is_v2 else v1_files
    listed = [("/".join(path), size) for path, size, pad in files if not pad]
    if not listed:
        raise TorrentError("torrent has no files besides padding")
    total_size = sum(size for _, size in listed)
    if max(sum(size for _, size, _ in f) for f in (v1_files, v2_files)) > INT64_MAX:
        raise TorrentError(f"the files add up to more than {INT64_MAX} bytes")  # pads count

    v1_info_hash = hashlib.sha1(raw_info).digest() if is_v1 else None
    v2_info_hash = hashlib.sha256(raw_info).digest() if is_v2 else None
    parsed = TorrentInfo(
        v1_info_hash=v1_info_hash,
        v2_info_hash=v2_info_hash,
        name=name,
        piece_length=piece_length,
        piece_count=piece_count,
        total_size=total_size,
        files=listed,
        signatures=_signatures(
            top.get(b"signatures"), v1_info_hash, v2_info_hash, verify_signatures
        ),
    )
    return parsed, spans


def add_signature(data: bytes, signature: Signature) -> bytes:
    """The file with ``signature`` appended to its top-level ``signatures`` (made, in key
    order, when there is none). Only those bytes change: ``info`` is not re-encoded, so both
    info hashes stay as they are. `TorrentError` for a file that does not parse, a signature
    that is not over this file's hashes, or a key that already signed it."""
    info, spans = _parse(data)
    if len(info.signatures) >= MAX_SIGNATURES:
        raise TorrentError(f"a file carries at most {MAX_SIGNATURES} signatures")
    if any(s.pub == signature.pub for s in info.signatures):
        raise TorrentError(f"already signed by key {signature.public_key_hex}")
    try:
        signing.verify(signature, info.v1_info_hash, info.v2_info_hash)
    except BadSignature as e:
        raise TorrentError(str(e)) from None
    raw, added = bytes(data), signature.encode()
    if b"signatures" in spans:
        end = spans[b"signatures"][1] - 1  # before the list's closing "e"
        return raw[:end] + added + raw[end:]
    at = len(raw) - 1  # before the top-level dictionary's closing "e"
    for key, (start, _) in spans.items():
        if key > b"signatures":
            at = min(at, start - len(key) - len(str(len(key))) - 1)
    return raw[:at] + b"10:signaturesl" + added + b"e" + raw[at:]


def sign_torrent(data: bytes, key: Ed25519PrivateKey) -> bytes:
    """``data`` signed with ``key``: both of its info hashes, as `add_signature` adds it."""
    info = parse_torrent(data)
    return add_signature(data, signing.sign(key, info.v1_info_hash, info.v2_info_hash))
