"""Look-alike callbacks named by the struct field that matched functions store them into."""

import numpy as np
import pytest

from symbridge import Binary, transfer
from symbridge.match import matcher
from symbridge.match.side import build_side
from tests.conftest import truth_of
from tests.fixtures.build import build, have_clang, strip_copy

CALLBACKS = [f"{op}_not_ready" for op in ("read", "write", "stats", "flush", "close", "ioctl")]


def named_right(ref, tgt, names=CALLBACKS) -> int:
    """How many of `names` the target's function of that name is matched to (whatever the confidence)."""
    truth = truth_of(tgt)
    r = transfer(Binary(ref), Binary(strip_copy(tgt), ignore_symbols=True), min_confidence=0.0)
    given = {f["address"]: f["name"] for f in r["functions"]}
    return sum(given.get(next(a for a, ns in truth.items() if name in ns)) == name for name in names)


@pytest.mark.skipif(not have_clang(), reason="clang is not installed")
def test_callbacks_with_the_same_code_get_the_names_of_the_fields_they_are_stored_into(monkeypatch):
    """The six have the same code and clang lays them out in the other order (-DREVERSED): address order alone
    names every one wrong, the fields name every one right."""
    ref = build("field_ops.c", opt="-O2", extra=("-fno-ipa-icf",))
    tgt = build("field_ops.c", compiler="clang", opt="-O2", extra=("-DREVERSED",))
    assert named_right(ref, tgt) == len(CALLBACKS)
    monkeypatch.setattr(matcher.Matcher, "propagate_slots", lambda self: 0)
    assert named_right(ref, tgt) < len(CALLBACKS)


def test_fields_whose_matched_entries_disagree_pair_nothing():
    """Two setters whose matched fields point to other functions (a struct whose layout changed) say nothing
    about their unmatched ones."""
    ref = build("field_ops.c", opt="-O2", extra=("-fno-ipa-icf",))
    b = Binary(ref)
    fs = b.code_functions
    side = build_side(fs, np.eye(len(fs), dtype=np.float32))  # each function like itself alone
    at = {f.name: i for i, f in enumerate(fs)}
    m = matcher.Matcher(side, side)
    m.accept(at["dev_create"], at["dev_create"], "symbol")
    m.accept(at["cleanup_common"], at["read_not_ready"], "symbol")  # the field at 96 disagrees
    m.accept(at["read_not_ready"], at["cleanup_common"], "symbol")  # and the one at 0
    assert m.propagate_slots() == 0
    m2 = matcher.Matcher(side, side)
    m2.accept(at["dev_create"], at["dev_create"], "symbol")
    m2.accept(at["cleanup_common"], at["cleanup_common"], "symbol")
    assert m2.propagate_slots() == len(CALLBACKS)
    assert all(m2.match[at[n]].s == at[n] for n in CALLBACKS)


HOOKS = ["open_hook", "seek_hook", "sync_hook", "close_hook"]


@pytest.mark.skipif(not have_clang(), reason="clang is not installed")
def test_callbacks_with_the_same_code_get_the_names_of_the_calls_they_are_passed_to(monkeypatch):
    ref = build("field_ops.c", opt="-O2", extra=("-fno-ipa-icf",))
    tgt = build("field_ops.c", compiler="clang", opt="-O2", extra=("-DREVERSED",))
    assert named_right(ref, tgt, HOOKS) == len(HOOKS)
    monkeypatch.setattr(matcher.Matcher, "propagate_slots", lambda self: 0)
    assert named_right(ref, tgt, HOOKS) < len(HOOKS)


CODECS = ["sc2s", "sc2i", "sc2f", "uc2s", "uc2i", "uc2f"]


def test_callbacks_set_in_the_cases_of_a_switch_get_the_names_their_case_gives_them(monkeypatch):
    """sc2s and uc2s have the same code; the other callbacks of their case (describe_signed,
    describe_unsigned) tell which is which. Defined in the other order, address order pairs every one wrong."""
    ref = build("field_ops.c", opt="-O2", extra=("-fno-ipa-icf",))
    tgt = build("field_ops.c", opt="-O2", extra=("-fno-ipa-icf", "-DREVERSED"))
    assert named_right(ref, tgt, CODECS) == len(CODECS)
    monkeypatch.setattr(matcher.Matcher, "propagate_slots", lambda self: 0)
    assert named_right(ref, tgt, CODECS) < len(CODECS)
