"""Numbers in options and env vars are parsed strictly too: a malformed one is the one-line
start error, never a traceback (issue 8, item 6's kind at the command line)."""

from __future__ import annotations

import pytest

from unit.test_config import config
from weightless.config import ConfigError

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
