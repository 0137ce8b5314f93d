"""Function discovery on stripped builds, scored against the unstripped .symtab (FUNC, size > 0)."""

import pytest

from symbridge.analysis.discover import discover
from symbridge.elf.image import load_image
from symbridge.evaluation import precision_recall, truth_starts, unsized_starts
from tests.fixtures.build import NO_UNWIND, build, have_clang

CONFIGS = [("gcc", o) for o in ("-O0", "-O2", "-O3")] + [("clang", "-O2")]


def score(path):
    img = load_image(path)
    truth = truth_starts(img)
    found = {f.address for f in discover(img, use_symbols=False) if "plt" not in f.sources}
    return precision_recall(found - unsized_starts(img), truth), len(truth)


@pytest.mark.parametrize("compiler,opt", CONFIGS)
@pytest.mark.parametrize("kind,source", [("pie", "prog_big.c"), ("shared", "libbig.c")])
def test_discovery_finds_functions_of_pie_and_shared_objects(compiler, opt, kind, source):
    if compiler == "clang" and not have_clang():
        pytest.skip("clang not installed")
    (p, r), n = score(build(source, compiler=compiler, opt=opt, kind=kind))
    assert n > 100
    assert p >= 0.99 and r >= 0.99, (p, r)


@pytest.mark.parametrize("compiler,opt", CONFIGS)
def test_discovery_finds_functions_of_static_executables(compiler, opt):
    if compiler == "clang" and not have_clang():
        pytest.skip("clang not installed")
    (p, r), n = score(build("prog_big.c", compiler=compiler, opt=opt, kind="static"))
    assert n > 1000
    assert p >= 0.98 and r >= 0.98, (p, r)


@pytest.mark.parametrize("compiler,opt", CONFIGS)
def test_discovery_without_unwind_tables(compiler, opt):
    if compiler == "clang" and not have_clang():
        pytest.skip("clang not installed")
    path = build("prog_big.c", compiler=compiler, opt=opt, extra=NO_UNWIND)
    (p, r), n = score(path)
    assert n > 100
    assert p >= 0.98 and r >= 0.95, (p, r)


def test_discovery_records_where_each_boundary_came_from():
    img = load_image(build("prog_big.c", opt="-O2"))
    funcs = discover(img, use_symbols=False)
    sources = {s for f in funcs for s in f.sources}
    assert {"eh_frame", "plt", "entry", "call"} <= sources
    assert all(f.sources for f in funcs)


@pytest.mark.parametrize("opt", ["-O0", "-O3"])
def test_discovery_decodes_each_instruction_about_once(opt):
    """A jump into code an earlier block already decoded stops there instead of decoding the rest again
    (before, -O3 builds decoded every instruction about twice)."""
    import iced_x86 as ix

    from symbridge.analysis.discover import _Discovery

    img = load_image(build("prog_big.c", opt=opt))
    disc = _Discovery(img, False, None)
    funcs = [f for f in disc.run() if "plt" not in f.sources]
    n = sum(1 for f in funcs for _ in ix.Decoder(64, img.read(f.address, f.size), ip=f.address))
    assert n > 5000
    assert disc.decoded <= 1.1 * n, (disc.decoded, n)


def test_discovery_keeps_at_most_its_limit_of_functions_scaled_by_the_code(monkeypatch):
    """At most max(MAX_FUNCTIONS, one per CODE_BYTES_PER_FUNCTION bytes of code), with one warning: a file
    with more code than the floor allows (Chromium holds 697,000 functions) keeps all of them."""
    import symbridge.analysis.discover as d
    from symbridge.errors import ResourceLimitWarning

    img = load_image(build("prog_big.c", opt="-O2"))
    every = len(discover(img, use_symbols=False))
    code = sum(b - a for a, b in img.code_ranges)
    monkeypatch.setattr(d, "MAX_FUNCTIONS", 20)
    monkeypatch.setattr(d, "CODE_BYTES_PER_FUNCTION", code)  # one function's worth of code: the floor rules
    with pytest.warns(ResourceLimitWarning, match="more than 20 functions"):
        assert len(discover(img, use_symbols=False)) == 20
    monkeypatch.setattr(d, "CODE_BYTES_PER_FUNCTION", code // (every + 1))  # room for all of them
    assert d.max_functions(code) > every
    assert len(discover(img, use_symbols=False)) == every
