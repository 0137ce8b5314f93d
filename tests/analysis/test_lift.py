"""Lifting: the facts of a function do not depend on the memo of encodings its file shares."""

import pytest

from symbridge.analysis.lift import lift
from symbridge.binary import Binary
from tests.fixtures.build import build

FIELDS = ("tokens", "mnemonics", "calls", "imports", "strings", "constants", "data_refs", "code_refs", "n_blocks",
          "n_edges", "truncated")


@pytest.mark.parametrize("kind,opt", [("static", "-O2"), ("nopie", "-O0"), ("shared", "-O3")])
def test_lift_with_a_shared_memo_gives_the_same_facts(kind, opt):
    source = "libbig.c" if kind == "shared" else "prog_big.c"
    b = Binary(build(source, opt=opt, kind=kind))
    img, plt = b.image, b.plt_names
    memo: dict = {}
    fresh = [lift(img, f.address, f.size, plt) for f in b.code_functions]
    shared = [lift(img, f.address, f.size, plt, memo=memo) for f in b.code_functions]
    assert len(memo) > 100  # the memo was used: the comparison means something
    for a, c in zip(fresh, shared):
        assert [getattr(a, k) for k in FIELDS] == [getattr(c, k) for k in FIELDS]
    assert any(a.constants for a in fresh) and any(a.strings for a in fresh)
