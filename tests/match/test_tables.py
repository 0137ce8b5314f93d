"""Tables of code pointers: an ops struct's callbacks as call-graph edges, a table's entries paired by their
place in it, and handlers known by the name they are registered under; look-alike functions told apart."""

import pytest

from symbridge import Binary, transfer
from symbridge.match.keys import pointer_tables, table_keys, table_refs
from symbridge.match.side import build_side
from tests.conftest import truth_of
from tests.fixtures.build import build, have_clang, strip_copy

MODULES = ("mirror", "edit")


def reached(binary: Binary) -> dict[str, set[str]]:
    fs = binary.code_functions
    name = {f.address: f.name for f in fs}
    return {f.name: {name[a] for a in refs} for f, refs in zip(fs, table_refs(fs)) if f.name}


@pytest.mark.parametrize("compiler,kind", [("gcc", "pie"), ("gcc", "shared"), ("gcc", "static"),
                                           ("clang", "static")])
def test_a_function_reaches_the_callbacks_of_the_table_it_refers_to_and_no_other(compiler, kind):
    """clang's fixed-address code loads the table's address as an immediate, not RIP-relative."""
    if compiler == "clang" and not have_clang():
        pytest.skip("clang is not installed")
    refs = reached(Binary(build("ops_tables.c", compiler=compiler, kind=kind)))
    for module in MODULES:
        other = "edit" if module == "mirror" else "mirror"
        for fn in ("init", "exit"):
            assert refs[f"{module}_{fn}"] == {f"{module}_parse", f"{module}_dump"}, (kind, module, fn)
            assert not refs[f"{module}_{fn}"] & {f"{other}_parse", f"{other}_dump"}


def test_table_callbacks_are_neighbours_in_the_matchers_call_graph():
    b = Binary(build("ops_tables.c"))
    fs = b.code_functions
    side = build_side(fs, None)
    at = {f.name: i for i, f in enumerate(fs)}
    assert at["mirror_parse"] in side.callees[at["mirror_exit"]]
    assert at["mirror_exit"] in side.callers[at["mirror_parse"]]
    assert at["edit_parse"] not in side.neighbours[at["mirror_exit"]]


@pytest.mark.skipif(not have_clang(), reason="clang is not installed")
def test_look_alike_functions_get_the_name_of_the_module_whose_table_they_pass():
    """mirror_exit and edit_exit are the same two instructions but for the table's address."""
    ref = build("ops_tables.c", opt="-O2")
    tgt = build("ops_tables.c", compiler="clang", opt="-O2")
    truth = truth_of(tgt)
    r = transfer(Binary(ref), Binary(strip_copy(tgt), ignore_symbols=True))
    given = {f["address"]: f["name"] for f in r["functions"] if f["name"]}
    for module in MODULES:
        for fn in ("init", "exit", "parse", "dump"):
            addr = next(a for a, ns in truth.items() if f"{module}_{fn}" in ns)
            assert given.get(addr) == f"{module}_{fn}"


def test_a_table_of_id_and_handler_entries_is_one_table_in_its_order():
    b = Binary(build("ctrl_table.c"))
    fs = b.code_functions
    names = [[fs[i].name for i in t] for t in pointer_tables(fs)]
    assert ["set_alpha", "set_beta", "set_gamma", "set_delta", "set_eps", "set_zeta"] in names


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_look_alike_handlers_are_named_by_their_place_in_the_table_not_in_the_code(compiler):
    """The target defines the handlers in another order; only the table's order tells them apart."""
    if compiler == "clang" and not have_clang():
        pytest.skip("clang is not installed")
    ref = build("ctrl_table.c", opt="-O2")
    tgt = build("ctrl_table.c", compiler=compiler, opt="-O2", extra=("-DREORDERED",))
    truth = truth_of(tgt)
    r = transfer(Binary(ref), Binary(strip_copy(tgt), ignore_symbols=True))
    setters = [f for f in r["functions"] if any(n.startswith("set_") for n in truth.get(f["address"], ()))]
    assert len(setters) == 6
    assert all(f["name"] in truth[f["address"]] for f in setters)


@pytest.mark.parametrize("kind", ["pie", "shared", "static"])
def test_a_handler_is_registered_under_the_name_beside_it_in_the_table_not_the_next_entrys(kind):
    b = Binary(build("reg_table.c", kind=kind))
    fs = b.code_functions
    keys = {f.name: k for f, k in zip(fs, table_keys(fs)) if f.name and f.name.startswith("op_")}
    assert keys == {f"op_{n}": {f"table:{n}"} for n in ("scale", "shift", "mix", "fold", "spin")}


@pytest.mark.skipif(not have_clang(), reason="clang is not installed")
def test_look_alike_handlers_are_named_by_the_name_they_are_registered_under():
    """The target defines the handlers and lists the table's entries in another order."""
    ref = build("reg_table.c", opt="-O2")
    tgt = build("reg_table.c", compiler="clang", opt="-O2", extra=("-DREORDERED",))
    truth = truth_of(tgt)
    r = transfer(Binary(ref), Binary(strip_copy(tgt), ignore_symbols=True))
    handlers = [f for f in r["functions"] if any(n.startswith("op_") for n in truth.get(f["address"], ()))]
    assert len(handlers) == 5
    assert all(f["name"] in truth[f["address"]] and "string" in f["via"] for f in handlers)


@pytest.mark.parametrize("source", ["ctrl_table.c", "ops_tables.c", "prog_big.c"])
def test_seeing_only_tables_with_new_matches_again_gives_what_seeing_every_table_gives(source, monkeypatch):
    from symbridge.match.matcher import Matcher

    ref = build(source, opt="-O2")
    tgt = strip_copy(build(source, opt="-O0", extra=("-DREORDERED",) if source == "ctrl_table.c" else ()))
    seen = []
    original = Matcher.propagate_tables

    def counting(self):
        seen.append(len(self.P.tables) if self.dirty is None else len(self.dirty))
        return original(self)

    monkeypatch.setattr(Matcher, "propagate_tables", counting)
    fast = transfer(Binary(ref), Binary(tgt, ignore_symbols=True))
    assert any(n < max(seen) for n in seen)  # some passes skipped tables

    def every_table(self):
        self.dirty = None
        return original(self)

    monkeypatch.setattr(Matcher, "propagate_tables", every_table)
    assert transfer(Binary(ref), Binary(tgt, ignore_symbols=True)) == fast
