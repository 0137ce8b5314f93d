"""The library API: add, binaries, identify, the ANN index beside the database, atomicity of add."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from symbridge.binary import Binary
from symbridge.errors import UsageError
from symbridge.model.model import Model
from symbridge.store import Store, open_store
from symbridge.store.ann import index_paths


def _dump(db) -> list[str]:
    con = sqlite3.connect(str(db))
    try:
        return list(con.iterdump())
    finally:
        con.close()


def test_add_then_list(fixtures, db):
    with open_store(str(db), Model.default()) as s:
        n = s.add(fixtures["ref"])
        assert n >= 32
        rows = s.binaries()
        names = s.names()
    assert len(rows) == 1
    assert rows[0]["path"] == str(fixtures["ref"])
    assert rows[0]["functions"] == n
    assert rows[0]["named"] == len({f.address for f in Binary(fixtures["ref"]).code_functions if f.name})
    assert names == {f.name for f in Binary(fixtures["ref"]).code_functions if f.name}
    assert len(rows[0]["sha256"]) == 64
    assert rows[0]["model"] == Model.default().name and rows[0]["dim"] == Model.default().own_dim
    idx, side = index_paths(db)
    assert idx.is_file() and side.is_file()
    con = sqlite3.connect(str(db))
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = {r[0] for r in con.execute("SELECT name FROM functions")}
    assert "fn_sum_0" in names and not any(x.endswith("@plt") for x in names)
    callees = con.execute("SELECT callees FROM functions WHERE name = 'main'").fetchone()[0]
    assert callees.startswith("[") and len(callees) > 10  # main calls every fn_*


def test_add_twice_is_a_noop(fixtures, db):
    with open_store(str(db)) as s:
        assert s.add(fixtures["ref"]) > 0
        before = _dump(db)
        assert s.add(fixtures["ref"]) == 0
    with open_store(str(db)) as s:
        assert s.add(fixtures["ref"]) == 0
        assert len(s.binaries()) == 1
    assert _dump(db) == before


def test_stripped_binary_is_refused(fixtures, db):
    with open_store(str(db)) as s, pytest.raises(UsageError, match="no function names"):
        s.add(fixtures["stripped"])


def test_postgresql_refused(tmp_path):
    with pytest.raises(UsageError, match="PostgreSQL backends are not supported"):
        open_store("postgresql://user@host/db").__enter__()


def test_missing_db_without_create(tmp_path):
    with pytest.raises(UsageError, match="no such library"):
        Store(str(tmp_path / "nope.db"), None, create=False)


def test_not_a_library(tmp_path, fixtures):
    with pytest.raises(UsageError, match="not a symbridge library"):
        Store(str(fixtures["ref"]), None, create=False)


def test_model_mismatch(fixtures, db):
    with open_store(str(db), Model.default()) as s:
        s.add(fixtures["ref"])
    with open_store(str(db), Model.projection(dim=64)) as s, pytest.raises(UsageError, match="built with model"):
        s.add(fixtures["other"])
    with open_store(str(db), Model.projection(dim=Model.default().dim, seed=7)) as s:
        if Model.default().name == "projection":
            with pytest.raises(UsageError, match="other weights"):
                s.identify(Binary(fixtures["target"], ignore_symbols=True))


def test_same_weights_with_another_identifier_weight_is_another_model(fixtures, db):
    """The identifier weight changes every vector: a library built with one must refuse the other."""
    m = Model.default()
    with open_store(str(db), m) as s:
        s.add(fixtures["ref"])
    other = Model(m.t, dict(m.meta, identifier_weight=m.identifier_weight + 0.5))
    with open_store(str(db), other) as s, pytest.raises(UsageError, match="other weights"):
        s.identify(Binary(fixtures["target"], ignore_symbols=True))


def _truth(path) -> dict[int, str]:
    return {f.address: f.name for f in Binary(path).functions if f.name}


def test_identify_names_most_functions(fixtures, db):
    with open_store(str(db)) as s:
        s.add(fixtures["ref"])
        s.add(fixtures["other"])
        paths = {b["path"] for b in s.binaries()}
        target = Binary(fixtures["target"], ignore_symbols=True)
        res = s.identify(target)
        loose = s.identify(target, min_confidence=0.0)
    truth = _truth(fixtures["target_sym"])
    assert res["reference"] == str(db) and res["target"] == str(fixtures["target"])
    assert res["min_confidence"] == pytest.approx(0.5, abs=0.5)
    code = [f for f in res["functions"] if "import" not in f["via"]]
    plt = [f for f in res["functions"] if "import" in f["via"]]
    assert len(res["functions"]) == len(target.functions)
    assert plt and all(f["name"].endswith("@plt") and f["confidence"] == 1.0 for f in plt)
    assert [f["address"] for f in res["functions"]] == sorted(f["address"] for f in res["functions"])
    for f in code:
        assert f["candidates"], f
        scores = [c["score"] for c in f["candidates"]]
        assert scores == sorted(scores, reverse=True)
        for c in f["candidates"]:
            assert c["binary"] in paths
        if f["reference_address"] is not None:
            assert f["binary"] in paths and f["via"]
            assert set(f["via"]) <= {"embedding", "callgraph", "order", "string", "identical"}
    # whole-binary matching against the library's best binary adds structural evidence
    assert any(set(f["via"]) & {"callgraph", "order", "string"} for f in code)
    top1 = sum(f["candidates"][0]["name"] == truth.get(f["address"]) for f in code)
    assert top1 >= 0.8 * len(code)
    named = [f for f in code if f["name"]]
    right = sum(f["name"] == truth.get(f["address"]) for f in named)
    assert named and right >= 0.9 * len(named)
    # with no threshold every match is named: one-to-one still gets most of them right
    lcode = [f for f in loose["functions"] if "import" not in f["via"]]
    lright = sum(f["name"] == truth.get(f["address"]) for f in lcode)
    assert lright >= 0.8 * len(lcode)
    # one-to-one per (binary, address)
    used = [(f["binary"], f["reference_address"]) for f in lcode if f["reference_address"] is not None]
    assert len(used) == len(set(used))


def test_identify_empty_library(fixtures, db):
    with open_store(str(db)) as s:
        res = s.identify(fixtures["target"])
    assert all(f["name"] is None or "import" in f["via"] for f in res["functions"])


def test_ann_rebuilt_when_deleted_or_stale(fixtures, db):
    with open_store(str(db)) as s:
        s.add(fixtures["ref"])
        want = s.identify(fixtures["target"])
    idx, side = index_paths(db)
    idx.unlink()
    with open_store(str(db)) as s:
        assert s.identify(fixtures["target"]) == want
        assert s.ann.rebuilt
    assert idx.is_file()
    with open_store(str(db)) as s:
        s.identify(fixtures["target"])
        assert not s.ann.rebuilt  # agrees with SQLite now: loaded, not rebuilt
    # stale: the sidecar vouches for fewer functions than SQLite holds
    side.write_text(side.read_text().replace('"count": ', '"count": 1'))
    with open_store(str(db)) as s:
        assert s.identify(fixtures["target"]) == want
        assert s.ann.rebuilt
    # garbage in the index file
    idx.write_bytes(b"not an index")
    side.unlink()
    with open_store(str(db)) as s:
        assert s.identify(fixtures["target"]) == want


def test_interrupted_add_leaves_db_unchanged(fixtures, db, monkeypatch):
    with open_store(str(db)) as s:
        s.add(fixtures["ref"])
    idx, side = index_paths(db)
    before, before_idx, before_side = _dump(db), idx.read_bytes(), side.read_bytes()
    original = Store._insert

    def boom(self, *args, **kw):
        original(self, *args, **kw)  # every row written, then the process "dies" before COMMIT
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "_insert", boom)
    with open_store(str(db)) as s, pytest.raises(KeyboardInterrupt):
        s.add(fixtures["other"])
    assert _dump(db) == before
    assert idx.read_bytes() == before_idx and side.read_bytes() == before_side
    monkeypatch.undo()
    with open_store(str(db)) as s:
        assert s.add(fixtures["other"]) > 0
        assert len(s.binaries()) == 2


def test_interrupted_first_add(fixtures, db, monkeypatch):
    def boom(self, *args, **kw):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Store, "_insert", boom)
    with open_store(str(db)) as s, pytest.raises(RuntimeError):
        s.add(fixtures["ref"])
    monkeypatch.undo()
    with open_store(str(db)) as s:
        assert s.binaries() == []
        assert s.con.execute("SELECT count(*) FROM functions").fetchone()[0] == 0
        assert s.con.execute("SELECT value FROM meta WHERE key='model_name'").fetchone() is None


def test_a_librarys_export_status_is_stored_and_read_back(tmp_path):
    from symbridge.store.identify import reference_side
    from tests.conftest import dynamic_functions
    from tests.fixtures.build import build

    lib = build(["libbig.c"], kind="shared", opt="-O2")
    want = set(dynamic_functions(lib).values())
    db = tmp_path / "lib.db"
    with open_store(str(db), Model.default()) as s:
        s.add(lib)
    con = sqlite3.connect(str(db))
    got = {a for a, e in con.execute("SELECT address, exported FROM functions") if e}
    assert got == want
    side, refs = reference_side(con, 1, str(lib))
    assert {r.address for r, e in zip(refs, side.exported) if e} == want


@pytest.mark.parametrize("version, dropped", [(1, ("exported", "code_key", "data_key", "cold", "wrapper", "slots",
                                                    "tables", "cet_key", "shape")),
                                               (2, ("code_key", "data_key", "cold", "wrapper", "slots", "tables",
                                                    "cet_key", "shape")),
                                               (3, ("cold", "wrapper", "slots", "tables", "cet_key", "shape")),
                                               (4, ("wrapper", "slots", "tables", "cet_key", "shape")),
                                               (5, ("slots", "tables", "cet_key", "shape")),
                                               (6, ("tables", "cet_key", "shape")),
                                               (7, ("cet_key", "shape")),
                                               (8, ("shape",))])
def test_a_library_of_an_earlier_schema_opens_with_what_it_lacks_unknown(fixtures, tmp_path, version, dropped):
    from symbridge.store.db import SCHEMA_VERSION
    from symbridge.store.identify import has_cet_keys, has_wrapper_flags, reference_side

    db = tmp_path / "old.db"
    with open_store(str(db), Model.default()) as s:
        s.add(fixtures["ref"])
    con = sqlite3.connect(str(db))  # what that version wrote: without the columns added since
    for column in dropped:
        con.execute(f"ALTER TABLE functions DROP COLUMN {column}")
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    con.commit()
    con.close()
    with open_store(str(db), Model.default()) as s:
        assert len(s.binaries()) == 1
        res = s.identify(fixtures["stripped"])
    if "code_key" in dropped:  # no keys, no identical-code seeds
        assert not any("identical" in f["via"] for f in res["functions"])
    con = sqlite3.connect(str(db))
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    side, _ = reference_side(con, 1, str(fixtures["ref"]))
    assert (side.code_key == [None] * len(side.addrs)) == ("code_key" in dropped)
    assert (side.data_key == [None] * len(side.addrs)) == ("data_key" in dropped)
    assert (side.exported is None) == ("exported" in dropped)
    assert side.cold is None or "cold" not in dropped  # unknown, so no cold-part penalty
    stored = np.stack([np.frombuffer(v, np.float32) for (v,) in con.execute(
        "SELECT vector FROM functions WHERE binary_id = 1 ORDER BY address")])
    if "wrapper" in dropped:
        assert np.array_equal(side.vectors, stored)  # wrappers unknown: nothing blended
    assert has_wrapper_flags(con, 1) == ("wrapper" not in dropped)
    # keys with endbr64 where that version stored only those
    assert has_cet_keys(con, 1) == ("cet_key" not in dropped) or "code_key" in dropped
    assert (side.slots == []) or "slots" not in dropped  # unknown: no slots to pair by
    assert side.tables == []  # unknown: no tables to pair by
    assert side.shapes == []  # unknown: no field accesses to pair shifted accessors by


def test_the_library_knows_its_wrappers_and_compares_them_by_where_they_jump(tmp_path):
    """`scan`, `hash` and `spaces` are each `xor esi, esi; jmp *_ex` at -O2: the library marks them, and as the
    matcher's reference their vectors are blended with their callee's, as transfer blends them (blend_thunks)."""
    from symbridge.store.identify import has_wrapper_flags, reference_side
    from tests.fixtures.build import build

    ref = build("tail_wrappers.c", opt="-O2")
    db = tmp_path / "lib.db"
    with open_store(str(db), Model.default()) as s:
        s.add(ref)
    con = sqlite3.connect(str(db))
    flags = {n: w for n, w in con.execute("SELECT name, wrapper FROM functions")}
    assert flags["scan"] == flags["hash"] == flags["spaces"] == 1 and flags["scan_ex"] == flags["main"] == 0
    assert has_wrapper_flags(con, 1)
    side, refs = reference_side(con, 1, str(ref))
    stored = np.stack([np.frombuffer(v, np.float32) for (v,) in con.execute(
        "SELECT vector FROM functions WHERE binary_id = 1 ORDER BY address")])
    at = {r.name: k for k, r in enumerate(refs)}
    for w, callee in (("scan", "scan_ex"), ("hash", "hash_ex"), ("spaces", "spaces_ex")):
        mixed = stored[at[w]] + stored[at[callee]]
        assert np.allclose(side.vectors[at[w]], mixed / np.linalg.norm(mixed), atol=1e-6)
    assert np.array_equal(side.vectors[at["main"]], stored[at["main"]])


def test_upgrade_reads_wrapper_status_and_slots_again_from_binaries_that_are_still_there(tmp_path):
    """A library from before schema 5 has no wrapper status, one from before schema 6 no slots, one from before
    7 no tables; fill_outdated reads them from each binary's path (what index add gives), and leaves a binary
    that is gone or changed as it was."""
    import shutil

    from tests.fixtures.build import build

    src = build("tail_wrappers.c", opt="-O2")
    kept, gone, changed = (tmp_path / n for n in ("kept", "gone", "changed"))
    for k, p in enumerate((kept, gone, changed)):
        shutil.copy(src, p)
        with open(p, "ab") as f:  # three files, not one file thrice (the library keys binaries by sha256)
            f.write(bytes([k]))
    slotted = build("field_ops.c", opt="-O2", extra=("-fno-ipa-icf",))  # callbacks stored into fields
    tabled = build("ctrl_table.c", opt="-O2")  # a table of handlers in data
    db = tmp_path / "lib.db"
    with open_store(str(db), Model.default()) as s:
        for p in (kept, gone, changed, slotted, tabled):
            s.add(p)
        fresh = s.con.execute("SELECT binary_id, address, wrapper, slots, tables, cet_key, shape FROM functions "
                              "ORDER BY 1, 2").fetchall()
        assert s.outdated() == 0 and s.fill_outdated() == []
        s.con.execute("UPDATE functions SET shape = NULL")  # an upgrade from 8 leaves
        assert s.outdated() == 5
        s.con.execute("UPDATE functions SET cet_key = NULL")  # one from 7 too
        s.con.execute("UPDATE functions SET wrapper = NULL, slots = NULL, tables = NULL")  # one from 4 too
    gone.unlink()
    with open(changed, "r+b") as f:  # another build at the same path
        f.seek(-1, 2)
        f.write(b"\x01")
    with open_store(str(db), Model.default()) as s:
        done = dict(s.fill_outdated())
        assert "marked" in done[str(kept)] and "not found" in done[str(gone)] and "changed" in done[str(changed)]
        got = s.con.execute("SELECT binary_id, address, wrapper, slots, tables, cet_key, shape FROM functions "
                            "ORDER BY 1, 2").fetchall()
        assert [r for r in got if r[0] in (1, 4, 5)] == [r for r in fresh if r[0] in (1, 4, 5)]
        assert any(r[3] != "[]" for r in got if r[0] == 4)  # the callbacks field_ops.c stores are back
        assert any(r[4] != "[]" for r in got if r[0] == 5)  # and ctrl_table.c's table
        assert any(r[6] != "null" for r in got if r[0] == 4)  # and the fields field_ops.c accesses
        assert all(r[2] is None and r[3] is None for r in got if r[0] in (2, 3)) and s.outdated() == 2


def test_identify_sees_identical_code_with_or_without_endbr64_where_the_library_keeps_such_keys(tmp_path):
    """A library of a build without CET's landing pads, a target with them (Debian's bullseye and trixie): the
    library keeps code keys without endbr64 (schema 8), so identical code seeds the match as in transfer; a
    library from before keeps its keys with endbr64, and its binaries are compared that way until upgraded."""
    from tests.fixtures.build import build, strip_copy

    ref = build("prog_big.c", extra=("-fcf-protection=none",))
    tgt = build("prog_big.c", extra=("-fcf-protection=full",))
    truth = {f.address: f.name for f in Binary(tgt).code_functions}
    db = tmp_path / "lib.db"

    def identical() -> list[dict]:
        with open_store(str(db), Model.default()) as s:
            res = s.identify(Binary(strip_copy(tgt), ignore_symbols=True))
        return [f for f in res["functions"] if "identical" in f["via"]]

    with open_store(str(db), Model.default()) as s:
        s.add(ref)
    new = identical()
    con = sqlite3.connect(str(db))
    con.execute("UPDATE functions SET cet_key = NULL")  # as an upgrade from schema 7 leaves the rows
    con.commit()
    old = identical()
    with open_store(str(db), Model.default()) as s:
        assert s.outdated() == 1 and len(s.fill_outdated()) == 1
    again = identical()
    assert len(old) < 0.5 * len(new), (len(old), len(new))
    assert [f["address"] for f in again] == [f["address"] for f in new]
    assert all(f["name"] == truth[f["address"]] for f in new if f["name"])


def test_identify_seeds_identical_code_from_the_library(fixtures, db):
    """The library keeps each function's code and data keys, so that code found once on each side is a seed."""
    with open_store(str(db)) as s:
        s.add(fixtures["ref"])
        res = s.identify(fixtures["stripped"])
    truth = {f.address: f.name for f in Binary(fixtures["ref"]).code_functions}
    same = [f for f in res["functions"] if "identical" in f["via"]]
    assert len(same) >= 10
    assert all(f["name"] == truth[f["address"]] for f in same if f["name"])


def test_identify_knows_a_handler_by_the_name_it_is_registered_under(tmp_path):
    """Look-alike handlers of a {name, handler} table, defined and listed in another order in the target."""
    from tests.fixtures.build import build, have_clang, strip_copy

    if not have_clang():
        pytest.skip("clang is not installed")
    ref = build("reg_table.c", opt="-O2")
    tgt = build("reg_table.c", compiler="clang", opt="-O2", extra=("-DREORDERED",))
    truth = {f.address: f.name for f in Binary(tgt).code_functions}
    with open_store(str(tmp_path / "lib.db"), create=True) as s:
        s.add(ref)
        res = s.identify(Binary(strip_copy(tgt), ignore_symbols=True))
    handlers = [f for f in res["functions"] if (truth.get(f["address"]) or "").startswith("op_")]
    assert len(handlers) == 5
    assert all(f["name"] == truth[f["address"]] and "string" in f["via"] for f in handlers)


def test_identify_names_cold_parts_after_their_owners(tmp_path):
    """A cold part the library has no name for takes its owner's name, and the binary it came from."""
    from tests.fixtures.build import build, cold_build, strip_copy

    ref = build("twins.c", opt="-O2", kind="shared", strip=True)
    tgt = cold_build(opt="-O2")
    part = next(s.address for s in Binary(tgt).image.symbols if s.name == "checked_update.cold")
    with open_store(str(tmp_path / "lib.db"), create=True) as s:
        s.add(ref)
        res = s.identify(Binary(strip_copy(tgt), ignore_symbols=True))
    row = next(f for f in res["functions"] if f["address"] == part)
    assert (row["name"], row["via"], row["binary"]) == ("checked_update.cold", ["cold-part"], str(ref))


def test_the_library_keeps_the_tables_of_code_pointers_and_slots_the_matcher_reads(tmp_path):
    """What identify's reference side holds is what transfer's build_side finds in the binary itself."""
    from symbridge.match.side import build_side
    from symbridge.store.identify import reference_side
    from tests.fixtures.build import build

    for src, extra in (("ctrl_table.c", ()), ("field_ops.c", ("-fno-ipa-icf",))):
        path = build(src, opt="-O2", extra=extra)
        db = tmp_path / f"{src}.db"
        with open_store(str(db), Model.default()) as s:
            s.add(path)
        side, refs = reference_side(sqlite3.connect(str(db)), 1, str(path))
        code = Binary(path).code_functions
        direct = build_side(code, None)
        assert [r.address for r in refs] == [f.address for f in code]
        assert side.tables == direct.tables and side.slots == direct.slots
        assert side.tables or side.slots


def test_adds_that_leave_the_index_unsaved_write_it_once_and_meanwhile_others_rebuild(fixtures, db):
    """index add with many files writes the vector index once, at the end. Until then its file no longer holds
    every row, and another process rebuilds it from SQLite; a writer whose index is no longer current (another
    one saved a newer one) does not write its own over it."""
    import json

    _, side = index_paths(db)
    first = Store(str(db))
    first.add(fixtures["ref"], save_index=False)
    first.add(fixtures["other"], save_index=False)
    total = first.ann.count
    assert not side.is_file() or json.loads(side.read_text())["count"] < total
    with open_store(str(db)) as other:  # meanwhile: rebuilt from SQLite, with every row
        assert other.ann.count == total and other.ann.rebuilt
    first.close()  # writes the index: now current
    assert json.loads(side.read_text())["count"] == total
    with open_store(str(db)) as again:
        assert again.ann.count == total and not again.ann.rebuilt
    # a writer that fell behind another's add leaves that one's index alone
    behind = Store(str(db))
    behind.add(fixtures["target_sym"], save_index=False)
    copy = db.parent / "ref_copy"
    copy.write_bytes(fixtures["ref"].read_bytes() + b"\0")  # another file (another digest), the same code
    with open_store(str(db)) as ahead:
        ahead.add(copy)
    newest = json.loads(side.read_text())["count"]
    assert newest > behind.ann.count
    behind.close()
    assert json.loads(side.read_text())["count"] == newest
