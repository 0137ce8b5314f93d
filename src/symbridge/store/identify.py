"""Identify: name a target's functions from every binary in the library (the transfer JSON, plus "binary")."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..match.confidence import Calibrator, match_features
from ..match.agreement import match_both_ways
from ..match.keys import code_keys, wrappers
from ..match.matcher import Match
from ..match.side import Side, blend_thunks, build_side, column_view
from ..match.transfer import name_target_cold_parts, plt_row
from ..model.context import caller_rows
from .db import function_counts

K_NEIGHBOURS = 20
N_CANDIDATES = 5
MAX_STRUCTURAL_BINARIES = 4  # whole-binary matching against at most this many library binaries
STRONG_SIM = 0.8  # a nearest neighbour at least this close is seldom chance (structural_binaries)
MIN_STRONG = 3  # a binary is matched whole when at least this many of its functions are such neighbours
COPY_MIN_SIZE = 16  # bytes: shorter code without constants (a getter, a vtable call) is no copy's evidence
RELATED_SHARE = 0.1  # library binaries holding much the same code (RelatedBinaries): this share of the
RELATED_MIN = 10  # smaller one's code keys, and at least this many, are the other's too
MIN_SHARE = 0.1  # and they are at least this share of its named functions, or of all of them
# the startup code gcc's crt files put into every binary: no evidence of which library a target holds
STARTUP = frozenset({"_init", "_fini", "_start", "deregister_tm_clones", "register_tm_clones",
                     "__do_global_dtors_aux", "frame_dummy", "__libc_csu_init", "__libc_csu_fini"})


@dataclass(frozen=True)
class RefFunction:
    id: int
    binary: str
    address: int
    size: int
    name: str  # "" for a function the binary has no name for (kept for the call graph and address order)

    @property
    def label(self) -> str:
        return self.name or f"sub_{self.address:x}"


def rows_in(con: sqlite3.Connection, sql: str, values: list, chunk: int = 900):
    """The rows of sql, whose `{marks}` is an IN list, over values, chunk at a time (SQLite's limit on host
    parameters)."""
    for i in range(0, len(values), chunk):
        part = values[i:i + chunk]
        yield from con.execute(sql.format(marks=",".join("?" * len(part))), part)


def fetch_functions(con: sqlite3.Connection, ids: set[int]) -> dict[int, RefFunction]:
    """The stored functions with these ids (looked up by primary key, binaries joined in Python)."""
    paths = dict(con.execute("SELECT id, path FROM binaries"))
    return {fid: RefFunction(fid, paths[bid], addr, size, name) for fid, bid, addr, size, name in rows_in(
        con, "SELECT id, binary_id, address, size, name FROM functions WHERE id IN ({marks})", sorted(ids))}


class RelatedBinaries:
    """Whether two library binaries hold much the same code: of the smaller one's distinct code keys, at least
    RELATED_SHARE (and RELATED_MIN of them) are the other's too, as a legacy library that bundles the new one
    (libtheora.so and libtheoradec.so) or two builds of one library. Short stubs, the same few instructions,
    are found across unrelated libraries (a vtable call: gnulib's gl_list_next_node is speex_encode)."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con
        self.keys: dict[int, set[int]] = {}
        self.known: dict[tuple[int, int], bool] = {}

    def code_keys(self, bid: int) -> set[int]:
        if bid not in self.keys:
            self.keys[bid] = {k for k, in self.con.execute(
                "SELECT code_key FROM functions WHERE binary_id = ? AND code_key IS NOT NULL", (bid,))}
        return self.keys[bid]

    def __call__(self, a: int, b: int) -> bool:
        key = (min(a, b), max(a, b))
        if key not in self.known:
            ka, kb = self.code_keys(a), self.code_keys(b)
            shared = len(ka & kb)
            self.known[key] = shared >= RELATED_MIN and shared >= RELATED_SHARE * min(len(ka), len(kb))
        return self.known[key]


def named_copies(con: sqlite3.Connection, unnamed: set[int],
                 related: RelatedBinaries | None = None) -> dict[int, RefFunction]:
    """For stored functions without a name (ids): the named function of another, related library binary
    (RelatedBinaries) with the same code and constants (code and data keys), where all such copies carry one
    name; code shorter than COPY_MIN_SIZE only where it reads constants. A library often holds one
    code twice: libtheora.so's internal `th_decode_alloc` is libtheoradec.so's export of that name."""
    paths = dict(con.execute("SELECT id, path FROM binaries"))
    keys: dict[int, tuple[int, int, int | None]] = {}  # id -> (binary, code key, data key)
    for fid, bid, size, code_key, data_key in rows_in(
            con, "SELECT id, binary_id, size, code_key, data_key FROM functions WHERE id IN ({marks})",
            sorted(unnamed)):
        if code_key is not None and (size >= COPY_MIN_SIZE or data_key is not None):
            keys[fid] = (bid, code_key, data_key)
    copies: dict[tuple[int, int | None], list[tuple[int, int, int, int, str]]] = defaultdict(list)
    for fid, bid, addr, size, name, code_key, data_key in rows_in(
            con, "SELECT id, binary_id, address, size, name, code_key, data_key FROM functions "
            "WHERE name != '' AND code_key IN ({marks})", sorted({k for _, k, _ in keys.values()})):
        copies[code_key, data_key].append((fid, bid, addr, size, name))
    related = related or RelatedBinaries(con)
    out: dict[int, RefFunction] = {}
    for fid, (bid, code_key, data_key) in keys.items():
        found = sorted(c for c in copies.get((code_key, data_key), ()) if c[1] != bid and related(bid, c[1]))
        if found and len({c[4] for c in found}) == 1:
            cid, cbid, addr, size, name = found[0]
            out[fid] = RefFunction(cid, paths[cbid], addr, size, name)
    return out


def same_vector(r: RefFunction, cand: list[tuple[float, RefFunction]],
                related: Callable[[str, str], bool] = lambda a, b: True) -> RefFunction | None:
    """For a function r without a name among a target function's nearest neighbours (score, function): the
    named neighbour of another, related binary exactly as near (the same vector), where all such carry one
    name."""
    if r.name or r.size < COPY_MIN_SIZE:
        return None
    at = next((sc for sc, c in cand if c.id == r.id), None)
    if at is None:
        return None
    found = [c for sc, c in cand
             if c.name and c.binary != r.binary and abs(sc - at) <= 1e-6 and related(r.binary, c.binary)]
    return found[0] if found and len({c.name for c in found}) == 1 else None


def assign_one_to_one(labels: np.ndarray, scores: np.ndarray, refs: dict[int, RefFunction]) -> dict[int, int]:
    """Greedy by score: each target function and each reference (binary, address) used at most once."""
    pairs = [(float(scores[i, j]), i, int(labels[i, j]))
             for i in range(labels.shape[0]) for j in range(labels.shape[1]) if int(labels[i, j]) in refs]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    taken: set[tuple[str, int]] = set()
    match: dict[int, int] = {}
    for _, i, fid in pairs:
        if i in match:
            continue
        r = refs[fid]
        key = (r.binary, r.address)
        if key in taken:
            continue
        taken.add(key)
        match[i] = fid
    return match


def reference_side(con: sqlite3.Connection, binary_id: int, path: str) -> tuple[Side, list[RefFunction]]:
    """One stored binary as the matcher's reference side: vectors, call graph, strings, slots, tables of code
    pointers and field accesses from the library; its code keys without endbr64 where the library has them
    (has_cet_keys)."""
    key = "cet_key" if has_cet_keys(con, binary_id) else "code_key"
    rows = con.execute(f"SELECT id, address, size, name, vector, callees, strings, exported, {key}, data_key, "
                       "cold, wrapper, slots, tables, shape FROM functions WHERE binary_id = ? ORDER BY address",
                       (binary_id,)).fetchall()
    refs = [RefFunction(fid, path, addr, size, name) for fid, addr, size, name, *_ in rows]
    index = {r.address: k for k, r in enumerate(refs)}
    callees = [[index[a] for a in dict.fromkeys(json.loads(row[5])) if a in index and index[a] != k]
               for k, row in enumerate(rows)]
    callers = caller_rows(callees)
    vectors = np.stack([np.frombuffer(row[4], np.float32) for row in rows]) if rows else np.zeros((0, 1))
    flags = [row[7] for row in rows]
    exported = np.array(flags, bool) if rows and None not in flags else None  # None: added by schema version 1
    parts = [row[10] for row in rows]
    cold = np.array(parts, bool) if rows and None not in parts else None  # None: added before schema version 4
    # code and data keys: NULL (None, no evidence) in rows added before schema version 3
    side = Side([r.address for r in refs], [r.size for r in refs], vectors, callees, callers,
                [set(json.loads(row[6])) for row in rows], [row[8] for row in rows], [r.name or None for r in refs],
                exported=exported, data_key=[row[9] for row in rows], cold=cold)
    kept = [row[12] for row in rows]
    if rows and None not in kept:  # the slots (NULL before schema version 6: none, no evidence)
        side.slots = [slots_by_index(json.loads(k), index) for k in kept]
    kept = [row[13] for row in rows]
    if rows and None not in kept:  # the tables of code pointers (NULL before schema version 7: none)
        side.tables = [[index[a] for a in tab if a in index] for k in kept for tab in json.loads(k)]
    kept = [row[14] for row in rows]
    if rows and None not in kept:  # the field accesses (NULL before schema version 9: none)
        side.shapes = [(shape[0], tuple(shape[1])) if (shape := json.loads(k)) else None for k in kept]
    flags = [row[11] for row in rows]
    if None not in flags:  # thunks and wrappers are known by where they jump (NULL before schema version 5)
        blend_thunks(side, flags)
    return side, refs


def slots_by_index(groups: list[list], index: dict[int, int]) -> list[dict]:
    """A function's groups of slots as the library keeps them (store.slots_by_address) in the matcher's terms
    (Side.slots: indices of the binary's functions); what the library lacks is left out."""
    out = []
    for items in groups:
        group = {}
        for key, addr in items:
            if addr not in index:
                continue
            if isinstance(key, list):
                if key[0] == "fn" and key[1] not in index:
                    continue
                key = (key[0], index[key[1]] if key[0] == "fn" else key[1], key[2])
            group[key] = index[addr]
        if group:
            out.append(group)
    return out


def has_cet_keys(con: sqlite3.Connection, binary_id: int) -> bool:
    """Whether the library holds the binary's code keys without a leading endbr64 (added at schema version 8 or
    by `index upgrade`): then the target's are compared that way too, as transfer does."""
    return con.execute("SELECT 1 FROM functions WHERE binary_id = ? AND cet_key IS NULL AND code_key IS NOT NULL "
                       "LIMIT 1", (binary_id,)).fetchone() is None


def has_wrapper_flags(con: sqlite3.Connection, binary_id: int) -> bool:
    """Whether the library knows which of the binary's functions are wrappers (added at schema version 5 or
    later): only then are the target's blended too (blend_thunks on one side alone pulls them apart)."""
    return con.execute("SELECT 1 FROM functions WHERE binary_id = ? AND wrapper IS NULL LIMIT 1",
                       (binary_id,)).fetchone() is None


def structural_binaries(labels: np.ndarray, scores: np.ndarray, refs: dict[int, RefFunction],
                        counts: Callable[[str], tuple[int, int]], n_target: int) -> list[str]:
    """The library binaries to match whole against the target (at most MAX_STRUCTURAL_BINARIES): the one that
    holds the nearest neighbour of the most target functions, when that is at least a twentieth of them (the
    target is mostly that binary, in another build), and those of which at least MIN_STRONG functions, and at
    least a share of MIN_SHARE of their named functions or of all their functions, are the nearest neighbours
    of target functions at a similarity of STRONG_SIM or more (startup code aside), largest share first.
    Counted by hits alone, a program's own functions hit the largest binaries of the library by chance and
    hide a small library linked into it; a program linking a shared library holds the exports it uses (the
    named functions) and what they call (internal ones, unnamed). counts(binary): its (named, all)
    functions."""
    hits: Counter = Counter()
    strong: dict[str, tuple[set[int], set[int]]] = {}
    for i in range(labels.shape[0] if labels.shape[1] else 0):
        r = refs.get(int(labels[i, 0]))
        if r is None:
            continue
        hits[r.binary] += 1
        if scores[i, 0] >= STRONG_SIM and r.name not in STARTUP:
            named, every = strong.setdefault(r.binary, (set(), set()))
            every.add(r.id)
            if r.name:
                named.add(r.id)
    chosen = [b for b, n in hits.most_common(1) if n >= max(3, n_target // 20)]
    share = {}
    for b, found in strong.items():
        x = [len(ids) / max(n, len(ids)) for ids, n in zip(found, counts(b)) if len(ids) >= MIN_STRONG]
        if x and max(x) >= MIN_SHARE and b not in chosen:
            share[b] = max(x)
    chosen += sorted(share, key=lambda b: (-share[b], b))
    return chosen[:MAX_STRUCTURAL_BINARIES]


def structural_matches(con: sqlite3.Connection, code: list, vectors: np.ndarray, top_binaries: list[int],
                       cal: Calibrator, member_columns: Sequence[np.ndarray] = (),
                       sketch_columns: np.ndarray | None = None
                       ) -> dict[int, tuple[float, RefFunction, Match, list[float]]]:
    """Whole-binary matching (call graph, address order, strings) of the target against each of the given
    library binaries; for each target function the most probable of its matches. ``member_columns`` and
    ``sketch_columns``: the model's (Model.member_columns, Model.sketch_columns), for the matcher's agreement
    evidence (the library keeps no instructions, so the sketch is the one other view of the code here)."""
    paths = dict(con.execute("SELECT id, path FROM binaries"))
    plain = build_side(code, vectors, cet_blind=False)
    sides: dict[tuple[bool, bool], Side] = {(False, False): plain}  # by (CET-blind code keys, thunks blended)

    def target_side(cet: bool, blend: bool) -> Side:
        if (cet, blend) not in sides:
            side = replace(target_side(cet, False) if blend else plain)
            if blend:
                blend_thunks(side, wrappers(code))
            else:
                side.code_key = code_keys(code, cet_blind=True)
            sides[cet, blend] = side
        return sides[cet, blend]

    best: dict[int, tuple[float, RefFunction, Match, list[float]]] = {}
    for bid in top_binaries:
        ref_side, refs = reference_side(con, bid, paths[bid])
        if not refs:
            continue
        target = target_side(has_cet_keys(con, bid), has_wrapper_flags(con, bid))  # keys as the library's
        views = [] if sketch_columns is None else [(column_view(ref_side, sketch_columns),
                                                    column_view(target, sketch_columns))]
        res = match_both_ways(ref_side, target, member_columns=member_columns, views=views)
        items = list(res.matches.items())
        # the library keeps no instructions: the signatures go unjudged (signature_agrees stays 1.0)
        feats = [res.features(i, code[i].size, refs[m.s].size) for i, m in items]
        for (i, m), x, p in zip(items, feats, cal.probability(np.array(feats)) if feats else []):
            if i not in best or p > best[i][0]:
                best[i] = (float(p), refs[m.s], m, x)
    return best


def build_result(con: sqlite3.Connection, db: str, target, code: list, vectors: np.ndarray, ann, model_name: str,
                 min_confidence: float | None, calibrator: Calibrator | None = None,
                 member_columns: Sequence[np.ndarray] = (), sketch_columns: np.ndarray | None = None) -> dict:
    """The transfer-shaped result for target's functions (code: its non-PLT functions, vectors: theirs;
    member_columns, sketch_columns: the model's, as structural_matches takes them)."""
    cal = calibrator or Calibrator.default()
    thr = cal.threshold if min_confidence is None else float(min_confidence)
    labels, scores = ann.query(vectors, K_NEIGHBOURS)
    refs = fetch_functions(con, {int(x) for x in labels.ravel()})
    match = assign_one_to_one(labels, scores, refs)
    ids_of = dict(con.execute("SELECT path, id FROM binaries"))
    counts = function_counts(con)
    top_binaries = [ids_of[b] for b in structural_binaries(labels, scores, refs, lambda path: counts[ids_of[path]],
                                                            len(code))]
    structural = structural_matches(con, code, vectors, top_binaries, cal, member_columns, sketch_columns)
    related = RelatedBinaries(con)
    copies = named_copies(con, {r.id for _, r, _, _ in structural.values() if not r.name}, related)
    lent = {r.id for _, r, _, _ in structural.values()}  # a named copy names one target function, not one more
    rows: list[dict] = []
    feats: list[list[float]] = []
    owners: list[tuple[dict, RefFunction]] = []
    for i, f in enumerate(code):
        cand = [(float(scores[i, j]), refs[int(labels[i, j])]) for j in range(labels.shape[1])
                if int(labels[i, j]) in refs]
        cand.sort(key=lambda t: (-t[0], t[1].id))
        cands = [{"name": r.label, "address": r.address, "score": round(s, 4), "binary": r.binary}
                 for s, r in cand[:N_CANDIDATES]]
        row = {"address": f.address, "size": f.size, "name": None, "confidence": 0.0, "reference_address": None,
               "binary": None, "via": [], "candidates": cands}
        fid = match.get(i)
        if i in structural:
            _, r, m, x = structural[i]
            feats.append(x)
            via = list(m.via)
            copy = copies.get(r.id) or same_vector(r, cand, lambda a, b: related(ids_of[a], ids_of[b]))
            if copy is not None and copy.id not in lent:  # the matched binary has no name for it: another
                r = copy  # has the same code named
                lent.add(r.id)
                via += [] if "identical" in via else ["identical"]
            owners.append((row, r))
            row.update(reference_address=r.address, binary=r.binary, via=via)
            if not any(c["address"] == r.address and c["binary"] == r.binary for c in cands):
                cands.append({"name": r.label, "address": r.address, "score": round(m.sim, 4), "binary": r.binary})
        elif fid is not None:
            r = refs[fid]
            sim = next(s for s, c in cand if c.id == fid)
            other = [s for s, c in cand if c.label != r.label]
            margin = sim - (other[0] if other else 0.0)
            top1 = bool(cand) and cand[0][1].id == fid
            # the library's reverse neighbours are not searched: the target's own nearest neighbour stands in. A
            # binary not matched whole has no other matching that could agree (reverse, plain, members, views):
            # their agreement counts as absent (on held-out train programs 1 in 33 such names was right when it
            # counted as present, train.identify_eval)
            n_close = sum(1 for s, _ in cand if s >= sim - 0.03)
            rank = next(k for k, (_, c) in enumerate(cand) if c.id == fid)
            feats.append(match_features(sim, margin, 0, f.size, r.size, ["embedding"], top1=top1, reverse_top1=top1,
                                        n_close=max(n_close, 1), reverse_margin=margin, rank=rank,
                                        reverse_agrees=False, plain_agrees=False, members_agree=0.0,
                                        views_agree=0.0, nearby=0.0))
            owners.append((row, r))
            row.update(reference_address=r.address, binary=r.binary, via=["embedding"])
            if not any(c["address"] == r.address and c["binary"] == r.binary for c in cands):
                # outside the top N: appended, so that the list stays best first
                cands.append({"name": r.label, "address": r.address, "score": round(sim, 4), "binary": r.binary})
        rows.append(row)
    if feats:
        for (row, r), p in zip(owners, cal.probability(np.array(feats))):
            row["confidence"] = round(float(p), 4)
            if p >= thr and r.name:
                row["name"] = r.name
    name_target_cold_parts(rows, code, cal.threshold)
    rows += [dict(plt_row(f), binary=None) for f in target.functions if f.is_plt]
    rows.sort(key=lambda r: r["address"])
    return {"reference": db, "target": str(target.path), "model": model_name, "min_confidence": thr,
            "functions": rows}
