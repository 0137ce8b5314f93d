"""Which library binaries identify matches whole, and the evidence of a match outside them."""

import sqlite3
import subprocess

import numpy as np
import pytest

from symbridge.store.identify import MAX_STRUCTURAL_BINARIES, STRONG_SIM, RefFunction, structural_binaries


def _refs(sizes: dict[str, int]) -> dict[int, RefFunction]:
    refs, fid = {}, 0
    for binary, n in sizes.items():
        for k in range(n):
            refs[fid] = RefFunction(fid, binary, 0x1000 + 16 * k, 16, f"{binary}_{k}")
            fid += 1
    return refs


def _first(refs: dict[int, RefFunction], binary: str) -> int:
    return min(r.id for r in refs.values() if r.binary == binary)


def test_a_small_library_linked_into_a_large_program_is_matched_whole():
    """A program of 1,000 functions: 900 of its own (libc) hit a large library at random and weakly, 10 are
    functions of a small library, close to their counterparts. Counting hits alone picks the large library."""
    sizes = {"big.so": 5000, "small.so": 20, "other.so": 300}
    refs = _refs(sizes)
    big, small, other = (_first(refs, b) for b in sizes)
    rows = [(big + k, 0.6) for k in range(900)] + [(small + k, 0.95) for k in range(10)]
    rows += [(other + k, 0.85) for k in range(3)] + [(other + 3 + k, 0.5) for k in range(87)]
    labels = np.array([[lab] for lab, _ in rows], np.int64)
    scores = np.array([[s] for _, s in rows], np.float32)
    chosen = structural_binaries(labels, scores, refs, lambda b: (sizes[b], sizes[b]), len(rows))
    # big.so: most hits (a target that is mostly one binary keeps that one); small.so: half of it is close
    # by; other.so: three close hits are 1 % of its functions, chance
    assert chosen == ["big.so", "small.so"]


def test_the_share_counts_named_functions_or_all_functions():
    """A shared library names its exports only. 8 of its 20 exports are close to target functions, among 300
    internal functions the program does not use: 8 of 320 would be chance. Another program uses 2 exports
    and the 40 internal functions they call."""
    refs = _refs({"lib.so": 20})
    refs.update({20 + k: RefFunction(20 + k, "lib.so", 0x9000 + 16 * k, 16, "") for k in range(300)})
    counts = {"lib.so": (20, 320)}.get
    exports = [(k, 0.9) for k in range(8)]
    internal = [(20 + k, 0.9) for k in range(40)]
    weak = [(20 + 100 + k, 0.3) for k in range(900)]  # the program's own functions, by chance
    cases = [(exports + weak, ["lib.so"]),  # 8 of its 20 named functions
             (exports[:2] + internal + weak, ["lib.so"]),  # 42 of its 320 functions
             (exports[:2] + internal[:20] + weak, [])]  # 2 named, 22 of 320 in all: chance
    for rows, chosen in cases:
        labels = np.array([[lab] for lab, _ in rows], np.int64)
        scores = np.array([[s] for _, s in rows], np.float32)
        assert structural_binaries(labels, scores, refs, counts, 100_000) == chosen


def test_binaries_matched_whole_are_capped_and_ordered_by_share():
    sizes = {f"lib{k}.so": 10 * (k + 1) for k in range(MAX_STRUCTURAL_BINARIES + 2)}
    refs = _refs(sizes)
    rows = [(_first(refs, b) + j, STRONG_SIM) for b in sizes for j in range(5)]  # 5 close hits in each
    labels = np.array([[lab] for lab, _ in rows], np.int64)
    scores = np.array([[s] for _, s in rows], np.float32)

    def counts(b):
        return sizes[b], sizes[b]

    chosen = structural_binaries(labels, scores, refs, counts, 10_000)  # too many functions for the hits rule
    assert chosen == list(sizes)[:MAX_STRUCTURAL_BINARIES]  # the smaller, the larger the share
    assert structural_binaries(labels[:2], scores[:2], refs, counts, 10_000) == []  # two close hits: chance


def test_a_library_of_unrelated_code_names_only_the_startup_code_they_share(fixtures, tmp_path):
    """The library's binaries share only gcc's startup code with the target: a nearest neighbour alone, with
    no other matching to agree with it, is no name."""
    from symbridge.binary import Binary
    from symbridge.store import open_store
    from tests.fixtures.build import build

    with open_store(str(tmp_path / "lib.db")) as s:
        for src in ("libbig.c", "twins.c"):
            s.add(build([src], kind="shared", opt="-O2"))
        res = s.identify(Binary(fixtures["target"], ignore_symbols=True))
    truth = {f.address: f.name for f in Binary(fixtures["target_sym"]).code_functions}
    code = [f for f in res["functions"] if "import" not in f["via"]]
    assert len(code) >= 20 and all(f["reference_address"] is not None for f in code)
    assert [f["name"] for f in code if f["name"] and f["name"] != truth.get(f["address"])] == []
    assert not [f for f in code if f["name"] and truth.get(f["address"], "").startswith("fn_")]


def test_startup_code_is_no_evidence_of_a_library():
    """Every gcc-built binary holds the same crt functions: a small library matched by them alone is chance."""
    sizes = {"tiny.so": 12}
    refs = _refs(sizes)
    for k, name in enumerate(("_init", "_fini", "frame_dummy", "register_tm_clones", "deregister_tm_clones")):
        refs[k] = RefFunction(k, "tiny.so", 0x1000 + 16 * k, 16, name)
    labels = np.array([[k] for k in range(5)] + [[-1]] * 995, np.int64)
    scores = np.array([[1.0]] * 5 + [[0.3]] * 995, np.float32)
    assert structural_binaries(labels, scores, refs, lambda b: (12, 12), 1000) == []
    labels[:5, 0] += 5  # five of its own functions instead
    assert structural_binaries(labels, scores, refs, lambda b: (12, 12), 1000) == ["tiny.so"]


def test_a_function_one_library_binary_leaves_unnamed_takes_the_name_another_gives_the_same_code(tmp_path):
    """One build of twins.c twice in the library: stripped to its exports (internal functions unnamed) and with
    all its symbols. Each unnamed function's named copy is the other binary's function at the same address."""
    from symbridge.model.model import Model
    from symbridge.store import open_store
    from symbridge.store.identify import named_copies
    from tests.fixtures.build import build

    full = build("twins.c", opt="-O2", kind="shared")
    exports = tmp_path / "exports.so"
    subprocess.run(["strip", "-o", str(exports), str(full)], check=True)
    db = tmp_path / "lib.db"
    with open_store(str(db), Model.default()) as s:
        s.add(exports)
        s.add(full)
    con = sqlite3.connect(str(db))
    paths = dict(con.execute("SELECT path, id FROM binaries"))
    unnamed = {fid: addr for fid, addr in con.execute(
        "SELECT id, address FROM functions WHERE binary_id = ? AND name = ''", (paths[str(exports)],))}
    named = dict(con.execute("SELECT address, name FROM functions WHERE binary_id = ?", (paths[str(full)],)))
    copies = named_copies(con, set(unnamed))
    assert len(copies) >= 3
    for fid, copy in copies.items():
        assert copy.binary == str(full) and copy.address == unnamed[fid] and copy.name == named[unnamed[fid]]


def test_a_function_without_a_name_takes_the_one_name_of_its_exact_neighbours_in_other_binaries():
    from symbridge.store.identify import same_vector

    r = RefFunction(1, "a.so", 0x10, 48, "")
    twin = RefFunction(2, "b.so", 0x20, 48, "th_comment_add")
    other = RefFunction(3, "c.so", 0x30, 48, "_gnutls_buffer_append")
    near = RefFunction(4, "b.so", 0x40, 48, "th_comment_clear")
    assert same_vector(r, [(0.9, r), (0.9, twin), (0.8, near)]) == twin
    assert same_vector(r, [(1.0, r), (1.0, twin), (1.0, other)]) is None  # two names: no telling
    assert same_vector(r, [(1.0, r), (1.0, twin), (1.0, other)], lambda a, b: b != "c.so") == twin  # unrelated
    assert same_vector(r, [(0.9, twin)]) is None  # r is not among the neighbours
    stub = RefFunction(5, "a.so", 0x50, 6, "")  # a vtable call: the same few bytes in unrelated libraries
    assert same_vector(stub, [(1.0, stub), (1.0, twin)]) is None


def test_identify_names_look_alike_callbacks_by_the_struct_fields_the_library_knows(tmp_path, monkeypatch):
    """The library keeps where each function puts callbacks (schema 6), so identify pairs field_ops.c's six
    same-code callbacks as transfer does, though address order (-DREVERSED, clang) would pair them wrongly."""
    from tests.fixtures.build import have_clang

    if not have_clang():
        pytest.skip("clang is not installed")
    from symbridge.binary import Binary
    from symbridge.match import matcher
    from symbridge.model.model import Model
    from symbridge.store import open_store
    from tests.conftest import truth_of
    from tests.fixtures.build import build, strip_copy

    ref = build("field_ops.c", opt="-O2", extra=("-fno-ipa-icf",))
    tgt = build("field_ops.c", compiler="clang", opt="-O2", extra=("-DREVERSED",))
    truth = truth_of(tgt)
    callbacks = [f"{op}_not_ready" for op in ("read", "write", "stats", "flush", "close", "ioctl")]
    db = tmp_path / "lib.db"
    with open_store(str(db), Model.default()) as s:
        s.add(ref)

    def right() -> int:
        with open_store(str(db), Model.default()) as s:
            res = s.identify(Binary(strip_copy(tgt), ignore_symbols=True), min_confidence=0.0)
        given = {f["address"]: f["name"] for f in res["functions"]}
        return sum(given.get(next(a for a, ns in truth.items() if n in ns)) == n for n in callbacks)

    assert right() == len(callbacks)
    monkeypatch.setattr(matcher.Matcher, "propagate_slots", lambda self: 0)
    assert right() < len(callbacks)


def test_identify_names_the_setters_of_a_struct_that_gained_a_field_as_transfer_does(tmp_path):
    """The library keeps each function's field accesses (schema 9), so identify pairs the setters of
    handlers.c's grown struct in place as transfer does, where similarity alone names them one place off."""
    from symbridge.binary import Binary
    from symbridge.model.model import Model
    from symbridge.store import open_store
    from tests.conftest import truth_of
    from tests.fixtures.build import build, strip_copy

    ref = build("handlers.c", opt="-O2", kind="shared")
    tgt = build("handlers.c", opt="-O2", kind="shared", extra=["-DNEW_FIELD"])
    setters = {a: n for a, ns in truth_of(tgt).items() for n in ns if n.startswith("set_")}
    db = tmp_path / "lib.db"
    with open_store(str(db), Model.default()) as s:
        s.add(ref)
        res = s.identify(Binary(strip_copy(tgt), ignore_symbols=True))
    got = {f["address"]: f for f in res["functions"] if f["address"] in setters}
    assert len(got) == 10
    assert all(f["name"] == setters[a] and "layout" in f["via"] for a, f in got.items())
