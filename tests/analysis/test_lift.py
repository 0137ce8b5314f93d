"""Lifting: the facts of a function do not depend on the memo of encodings its file shares; struct field
offsets and their access widths, small immediates, the parameters a function reads and what it returns are kept
exactly, at any optimisation level."""

import pytest

from symbridge.analysis.lift import lift
from symbridge.binary import Binary
from tests.fixtures.build import build, cold_build

FIELDS = ("tokens", "mnemonics", "calls", "imports", "strings", "constants", "data_refs", "code_refs", "far_jumps",
          "offsets", "small", "params", "widths", "returns", "n_blocks", "n_edges", "truncated")


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
    assert any(a.offsets for a in fresh) and any(a.small for a in fresh)


@pytest.fixture(params=[(c, o) for c in ("gcc", "clang") for o in ("-O0", "-O3")], ids=lambda p: " ".join(p))
def fields(request, clang_available):
    """fields.c built by gcc and clang at -O0 and -O3."""
    compiler, opt = request.param
    if compiler == "clang" and not clang_available:
        pytest.skip("clang is not installed")
    return Binary(build("fields.c", compiler=compiler, opt=opt, kind="pie"))


def test_field_offsets_and_small_immediates_survive_optimisation(fields):
    b = fields
    bump = b["conn_bump"].facts
    assert {0x30, 0x34} <= set(bump.offsets)
    assert all(v > 0 for v in bump.offsets)  # -O0's stack slots (rbp - n) are not fields
    assert ord("/") in b["count_slashes"].facts.small


def test_parameters_read_first_are_the_same_at_any_optimisation(fields):
    b = fields
    # a pointer and an int (rdi 8 bytes, esi 4) and two doubles (xmm0, xmm1), in whatever order they are read
    assert sorted(b["scale_sum"].facts.params) == [(0, 8), (1, 4), (6, 16), (7, 16)]
    assert b["count_slashes"].facts.params == [(0, 8)]


def test_access_widths_and_returned_values_are_the_same_at_any_optimisation(fields):
    bump = fields["conn_bump"].facts
    assert len(bump.widths) == len(bump.offsets)
    assert {w for v, w in zip(bump.offsets, bump.widths) if v in (0x30, 0x34)} == {4}  # two int fields
    assert set(bump.returns) == {4}  # an int in eax
    assert set(fields["scale_sum"].facts.returns) == {16}  # a double in xmm0


def test_pointers_loaded_from_the_got_are_the_functions_and_objects_they_point_to():
    """In a shared library, a pointer to an exported function or object is loaded from the GOT; the facts name
    what it points to, as a fixed-address build that has the address inline does."""
    for kind in ("shared", "nopie"):
        b = Binary(build("twins.c", opt="-O2", kind=kind))
        at = {f.name: f.address for f in b.functions if f.name}
        objects = {s.name: s.address for s in b.image.symbols if s.name and s.kind == "STT_OBJECT"}
        assert at["wrap_forward"] in b["pick_forward"].facts.code_refs, kind
        assert objects["backward_info"] in b["pick_backward_info"].facts.object_refs, kind


def test_conditional_jumps_out_of_a_function_are_kept():
    b = Binary(cold_build(opt="-O2"))
    assert b["checked_update.cold"].address in b["checked_update"].facts.far_jumps
