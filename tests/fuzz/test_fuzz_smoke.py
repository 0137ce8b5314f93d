"""Fuzz smoke test (CI, about a minute): seed ELFs with mutated headers, section and segment tables, symbols,
relocations, .eh_frame bytes and self-jumping code, through loading, discovery, lifting and embedding.

Deterministic (derandomized Hypothesis, no example database) and bounded: every example must end in success
or a SymbridgeError naming the file in one line, within HANG_SECONDS. The long run is benchmarks/fuzz.sh.
"""

from __future__ import annotations

import time
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbridge.errors import ResourceLimitWarning
from tests.fuzz.crafted import CRAFTED
from tests.fuzz.harness import HANG_SECONDS, INTERESTING, N_KINDS, apply_ops, run_bytes, seeds

SEEDS = [p.read_bytes() for p in seeds()]

value = st.one_of(st.sampled_from(INTERESTING), st.integers(0, (1 << 16) - 1), st.integers(0, (1 << 64) - 1))
op = st.tuples(st.integers(0, N_KINDS - 1), st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1), value)
FUZZ = settings(deadline=None, max_examples=400, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(data: bytes, ignore_symbols: bool) -> str:
    t0 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceLimitWarning)
        result = run_bytes(data, ignore_symbols)
    elapsed = time.monotonic() - t0
    assert elapsed < HANG_SECONDS, f"{elapsed:.1f} s for one input (a hang)"
    return result


def test_seeds_load_cleanly():
    assert len(SEEDS) >= 6 and all(len(s) < 100_000 for s in SEEDS) and sum(map(len, SEEDS)) < 1 << 20
    for s in SEEDS:
        assert check(s, False) == "ok" and check(s, True) == "ok"


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS))), ops=st.lists(op, min_size=1, max_size=6), ignore=st.booleans())
def test_mutated_elf(seed, ops, ignore):
    check(apply_ops(SEEDS[seed], ops), ignore)


# The same, aimed at one family of mutations at a time so that each gets examples of its own.
@pytest.mark.parametrize("kind", range(N_KINDS))
@settings(FUZZ, max_examples=120)
@given(seed=st.sampled_from(range(len(SEEDS))), data=st.data(), ignore=st.booleans())
def test_mutation_family(kind, seed, data, ignore):
    rest = st.tuples(st.just(kind), st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1), value)
    ops = data.draw(st.lists(rest, min_size=1, max_size=4))
    check(apply_ops(SEEDS[seed], ops), ignore)


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS))), cut=st.integers(1, 1 << 17), junk=st.binary(max_size=64))
def test_truncated_or_padded(seed, cut, junk):
    check(SEEDS[seed][:cut] + junk, bool(cut & 1))


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_hostile_input(name):
    data = CRAFTED[name]()
    for ignore in (False, True):
        check(data, ignore)
