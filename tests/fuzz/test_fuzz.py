"""Runs every coverage-guided fuzz harness (``tests/fuzz/fuzz_*.py``, atheris) for a few
seconds in its own process, starting from its seeds in ``tests/fuzz/corpus/<target>/``; a
crash, a hang or a harness that does not run fails the test.

``FUZZ_SECONDS`` sets the time per harness (3 in the test command, longer with ``make fuzz``).
What a failing run found is printed and left in the test's temporary folder; copy it into the
corpus (as ``regression-*`` for the front) and write the regression test that keeps it fixed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
HARNESSES = sorted(HERE.glob("fuzz_*.py"))
SECONDS = int(os.environ.get("FUZZ_SECONDS", "3"))


def test_there_are_harnesses() -> None:
    assert {h.stem for h in HARNESSES} >= {"fuzz_front", "fuzz_query"}


@pytest.mark.parametrize("harness", HARNESSES, ids=lambda h: h.stem)
def test_fuzz(harness: Path, tmp_path: Path) -> None:
    seeds = HERE / "corpus" / harness.stem.removeprefix("fuzz_")
    found = tmp_path / "corpus"  # new inputs go here, not into the repository
    found.mkdir()
    args = [sys.executable, str(harness), str(found)]
    if seeds.is_dir():
        args.append(str(seeds))
    args += [
        f"-max_total_time={SECONDS}",
        f"-artifact_prefix={tmp_path}/",
        "-timeout=20",  # seconds for one input: a hang
        "-rss_limit_mb=3072",
        "-print_final_stats=1",
    ]
    proc = subprocess.run(
        args, capture_output=True, timeout=SECONDS + 300, cwd=tmp_path, check=False
    )
    output = proc.stderr.decode(errors="replace") + proc.stdout.decode(errors="replace")
    finds = sorted(
        p for p in tmp_path.iterdir() if p.name.split("-")[0] in ("crash", "timeout", "oom", "leak")
    )
    report = "\n".join(f"{p.name}: {p.read_bytes()[:2000]!r}" for p in finds)
    assert proc.returncode == 0 and not finds, f"{harness.name} failed:\n{report}\n{output[-6000:]}"
    assert "Done" in output and "runs in" in output, output[-3000:]
