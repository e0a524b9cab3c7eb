import os
import stat
from pathlib import Path

from weightless.state.keyfile import KEY_BYTES, load_or_create


def test_the_key_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "udp-key")
    first = load_or_create(path)
    assert len(first) == KEY_BYTES
    assert load_or_create(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_damaged_key_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "udp-key"
    path.write_bytes(b"short")
    key = load_or_create(str(path))
    assert len(key) == KEY_BYTES and path.read_bytes() == key
