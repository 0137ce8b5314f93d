"""Every input that once crashed or hung symbridge (tests/fuzz/regressions/) and the hand-made hostile inputs:
the library ends in success or one SymbridgeError line naming the file, fast; the CLI exits 0 or 2 with at
most one error line and never a traceback."""

from __future__ import annotations

import time
import warnings

import pytest

from symbridge.errors import ResourceLimitWarning
from tests.conftest import run_cli
from tests.fuzz.crafted import CRAFTED
from tests.fuzz.harness import HANG_SECONDS, REGRESSIONS_DIR, run_bytes

FILES = sorted(p for p in REGRESSIONS_DIR.iterdir() if p.is_file() and not p.name.endswith(".md"))


def test_there_are_regressions():
    assert FILES


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
@pytest.mark.parametrize("ignore_symbols", [False, True])
def test_regression_input(path, ignore_symbols):
    t0 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceLimitWarning)
        run_bytes(path.read_bytes(), ignore_symbols)
    assert time.monotonic() - t0 < HANG_SECONDS


@pytest.mark.parametrize("name", [p.name for p in FILES] + ["crafted:many-sections", "crafted:overlapping-tables"])
def test_cli_gives_one_line_and_no_traceback(tmp_path, name):
    if name.startswith("crafted:"):
        path = tmp_path / name.split(":")[1]
        path.write_bytes(CRAFTED[name.split(":")[1]]())
    else:
        path = REGRESSIONS_DIR / name
    r = run_cli("functions", path, "--ignore-symbols", "--json", tmp_path / "out.json")
    assert r.returncode in (0, 2), r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    if r.returncode == 2:
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and str(path) in lines[0], r.stderr
