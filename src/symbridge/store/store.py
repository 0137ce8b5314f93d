"""The reference library: ``open_store(db, model)`` -> Store with add / binaries / identify."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Self

import numpy as np

from ..errors import ResourceLimitError, UsageError
from ..match.keys import (callee_addresses, code_keys, data_keys, exported_addresses, field_shapes, is_wrapper,
                          pointer_tables, stored_slots, table_keys)
from ..model.model import model_fingerprint
from .ann import AnnIndex
from .db import check_db_arg, connect, function_counts, get_meta, immediate, set_meta

MAX_STRINGS = 16
MAX_FUNCTIONS = 2_000_000
# rows that lack what a later schema added (a code key without endbr64 only where they have a code key)
OUTDATED = ("wrapper IS NULL OR slots IS NULL OR tables IS NULL OR (cet_key IS NULL AND code_key IS NOT NULL) "
            "OR shape IS NULL")


def file_sha256(path: str | os.PathLike) -> str:
    """The digest a library knows a binary by: its file's, read from disk."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class Store:
    """A library of named functions: SQLite rows plus an hnswlib index of their vectors."""

    def __init__(self, db: str, model=None, create: bool = True):
        self.db = str(db)
        self.path = check_db_arg(db)
        self._model = model
        self.con: sqlite3.Connection = connect(self.path, create)
        self._ann: AnnIndex | None = None
        self._unsaved = False  # the index has rows its file lacks (add with save_index=False)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self.save_index()
        self.con.close()

    def save_index(self) -> None:
        """Write the index that adds with save_index=False left in memory (close does it too)."""
        if self._unsaved and self._ann is not None:
            with self._ann_lock():
                self._ann.save_if_current(self.con)
            self._unsaved = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def model(self):
        if self._model is None:
            from ..model.model import Model

            self._model = Model.default()
        return self._model

    def _check_model(self) -> None:
        """UsageError when this run's model is not the one the library's vectors came from."""
        m = self.model
        name, dim, fp = (get_meta(self.con, k) for k in ("model_name", "model_dim", "model_fingerprint"))
        if name is None:
            return
        if (name, int(dim)) != (m.name, m.own_dim):
            raise UsageError(f"{self.db}: the library was built with model {name!r} (dimension {dim}), but this "
                             f"run uses {m.name!r} (dimension {m.own_dim}); pass --model with the library's model "
                             "or use another DB")
        if fp and fp != model_fingerprint(m):
            raise UsageError(f"{self.db}: the library was built with other weights of model {name!r} "
                             f"(fingerprint {fp}); pass --model with the library's model or use another DB")

    @property
    def ann(self) -> AnnIndex:
        if self._ann is None:
            self._check_model()
            self._ann = AnnIndex(self.path, self.model.own_dim, self.model.name).open(self.con)
        return self._ann

    @contextmanager
    def _ann_lock(self) -> Iterator[None]:
        """Serialise index writes of concurrent writers (SQLite serialises the rows itself)."""
        try:
            fd = os.open(str(self.path) + ".hnsw.lock", os.O_CREAT | os.O_RDWR, 0o644)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ add
    def add(self, path: str | os.PathLike, save_index: bool = True) -> int:
        """Add the non-PLT functions of the binary at path, those it has no name for too (name "": no name to
        give, but the call graph and address order around the named ones, as transfer matches a shared
        library's internal functions); returns how many, 0 if the binary is already in the library. With
        `save_index` False the vector index is written once, by save_index or close, instead of after each of
        many adds (rewriting it is most of the time of adding a small binary to a large library)."""
        from ..binary import Binary, cold_parts

        b = Binary(path, link=True)
        sha = file_sha256(path)  # the file's own (an archive's, not that of its linked copy)
        if self.con.execute("SELECT 1 FROM binaries WHERE sha256 = ?", (sha,)).fetchone():
            return 0
        seen: set[int] = set()
        funcs = [f for f in b.code_functions if not (f.address in seen or seen.add(f.address))]
        if not any(f.name for f in funcs):
            raise UsageError(f"{path}: has no function names to add (stripped?)")
        if len(funcs) > MAX_FUNCTIONS:
            raise ResourceLimitError(f"{path}: {len(funcs)} functions, more than {MAX_FUNCTIONS}")
        self._check_model()
        m = self.model
        vectors = np.ascontiguousarray(m.embed_own(funcs), np.float32)  # what the matcher compares
        rows = []
        exported = exported_addresses(b)
        # as the matcher's build_side sees a binary: its callees, and the name a handler is registered under
        code = b.code_functions
        at = [f.address for f in code]
        called, registered = dict(zip(at, callee_addresses(code))), dict(zip(at, table_keys(code)))
        keys = dict(zip(at, zip(code_keys(code), data_keys(code))))  # identical code (and constants)
        cold = {at[c] for c, _ in cold_parts(code)}
        later = later_columns(code)
        for f, v in zip(funcs, vectors):
            facts = f.facts
            callees = list(dict.fromkeys(called[f.address]))
            strings = facts.strings[:MAX_STRINGS] + sorted(registered.get(f.address, ()))
            rows.append((f.address, f.size, f.name or "", v.tobytes(), json.dumps(callees), json.dumps(facts.imports),
                         json.dumps(strings), facts.n_blocks, int(f.address in exported),
                         *keys.get(f.address, (None, None)), int(f.address in cold), *later[f.address]))
        ann = self.ann  # opened (or rebuilt) before this add's rows exist
        con = self.con
        with immediate(con):
            if con.execute("SELECT 1 FROM binaries WHERE sha256 = ?", (sha,)).fetchone():
                return 0  # already there: the transaction wrote nothing
            ids = self._insert(con, b, sha, path, rows)
        # rows are committed: now the index, written to a temporary file and renamed
        order = np.argsort([r[0] for r in rows], kind="stable")
        with self._ann_lock():
            ann.extend(con, vectors[order], ids, save=save_index)
        self._unsaved |= not save_index
        return len(rows)

    def _insert(self, con: sqlite3.Connection, b, sha: str, path, rows: list[tuple]) -> np.ndarray:
        """The rows of one binary, inside the caller's transaction; returns the new ids in address order."""
        m = self.model
        if get_meta(con, "model_name") is None:
            set_meta(con, "model_name", m.name)
            set_meta(con, "model_dim", str(m.own_dim))
            set_meta(con, "model_fingerprint", model_fingerprint(m))
        cur = con.execute(
            "INSERT INTO binaries(path, sha256, build_id, model_name, dim, added_at, n_functions) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (os.path.abspath(path), sha, b.image.build_id, m.name, m.own_dim,
             datetime.now(UTC).isoformat(timespec="seconds"), len(rows)))
        bid = cur.lastrowid
        con.executemany(
            "INSERT INTO functions(binary_id, address, size, name, vector, callees, imports, strings, n_blocks, "
            "exported, code_key, data_key, cold, wrapper, slots, tables, cet_key, shape) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(bid, *r) for r in rows])
        return np.array([r[0] for r in con.execute("SELECT id FROM functions WHERE binary_id = ? ORDER BY address",
                                                   (bid,))], np.int64)

    def outdated(self) -> int:
        """How many binaries were added before the library kept wrapper status (schema 5), slots (schema 6),
        tables of code pointers (schema 7), the code keys without endbr64 (schema 8) or the struct field accesses
        (schema 9); fill_outdated adds them."""
        return self.con.execute(f"SELECT count(DISTINCT binary_id) FROM functions WHERE {OUTDATED}").fetchone()[0]

    def fill_outdated(self, report: Callable[[str, str], None] | None = None) -> list[tuple[str, str]]:
        """Wrapper status, slots, tables, code keys without endbr64 and field accesses for the binaries added
        before the library kept them (schemas 5 to 9), read again from their paths: each one whose file is still
        there with the same sha256 (a function its discovery no longer finds counts as no wrapper, with no slots,
        no tables and no field accesses, and keeps its code key). Returns (path, what happened) for each binary
        that lacked them, and tells `report` each as it is done."""
        from ..binary import Binary

        con = self.con
        todo = con.execute("SELECT id, path, sha256 FROM binaries WHERE id IN (SELECT DISTINCT binary_id FROM "
                           f"functions WHERE {OUTDATED}) ORDER BY id").fetchall()
        done: list[tuple[str, str]] = []

        def note(path: str, what: str) -> None:
            done.append((path, what))
            if report:
                report(path, what)

        for bid, path, sha in todo:
            if not os.path.isfile(path):
                note(path, "not found: left as it was")
                continue
            try:
                same = file_sha256(path) == sha
            except OSError as exc:
                note(path, f"cannot be read ({exc.strerror}): left as it was")
                continue
            if not same:
                note(path, "changed since it was added: left as it was")
                continue
            later = later_columns(Binary(path, link=True).code_functions)
            rows = con.execute("SELECT id, address FROM functions WHERE binary_id = ?", (bid,)).fetchall()
            # a function no longer found: none of them, and its code key as it was
            got = [later.get(a, (0, "[]", "[]", None, "null")) for _, a in rows]
            with immediate(con):
                con.executemany("UPDATE functions SET wrapper = ?, slots = ?, tables = ?, "
                                "cet_key = coalesce(?, code_key), shape = ? WHERE id = ?",
                                [(*g, fid) for g, (fid, _) in zip(got, rows)])
            note(path, f"{sum(g[0] for g in got)} thunks and wrappers marked, "
                       f"{sum(g[1] != '[]' for g in got)} functions' callback slots kept")
        return done

    # ------------------------------------------------------------------ queries
    def binaries(self) -> list[dict]:
        """Every binary in the library: path, sha256, functions, named (those with a name), build_id, model,
        dim, added_at."""
        counts = function_counts(self.con)
        cur = self.con.execute("SELECT id, path, sha256, n_functions, build_id, model_name, dim, added_at "
                               "FROM binaries ORDER BY id")
        return [{"id": r[0], "path": r[1], "sha256": r[2], "functions": r[3], "named": counts.get(r[0], (0, 0))[0],
                 "build_id": r[4], "model": r[5], "dim": r[6], "added_at": r[7]} for r in cur]

    def names(self) -> set[str]:
        """Every function name the library holds (not the functions kept without one)."""
        return {n for n, in self.con.execute("SELECT DISTINCT name FROM functions WHERE name != ''")}

    def identify(self, target, min_confidence: float | None = None, progress=None, stage=None) -> dict:
        """Names for every function of target (a Binary, or a path opened as stripped) from the library;
        `progress` counts functions embedded, `stage` hears when matching begins."""
        from ..binary import Binary
        from .identify import build_result

        if not isinstance(target, Binary):
            target = Binary(target, ignore_symbols=True)
        code = target.code_functions
        ann = self.ann
        vectors = self.model.embed_own(code, progress=progress)  # one embedding call for the whole target
        if stage:
            stage("matching")
        return build_result(self.con, self.db, target, code, vectors, ann, self.model.name, min_confidence,
                            member_columns=self.model.member_columns(),
                            sketch_columns=self.model.sketch_columns())


def later_columns(code: list) -> dict[int, tuple[int, str, str, int | None, str]]:
    """The columns schemas 5 to 9 added, for each of a binary's code functions by address (the first function
    at an address): wrapper status, slots and tables that begin with it (JSON), the code key without a leading
    endbr64, its field accesses (keys.field_shapes as JSON: [shape, [offsets]], null for none). What `index
    add` writes and `index upgrade` fills in for binaries added before."""
    at = [f.address for f in code]
    tables = tables_by_first(code)
    out: dict[int, tuple[int, str, str, int | None, str]] = {}
    for f, groups, cet, shape in zip(code, stored_slots(code), code_keys(code, cet_blind=True), field_shapes(code)):
        out.setdefault(f.address, (int(is_wrapper(f.facts.mnemonics)), json.dumps(slots_by_address(groups, at)),
                                   json.dumps(tables.get(f.address, [])), cet, json.dumps(shape)))
    return out


def tables_by_first(code: list) -> dict[int, list[list[int]]]:
    """The binary's tables of code pointers (keys.pointer_tables) as the library keeps them: each under the
    address of its first entry, as the addresses of its entries."""
    out: dict[int, list[list[int]]] = {}
    for tab in pointer_tables(code):
        out.setdefault(code[tab[0]].address, []).append([code[j].address for j in tab])
    return out


def slots_by_address(groups: list[dict], at: list[int]) -> list[list]:
    """A function's groups of slots (keys.stored_slots: indices into the binary's code functions, whose
    addresses `at` gives) as the library keeps them: each group a list of [slot, function address], a slot
    being a field offset, ["imp", name, argument] or ["fn", callee address, argument]."""
    out = []
    for group in groups:
        items = []
        for key, j in group.items():
            if isinstance(key, tuple):
                key = [key[0], at[key[1]] if key[0] == "fn" else key[1], key[2]]
            items.append([key, at[j]])
        out.append(items)
    return out


@contextmanager
def open_store(db: str, model=None, create: bool = True) -> Iterator[Store]:
    """Open the library at db (a file path; created with create=True). Use as a context manager."""
    store = Store(db, model, create)
    try:
        yield store
    finally:
        store.close()
