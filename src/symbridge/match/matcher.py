"""Whole-binary matching: seeds from unambiguous evidence, then call-graph and address-order propagation,
then the rest best-first by a structural score, then a one-to-one pass on the similarity alone, and a last
local pass that moves matches the call graph contradicts. Similarity is the embeddings' cosine, the better of
it and the inlined view's where one side has one, less a penalty between exported and internal functions of
two libraries and between a whole function and a part split off one (gcc's ``foo.cold``, which holds foo's
error messages and would take foo's name from a build that splits nothing off). Every match keeps the
evidence behind it (``via``)."""

from __future__ import annotations

from collections import Counter, defaultdict
import bisect
import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .inline import inlinable
from .side import Side, code_and_data, exports_agree
from .similarity import BLOCK_CELLS, scores, top_k

K = 10
HUB = 32  # call-graph neighbourhoods larger than this are not searched for candidates
# ... by refine_best, larger than this: a Go program's runtime.morestack_noctxt neighbours nearly every function,
# and each unmatched function kept tens of thousands of its neighbours as candidates (kubectl: 20 GB and
# counting). The largest neighbourhood of a C library seen is libcrypto's ERR_new, 1,977
REFINE_HUB = 4096
PICK_CELLS = 1 << 24  # pick compares larger neighbourhoods in blocks (similarity.top_k), not in one matrix


@dataclass
class Params:
    """Thresholds of the matcher (fitted on train-sources pairs by symbridge.train.fit_matcher)."""

    seed_sim: float = 0.80
    seed_margin: float = 0.04
    string_sim: float = 0.35
    prop_sim: float = 0.45
    prop_margin: float = 0.02
    single_sim: float = 0.35
    order_sim: float = 0.35
    final_sim: float = 0.70
    final_margin: float = 0.0
    min_identical_len: int = 6  # bytes: identical code shorter than this is no evidence
    identical_callee_sim: float = 0.9  # identical code seeds a match only where its callees are this similar
    # place by place (-1: always)
    refine: bool = True  # match what seeds and propagation left best-first by a structural score
    nb_weight: float = 0.3  # score bonus per consistent matched call-graph neighbour (normalised)
    order_weight: float = 0.15  # score bonus when the pair sits between consistent address-order anchors
    assign_all: bool = True  # a last one-to-one pass without threshold; confidence decides naming
    inline_ratio: float = 0.85  # one side has fewer than this share of the other's functions: compare the
    inline_max_size: int = 64  # other's inlined view too (callees of one caller or at most this many bytes)
    export_penalty: float = 1.0  # similarity taken off a pair of an exported and a non-exported function when
    export_ratio: float = 0.5  # both sides export functions and the smaller export count is this share of the larger
    swap_weight: float = 0.3  # last pass: a match moves (or two swap) when similarity plus this much per
    swap_gain: float = 0.25  # consistently matched call-graph neighbour rises by more than swap_gain
    order_perm: float = 0.04  # address order pairs a gap's functions by similarity instead when that is this much
    # more similar per pair (0: always in order)
    order_trust: float = 0.9  # below this share of seeds in address order, unequal gaps pair by similarity
    # where that is order_perm a pair more similar (0: never)
    order_veto: float = 0.1  # address order does not pair (a, b) when b and another free target function are
    # each other's nearest with a similarity at least this much higher (0: never vetoes)
    cold_penalty: float = 0.0  # similarity taken off a pair of a split-off cold part and a whole function
    unfold_margin: float = 0.0  # last pass: a target function matched to a helper moves to the helper's
    # unmatched caller when it is this much more similar to the caller with its inlinable callees (0: never)
    slots: bool = True  # propagate_slots: callbacks paired by the struct field or call argument they are put in
    slot_args: bool = True  # and by call arguments (False: struct fields only)
    shift_run: int = 1  # look-alike accessors of a struct whose fields moved: runs at least this long between two
    # matches pair in place (repair_shifted_runs; 0: never)
    vote: int = 0  # match_both_ways: a target function moves to the reference function that at least this many
    # of its agreement runs choose, when they outvote the first matching (0: never)

    @classmethod
    def default(cls) -> Params:
        """The thresholds fitted on train-sources pairs (weights/matcher.json), else the built-in ones."""
        ref = resources.files("symbridge.model") / "weights" / "matcher.json"
        with resources.as_file(ref) as p:
            if Path(p).is_file():
                data = json.loads(Path(p).read_text())
                return cls(**{k: v for k, v in data.get("params", {}).items() if k in cls.__dataclass_fields__})
        return cls()

    def to_dict(self) -> dict:
        return asdict(self)


def is_settled(m: Match) -> bool:
    """A match the last passes (improve, unfold) leave: own names, identical code, a run of shifted accessors
    (repair_shifted_runs), whose similarity says less than the evidence that made them."""
    return m.via[0] in ("symbol", "identical") or "layout" in m.via


def field_shift(p: tuple | None, s: tuple | None) -> int | None:
    """The one constant by which target function p's field offsets differ from reference function s's where the
    two have one shape (keys.field_shapes), else None."""
    if p is None or s is None or p[0] != s[0]:
        return None
    shifts = {a - b for a, b in zip(p[1], s[1])}
    return shifts.pop() if len(shifts) == 1 else None


@dataclass
class Match:
    s: int
    sim: float
    via: list[str]
    support: int = 0
    top1: bool = False  # s is the target function's nearest reference function
    reverse_top1: bool = False  # and the target function is s's nearest target function
    degree: int = 0  # callers + callees of the target function
    order_support: int = 0  # the nearest matched functions before and after that agree with this one's place
    order_run: int = 0  # matches before and after (up to 4 each) that go on in the same address order
    caller_diff: int = 0  # |callers of the target function - callers of the reference function|
    n_close: int = 1  # candidates of the target function within 0.03 of this match's similarity
    conflict: int = 0  # matched call-graph neighbours of the target function whose match is no neighbour of s
    callee_diff: int = 0  # |callees of the target function - callees of the reference function|
    reverse_margin: float = 1.0  # sim minus the best similarity of s to another target function
    rank: int = 0  # s's place among the target function's candidates (K when it is not among them)
    reverse_agrees: bool = True  # matching the other way round (target as reference) makes the same pair
    plain_agrees: bool = True  # and matching without address-order propagation or refinement
    members_agree: float = 1.0  # the share of ensemble members whose own matching makes the same pair
    views_agree: float = 1.0  # and the share of other views of the code (match_both_ways's views) whose does
    nearby: float = 1.0  # the share of the 8 target functions around it in address order whose match is sure


@dataclass
class MatchResult:
    matches: dict[int, Match] = field(default_factory=dict)  # target index -> match
    cand_idx: np.ndarray | None = None
    cand_val: np.ndarray | None = None
    seed_share: float = 0.0  # share of the target's functions matched by seeds
    size_shift: float = 0.0  # median log2 size ratio (target / reference) of mutual nearest-neighbour matches
    sim_median: float = 0.0  # and their median similarity

    def features(self, i: int, size_p: int, size_s: int, signature_agrees: float = 1.0) -> list[float]:
        """The calibration features of target function i's match (its margin over the next candidate;
        `signature_agrees` from confidence.signature_agreement of the two functions)."""
        from .confidence import match_features

        m = self.matches[i]
        others = [float(v) for j, v in zip(self.cand_idx[i], self.cand_val[i]) if int(j) != m.s]
        margin = m.sim - (others[0] if others else 0.0)
        return match_features(m.sim, margin, m.support, size_p, size_s, m.via, top1=m.top1,
                              reverse_top1=m.reverse_top1, degree=m.degree, order_support=m.order_support,
                              seed_share=self.seed_share, order_run=m.order_run, size_shift=self.size_shift,
                              sim_median=self.sim_median, caller_diff=m.caller_diff, n_close=m.n_close,
                              conflict=m.conflict, callee_diff=m.callee_diff, reverse_margin=m.reverse_margin,
                              rank=m.rank, reverse_agrees=m.reverse_agrees, plain_agrees=m.plain_agrees,
                              members_agree=m.members_agree, views_agree=m.views_agree,
                              signature_agrees=signature_agrees, nearby=m.nearby)


class Matcher:
    def __init__(self, ref: Side, tgt: Side, params: Params | None = None):
        self.S, self.P = ref, tgt
        self.p = params or Params.default()
        self.match: dict[int, Match] = {}
        self.taken: dict[int, int] = {}  # reference index -> target index
        self.export_penalty = self.p.export_penalty if exports_agree(ref, tgt, self.p.export_ratio) else 0.0
        self.penalties = []  # (target flags, reference flags, penalty): pairs whose flags differ lose the penalty
        if self.export_penalty:
            self.penalties.append((tgt.exported, ref.exported, self.export_penalty))
        if self.p.cold_penalty and ref.cold is not None and tgt.cold is not None:
            self.penalties.append((tgt.cold, ref.cold, self.p.cold_penalty))
        self.table_places: dict[int, list[tuple[int, int]]] = defaultdict(list)  # reference function -> (table, place)
        self.tables_of: dict[int, list[int]] = defaultdict(list)  # target function -> the target tables holding it
        self.dirty: set[int] | None = None  # target tables with entries matched since propagate_tables ran; None: all
        self.nearest: tuple | None = None  # run's candidates: (idx, val) of the targets, (ridx, rval) of the references
        self.seed_order = 1.0  # run's seeds: the share of them (in target order) whose reference goes on in order
        for t, tab in enumerate(ref.tables):
            for k, j in enumerate(tab):
                self.table_places[j].append((t, k))
        for t, tab in enumerate(tgt.tables):
            for i in set(tab):
                self.tables_of[i].append(t)

    def sim(self, i: int, j: int) -> float:
        P, S = self.P, self.S
        v = float(P.vectors[i] @ S.vectors[j])
        if S.inlined is not None:
            v = max(v, float(P.vectors[i] @ S.inlined[j]))
        if P.inlined is not None:
            v = max(v, float(P.inlined[i] @ S.vectors[j]))
        return self.penalised(i, j, v)

    def penalised(self, i: int, j: int, v: float) -> float:
        """Similarity v of target function i and reference function j less the penalties whose flags differ
        for the two (export status, cold-part status)."""
        for pf, sf, pen in self.penalties:
            if pf[i] != sf[j]:
                v -= pen
        return v

    def views(self, ps, ss) -> tuple:
        """similarity.scores' arguments for target rows ps and reference rows ss (lists or slices): the plain
        vectors, the inlined view where one side has one, and the penalties where they apply."""
        P, S = self.P, self.S
        extra = [(P.inlined[ps], S.vectors[ss])] if P.inlined is not None else []
        if S.inlined is not None:
            extra.append((P.vectors[ps], S.inlined[ss]))
        return P.vectors[ps], S.vectors[ss], extra, [(pf[ps], sf[ss], pen) for pf, sf, pen in self.penalties]

    def block(self, ps: list[int], ss: list[int]) -> np.ndarray:
        """Similarities of target functions ps to reference functions ss (the better of the plain and the
        inlined view where one side has one, less the penalties where export status or cold-part status
        differ)."""
        return scores(*self.views(ps, ss))

    def candidates(self, k: int, k_reverse: int = 2) -> tuple[tuple[np.ndarray, np.ndarray],
                                                                 tuple[np.ndarray, np.ndarray]]:
        """The top k reference functions of each target function, and the top k_reverse target functions of
        each reference function (the columns of the same matrix)."""
        query, base, extra, differ = self.views(slice(None), slice(None))
        return top_k(query, base, k, extra=extra, differ=differ, k_reverse=k_reverse)

    def accept(self, i: int, j: int, via: str) -> bool:
        if i in self.match or j in self.taken:
            return False
        self.match[i] = Match(j, self.sim(i, j), [via])
        self.taken[j] = i
        if self.dirty is not None:
            self.dirty.update(self.tables_of.get(i, ()))
        return True

    def release(self, i: int) -> None:
        """Target function i's match undone (if it has one). A match that goes makes every table of code
        pointers worth seeing again (propagate_tables' dirty set no longer says what changed)."""
        old = self.match.pop(i, None)
        if old is not None and self.taken.get(old.s) == i:
            del self.taken[old.s]
        self.dirty = None

    # ------------------------------------------------------------------ seeds
    def seed_names(self) -> None:
        """Target functions that keep their own names (not stripped) anchor the rest."""
        s_by_name = defaultdict(list)
        for j, n in enumerate(self.S.names):
            if n:
                s_by_name[n].append(j)
        for i, n in enumerate(self.P.names):
            if n and len(s_by_name.get(n, ())) == 1:
                self.accept(i, s_by_name[n][0], "symbol")

    def seed_identical(self) -> None:
        """Code found once on each side is the same function. Where the same code is found more than once
        on a side, the constants it reads (Side.data_key) tell the copies apart."""
        self._seed_unique(self.S.code_key, self.P.code_key)
        self._seed_unique(code_and_data(self.S), code_and_data(self.P))

    def _seed_unique(self, s_code: list, p_code: list) -> None:
        """Seeds pairs whose key (not None) is found once on each side, code at least min_identical_len long."""
        s_keys = Counter(k for k in s_code if k is not None)
        p_keys = Counter(k for k in p_code if k is not None)
        s_at = {k: j for j, k in enumerate(s_code) if k is not None and s_keys[k] == 1}
        for i, k in enumerate(p_code):
            if k is not None and p_keys[k] == 1 and k in s_at and self.P.sizes[i] >= self.p.min_identical_len \
                    and self.callees_alike(i, s_at[k]):
                self.accept(i, s_at[k], "identical")

    def callees_alike(self, i: int, j: int) -> bool:
        """Whether what target function i and reference function j call (or jump to, or take the address of)
        is alike, place by place: each pair at least identical_callee_sim similar. Short wrappers are the same
        code whatever they call (`mov esi, 1; jmp chain_read_` and `mov esi, 1; jmp init_file_`), and one of each
        in two releases makes their code unique on both sides by chance."""
        if self.p.identical_callee_sim <= -1.0:
            return True
        pairs = list(zip(self.P.callees[i], self.S.callees[j]))
        return all(float(self.P.vectors[a] @ self.S.vectors[b]) >= self.p.identical_callee_sim for a, b in pairs)

    def seed_strings(self) -> None:
        s_owner: dict[str, list[int]] = defaultdict(list)
        for j, ss in enumerate(self.S.strings):
            for s in sorted(ss):
                s_owner[s].append(j)
        p_owner: dict[str, list[int]] = defaultdict(list)
        for i, ss in enumerate(self.P.strings):
            for s in sorted(ss):
                p_owner[s].append(i)
        votes: Counter = Counter()
        for s, ps in p_owner.items():
            ss = s_owner.get(s)
            if ss and len(ss) == 1 and len(ps) == 1 and len(s) >= 4:
                votes[(ps[0], ss[0])] += 1
        for (i, j), _ in votes.most_common():
            if self.sim(i, j) >= self.p.string_sim:
                self.accept(i, j, "string")

    def seed_mutual(self, idx: np.ndarray, val: np.ndarray, ridx: np.ndarray, rval: np.ndarray) -> None:
        for i in range(len(idx)):
            if val.shape[1] == 0:
                return
            j = int(idx[i, 0])
            margin = val[i, 0] - (val[i, 1] if val.shape[1] > 1 else 0.0)
            rmargin = rval[j, 0] - (rval[j, 1] if rval.shape[1] > 1 else 0.0)
            if int(ridx[j, 0]) == i and val[i, 0] >= self.p.seed_sim and min(margin, rmargin) >= self.p.seed_margin:
                self.accept(i, j, "embedding")

    # ------------------------------------------------------------------ propagation
    def pick(self, ps: list[int], ss: list[int], min_sim: float) -> list[tuple[int, int]]:
        """Mutual best pairs between two small unmatched neighbourhoods."""
        ps = [i for i in ps if i not in self.match]
        ss = [j for j in ss if j not in self.taken]
        if not ps or not ss:
            return []
        if len(ps) * len(ss) > PICK_CELLS:
            return self._pick_large(ps, ss, min_sim)
        m = self.block(ps, ss)
        out = []
        if len(ps) == 1 and len(ss) == 1:
            if m[0, 0] >= self.p.single_sim:
                out.append((ps[0], ss[0]))
            return out
        for a in range(len(ps)):
            b = int(np.argmax(m[a]))
            if int(np.argmax(m[:, b])) != a or m[a, b] < min_sim:
                continue
            second = max(np.partition(m[a], -2)[-2] if len(ss) > 1 else -1.0,
                         np.partition(m[:, b], -2)[-2] if len(ps) > 1 else -1.0)
            if m[a, b] - second >= self.p.prop_margin:
                out.append((ps[a], ss[b]))
        return out

    def _pick_large(self, ps: list[int], ss: list[int], min_sim: float) -> list[tuple[int, int]]:
        """pick's answer for neighbourhoods too large for one block (the callers of a function thousands of
        functions call): each row's and each column's two best, by similarity.top_k, in blocks."""
        q, b, extra, differ = self.views(ps, ss)
        (idx, val), (ridx, rval) = top_k(q, b, 2, extra=extra, differ=differ, k_reverse=2)
        out = []
        for a in range(len(ps)):
            j = int(idx[a, 0])
            if int(ridx[j, 0]) != a or val[a, 0] < min_sim:
                continue
            second = max(val[a, 1] if len(ss) > 1 else -1.0, rval[j, 1] if len(ps) > 1 else -1.0)
            if val[a, 0] - second >= self.p.prop_margin:
                out.append((ps[a], ss[j]))
        return out

    def propagate_calls(self) -> int:
        added = 0
        queue = list(self.match.items())
        while queue:
            i, mt = queue.pop()
            j = mt.s
            for ps, ss in ((self.P.callees[i], self.S.callees[j]), (self.P.callers[i], self.S.callers[j])):
                for a, b in self.pick(ps, ss, self.p.prop_sim):
                    if self.accept(a, b, "callgraph"):
                        added += 1
                        queue.append((a, self.match[a]))
        return added

    def propagate_order(self) -> int:
        """Unmatched functions between two consecutive, order-consistent matches pair up in order."""
        added = 0
        pairs = sorted((i, m.s) for i, m in self.match.items())
        for (i1, j1), (i2, j2) in zip(pairs, pairs[1:]):
            if not (j1 < j2) or i2 - i1 < 2 or j2 - j1 < 2:
                continue
            ps = [i for i in range(i1 + 1, i2) if i not in self.match]
            ss = [j for j in range(j1 + 1, j2) if j not in self.taken]
            if not ps or not ss:
                continue
            if len(ps) == len(ss) and len(ps) <= 64:
                for a, b in self.in_order(ps, ss):
                    if self.sim(a, b) >= self.p.order_sim and not self.vetoed(a, b) and self.accept(a, b, "order"):
                        added += 1
            elif len(ps) <= 64 and len(ss) <= 64:
                for a, b in self.align_or_best(ps, ss, self.p.order_sim):
                    if not self.vetoed(a, b) and self.accept(a, b, "order"):
                        added += 1
        return added

    def repair_shifted_runs(self) -> int:
        """Accessors of a struct whose fields moved between the builds (a field inserted: every setter after
        it writes 16 bytes further on) each have exactly the code of a neighbour in the other build, and
        similarity pairs them one place off. Where a run of at least shift_run target functions between two
        matches (i1 to j1, i2 to j2 with i2 - i1 == j2 - j1) holds, place by place, functions of one shape
        (keys.field_shapes) whose offsets all differ by one constant other than 0, the run pairs in place:
        address order and the constant shift together say more than which fields the code names, though not
        more than own names or identical code (a run that would undo such a match stays). (Accessors before the
        inserted field keep their offsets, match by similarity and close the runs.) Returns how many target
        functions moved."""
        P, S, need = self.P.shapes, self.S.shapes, self.p.shift_run
        if need <= 0 or not P or not S:
            return 0
        n_p, n_s = len(P), len(S)
        moved = 0
        for i1 in sorted(self.match):
            m = self.match.get(i1)
            if m is None:
                continue
            j1, run, deltas = m.s, [], []
            t = 1
            while True:
                a, b = i1 + t, j1 + t
                if a >= n_p or b >= n_s:
                    run = []
                    break
                here = self.match.get(a)
                if here is not None and here.s == b:  # the match that closes the run
                    break
                d = field_shift(P[a], S[b])
                if d is None:
                    run = []
                    break
                run.append((a, b))
                deltas.append(d)
                t += 1
            if len(run) < need or len(set(deltas)) != 1 or deltas[0] == 0:
                continue
            held = [self.match.get(a) for a, _ in run] + [self.match.get(self.taken.get(b, -1)) for _, b in run]
            if any(h is not None and is_settled(h) for h in held):
                continue  # own names or identical code say otherwise
            for a, b in run:
                self.release(a)
                holder = self.taken.get(b)
                if holder is not None:
                    self.release(holder)
            for a, b in run:
                self.accept(a, b, "order")
                self.match[a].via.append("layout")  # and the later passes leave it (settled)
            moved += len(run)
        return moved

    def in_order(self, ps: list[int], ss: list[int]) -> list[tuple[int, int]]:
        """The pairs of two gaps of equal length: in order, unless their most similar pairing is order_perm a
        pair more similar (a compiler that lays a file's functions out in another order, look-alikes among
        them, as ext2/ext3/ext4 probes)."""
        pairs = list(zip(ps, ss))
        return self.better_pairing(ps, ss, pairs) if len(ps) >= 2 else pairs

    def align_or_best(self, ps: list[int], ss: list[int], tau: float) -> list[tuple[int, int]]:
        """Two gaps of unequal length: their order-preserving alignment, unless the two binaries' seeds keep
        address order less often than order_trust (other compilers lay a file's functions out in other orders)
        and their most similar pairing (pairs over tau) is order_perm a pair more similar."""
        pairs = self.align(ps, ss, tau)
        if self.seed_order >= self.p.order_trust or not pairs:
            return pairs
        return self.better_pairing(ps, ss, pairs, tau)

    def better_pairing(self, ps: list[int], ss: list[int], pairs: list[tuple[int, int]],
                       tau: float = -math.inf) -> list[tuple[int, int]]:
        """The most similar one-to-one pairing of two gaps (its pairs over tau) where it is more than order_perm
        a pair more similar than `pairs`, else `pairs` (order_perm 0: always `pairs`)."""
        if self.p.order_perm <= 0:
            return pairs
        m = self.block(ps, ss)
        from scipy.optimize import linear_sum_assignment  # here: SciPy's import takes a quarter second

        rows, cols = linear_sum_assignment(m, maximize=True)
        best = [(r, c) for r, c in zip(rows, cols) if m[r, c] > tau]
        at_p, at_s = {p: k for k, p in enumerate(ps)}, {q: k for k, q in enumerate(ss)}
        here = sum(float(m[at_p[a], at_s[b]]) for a, b in pairs)
        if sum(float(m[r, c]) for r, c in best) - here > self.p.order_perm * max(len(best), len(pairs), 1):
            return [(ps[r], ss[c]) for r, c in best]
        return pairs

    def vetoed(self, i: int, j: int) -> bool:
        """Whether reference function j and another, still free target function t are each other's nearest,
        with t at least order_veto more similar to j than target function i is: where two binaries share only
        part of their code, address order runs on past the shared part and would hand j to a stranger."""
        if self.p.order_veto <= 0 or self.nearest is None:
            return False
        (idx, val), (ridx, rval) = self.nearest
        if not ridx.shape[1] or not idx.shape[1]:
            return False
        t = int(ridx[j, 0])
        return (t != i and t not in self.match and int(idx[t, 0]) == j
                and float(rval[j, 0]) - self.sim(i, j) >= self.p.order_veto)

    def propagate_tables(self) -> int:
        """Unmatched entries of a table of code pointers pair up by place with those of the reference's table
        whose entries the table's matched ones are matched to: between two matched entries the same distance
        apart on both sides, before the first or after the last two when those agree on the shift, and all of
        them by one matched entry in its own place when the two tables are as long. It runs
        before address-order propagation: a table says more than where a function happens to lie. While matches
        are only added, a table none of whose entries was matched since it was last seen gives nothing new (its
        votes and places are the same, and what it could not pair then it cannot now): only the others are
        seen again."""
        if not self.P.tables or not self.S.tables:
            return 0
        where = self.table_places
        added = 0
        before, self.dirty = self.dirty, set()  # accepts from here on mark their tables
        for t_here, tab in enumerate(self.P.tables):
            if before is not None and t_here not in before and t_here not in self.dirty:
                continue
            self.dirty.discard(t_here)
            votes: dict[int, list[tuple[int, int]]] = defaultdict(list)
            for a, i in enumerate(tab):
                m = self.match.get(i)
                if m is not None:
                    for t, b in where.get(m.s, ()):
                        votes[t].append((a, b))
            if not votes:
                continue
            t, anchors = max(votes.items(), key=lambda kv: (len(kv[1]), -kv[0]))
            ref = self.S.tables[t]
            anchors = sorted(dict(reversed(anchors)).items())  # the first place in the reference's table a place
            if len(anchors) < 2 and not (len(ref) == len(tab) and anchors[0][0] == anchors[0][1]):
                continue  # one matched entry places the others only in a table of the same length
            places = [a for a, _ in anchors]
            shifts = [b - a for a, b in anchors]
            for a, i in enumerate(tab):
                if i in self.match:
                    continue
                k = bisect.bisect_left(places, a)  # the matched places before a end at k - 1
                if 0 < k < len(places):
                    c = shifts[k - 1] if shifts[k - 1] == shifts[k] else None
                elif k >= 2:
                    c = shifts[k - 1] if shifts[k - 2] == shifts[k - 1] else None
                elif k == 0 and len(places) >= 2:
                    c = shifts[0] if shifts[0] == shifts[1] else None
                else:
                    c = 0 if len(places) == 1 else None
                if c is None or not 0 <= a + c < len(ref):
                    continue
                j = ref[a + c]
                if j not in self.taken and self.sim(i, j) >= self.p.order_sim and self.accept(i, j, "order"):
                    added += 1
        return added

    def propagate_slots(self) -> int:
        """Unmatched functions that two matched functions put in the same slot (Side.slots: both builds set
        `p->read_op = pcap_read_not_initialized`, or pass `file_close` as the same argument of calls to the same
        function) pair up: look-alike callbacks, the same code under several names, that neither their code nor
        address order tells apart. Only where the two functions' other slots that are matched on both sides
        mostly agree, at least one: a struct whose layout changed between the builds says nothing. Slots go in
        groups (the whole function's, and each case's of a switch that sets the same fields in each case): a
        group pairs with the reference function's group that agrees best, if no other agrees as well."""
        if not self.p.slots or not self.P.slots or not self.S.slots:
            return 0
        added = 0
        for i in [i for i in self.match if self.P.slots[i]]:
            theirs = self.S.slots[self.match[i].s]
            for a in self.slots_as_reference(i):
                best, second, pick = 0, 0, {}
                for b in theirs:  # the reference's group of slots that agrees best with this one, if one does
                    score = self.slot_agreement(a, b)
                    if score > best:
                        best, second, pick = score, best, b
                    else:
                        second = max(second, score)
                if best == second:
                    continue
                for x, y in [(a[key], pick[key]) for key in a if key in pick]:
                    if x not in self.match and y not in self.taken and self.sim(x, y) >= self.p.order_sim \
                            and self.accept(x, y, "callgraph"):
                        added += 1
        return added

    def slot_agreement(self, a: dict, b: dict) -> int:
        """How far a target function's group of slots (in the reference's terms) and a reference function's
        agree: the slots of both whose functions are matched to each other, less those matched otherwise; 0
        where none agrees or the others are more than half as many."""
        agree = disagree = 0
        for key, x in a.items():
            if key in b:
                m = self.match.get(x)
                if m is not None and m.s == b[key]:
                    agree += 1
                elif m is not None or b[key] in self.taken:
                    disagree += 1
        return agree - disagree if agree and disagree * 2 <= agree else 0

    def slots_as_reference(self, i: int) -> list[dict]:
        """Target function i's groups of slots (Side.slots) in the reference's terms: an argument of a call to
        one of the target's functions is that of a call to its match (left out while it has none)."""
        out = []
        for group in self.P.slots[i]:
            slots = {}
            for key, x in group.items():
                if isinstance(key, tuple) and not self.p.slot_args:
                    continue
                if isinstance(key, tuple) and key[0] == "fn":
                    m = self.match.get(key[1])
                    if m is None:
                        continue
                    key = ("fn", m.s, key[2])
                slots[key] = x
            out.append(slots)
        return out

    def align(self, ps: list[int], ss: list[int], tau: float) -> list[tuple[int, int]]:
        """The order-preserving alignment of two gaps that maximises the sum of (similarity - tau) over its
        pairs (functions inlined away or added on one side are skipped)."""
        m = self.block(ps, ss) - tau
        n1, n2 = m.shape
        best = np.zeros((n1 + 1, n2 + 1))
        for a in range(1, n1 + 1):  # a row at once: best[a, b] is the running max of the row's candidates
            cand = np.maximum(best[a - 1, 1:], best[a - 1, :-1] + m[a - 1])
            best[a, 1:] = np.maximum.accumulate(cand)
        out = []
        a, b = n1, n2
        while a and b:
            if m[a - 1, b - 1] > 0 and best[a, b] == best[a - 1, b - 1] + m[a - 1, b - 1]:
                out.append((ps[a - 1], ss[b - 1]))
                a, b = a - 1, b - 1
            elif best[a, b] == best[a - 1, b]:
                a -= 1
            else:
                b -= 1
        return out[::-1]

    def final(self, idx: np.ndarray, val: np.ndarray, min_sim: float) -> int:
        """Greedy one-to-one over the top-K candidates, best similarity first."""
        added = 0
        pairs = [(float(val[i, c]), i, int(idx[i, c])) for i in range(len(idx)) if i not in self.match
                 for c in range(val.shape[1]) if val[i, c] >= min_sim]
        pairs.sort(key=lambda x: -x[0])
        for _, i, j in pairs:
            if i not in self.match and j not in self.taken:
                self.accept(i, j, "embedding")
                added += 1
        return added

    def assign_rest(self, chunk: int = 0) -> int:
        """The target functions whose K candidates were all taken: greedy one-to-one over each one's K most
        similar free reference functions, best similarity first (a function whose K are all taken first
        stays unmatched)."""
        rest = [i for i in range(len(self.P.addrs)) if i not in self.match]
        free = np.array([j for j in range(len(self.S.addrs)) if j not in self.taken], dtype=np.int64)
        if not rest or not len(free):
            return 0
        chunk = chunk or max(256, min(2048, BLOCK_CELLS // len(free)))
        pairs = []
        for a in range(0, len(rest), chunk):
            rows = rest[a:a + chunk]
            m = self.block(rows, free)
            k = min(K, len(free))
            top = np.argpartition(-m, k - 1, axis=1)[:, :k]
            for r, i in enumerate(rows):
                pairs += [(float(m[r, c]), i, int(free[c])) for c in top[r]]
        pairs.sort(key=lambda x: (-x[0], x[1], x[2]))
        added = 0
        for _, i, j in pairs:
            if self.accept(i, j, "embedding"):
                added += 1
        return added

    # ------------------------------------------------------------------ structural refinement
    def refine_matches(self, idx: np.ndarray) -> None:
        """The functions left unmatched are matched best-first by the structural score, in rounds, so that
        each round's matches support the next. A function's best is scored again only when a round changed
        what its score depends on: its call-graph neighbours' matches, its matched neighbours in address
        order, or its best reference function being taken."""
        n_p = len(self.P.addrs)
        best: dict[int, tuple[float, int]] = {}
        dirty = [i for i in range(n_p) if i not in self.match]
        done = sorted(self.match)
        memo: dict[int, tuple] = {}  # later rounds score a function against mostly the same candidates
        while True:
            for i in dirty:  # unmatched, each of them
                best.pop(i, None)
                top = self.refine_best(i, idx, done, memo)
                if top is not None:
                    best[i] = top
            if not best:
                return
            # each reference function goes to the target function that wants it most (one-to-one per round)
            claim: dict[int, tuple[float, int]] = {}
            for i, (sc, j) in sorted(best.items()):  # in address order: of equal claims the first one wins
                if j not in claim or sc > claim[j][0]:
                    claim[j] = (sc, i)
            top = max(sc for sc, _ in claim.values())
            added = []
            for j, (sc, i) in sorted(claim.items(), key=lambda x: -x[1][0]):
                if sc >= top - 0.1 and self.accept(i, j, "structure"):
                    added.append(i)
            if not added:
                return
            done = sorted(self.match)
            stale: set[int] = set()
            for i in added:
                del best[i]
                memo.pop(i, None)  # matched: never scored again
                stale.update(self.P.neighbours[i])
                k = bisect.bisect_left(done, i)  # the unmatched ones between i and its matched neighbours
                stale.update(range(done[k - 1] + 1 if k > 0 else 0, done[k + 1] if k + 1 < len(done) else n_p))
            stale.update(i for i, (_, j) in best.items() if j in self.taken)
            dirty = sorted(i for i in stale if i not in self.match)

    def refine_best(self, i: int, idx: np.ndarray, done: list[int],
                    memo: dict[int, tuple] | None = None) -> tuple[float, int] | None:
        """The best (structural score, reference index) among the free candidates of unmatched target
        function i (of equal scores the higher index), None without any. The candidates: i's embedding
        candidates, the neighbours of its matched neighbours' matches (those of at most REFINE_HUB neighbours),
        and the functions between the matches of its nearest matched functions in address order when few lie
        there. The structural score of j: the similarity, plus the share of i's matched call-graph neighbours
        whose matches are j's neighbours (together j's base score), plus a bonus when j lies between the
        matches of i's nearest matched functions in address order, and a small one for lying where that order
        puts it (this breaks ties between look-alikes). `memo` keeps, per function, its other candidates by
        base score, best first, for as long as its matched neighbours stay the same, and its similarities: the
        scan stops where no bonus could lift a base score to the best one."""
        n_p = len(self.P.addrs)
        mapped = frozenset(self.match[x].s for x in self.P.neighbours[i] if x in self.match)
        k = bisect.bisect_left(done, i)
        i_lo, i_hi = (done[k - 1] if k > 0 else -1), (done[k] if k < len(done) else n_p)
        lo = self.match[i_lo].s if k > 0 else -1
        hi = self.match[i_hi].s if k < len(done) else len(self.S.addrs)
        expect = lo + (i - i_lo) * (hi - lo) / max(i_hi - i_lo, 1)
        key, ranked, known = memo.get(i, (None, None, {})) if memo is not None else (None, None, {})
        taken = self.taken
        if key != mapped:  # taken ones never come free again: left out for good
            cands = {int(j) for j in idx[i]}
            for m in mapped:
                if len(self.S.neighbours[m]) <= REFINE_HUB:
                    cands.update(self.S.neighbours[m])
            ranked = self.base_scores(i, [j for j in cands if j not in taken], mapped, known)
            ranked.sort(reverse=True)
            if memo is not None:
                memo[i] = (mapped, ranked, known)
        order_weight = self.p.order_weight

        def score(base: float, j: int) -> float:  # the address-order bonuses on top of a base score
            return (base + order_weight * (1.0 if lo < j < hi else 0.0)) + 0.02 * (1.0 / (1.0 + abs(j - expect)))

        top: tuple[float, int] | None = None
        if 0 < hi - lo <= 32:
            between = [j for j in range(lo + 1, hi) if j not in taken]
            for base, j in self.base_scores(i, between, mapped, known):
                cand = (score(base, j), j)
                if top is None or cand > top:
                    top = cand
        reach = order_weight + 0.02 + 1e-9  # the most the bonuses add
        for base, j in ranked:
            if top is not None and base + reach < top[0]:
                break
            if j in taken:
                continue
            cand = (score(base, j), j)
            if top is None or cand > top:
                top = cand
        return top

    def base_scores(self, i: int, js, mapped: frozenset[int], known: dict[int, float]) -> list[tuple[float, int]]:
        """(base score, j) for reference functions js: the similarity of target function i and j plus the
        share of i's matched call-graph neighbours (their matches: mapped) that are j's neighbours. `known`
        remembers i's similarities (the same pairs come back round after round)."""
        sim, get = self.sim, known.get
        sims = []
        for j in js:
            s = get(j)
            if s is None:
                s = known[j] = sim(i, j)
            sims.append(s)
        if not mapped:
            return list(zip(sims, js))
        nbs, w, n = self.S.neighbours, self.p.nb_weight, len(mapped)
        return [(s + w * (len(mapped & nbs[j]) / math.sqrt(n * max(len(nbs[j]), 1))), j) for s, j in zip(sims, js)]

    # ------------------------------------------------------------------ local improvement
    def agree(self, i: int, j: int, excl: int = -1) -> int:
        """How many call-graph neighbours of target function i (but excl) are matched to neighbours of j."""
        nb = self.S.neighbours[j]
        return sum(1 for a in self.P.neighbours[i] if a != excl and a in self.match and self.match[a].s in nb)

    def improve(self, idx: np.ndarray, val: np.ndarray | None = None, rounds: int = 4, tries: int = 5,
                skip_settled: bool = True) -> int:
        """Moves matches (or swaps two) where the call graph says so: the score of a match is its similarity
        plus swap_weight per neighbour matched consistently, and a change must raise the sum by swap_gain.
        Settled matches (is_settled: symbol, identical code, layout) stay. With the candidates' similarities
        ``val``, a function none of whose candidates can gain enough by a bound is passed over without computing
        any similarity.
        ``skip_settled``: a later round passes over a function passed over before for what its own and its
        neighbours' matches said, while those stay (the same moves, fewer looks; False looks at all)."""
        lam, gain = self.p.swap_weight, self.p.swap_gain
        if lam <= 0:
            return 0
        fixed = {i for i, m in self.match.items() if is_settled(m)}
        known = [dict(zip(r, v)) for r, v in zip(idx.tolist(), val.tolist())] if val is not None else None
        moved = 0
        # A function passed over for reasons that depend only on its own match and its call-graph neighbours'
        # is passed over again until one of those changes: `changed` holds the move count at each function's
        # last change, `settled` the move count when the function was last passed over so.
        changed: dict[int, int] = {}
        settled: dict[int, int] = {}
        for _ in range(rounds):
            before = moved
            for i in sorted(self.match):
                if i in fixed or len(self.P.neighbours[i]) > HUB:
                    continue
                last = settled.get(i) if skip_settled else None
                if last is not None and all(changed.get(a, -1) <= last for a in (i, *self.P.neighbours[i])):
                    continue
                settled[i] = moved
                j0 = self.match[i].s
                votes: Counter = Counter({int(j): 0 for j in idx[i]})
                hubs = 0  # matched neighbours whose match has too many neighbours to search: each may agree
                for a in self.P.neighbours[i]:
                    m = self.match.get(a)
                    if m is not None:
                        if len(self.S.neighbours[m.s]) <= HUB:
                            votes.update(self.S.neighbours[m.s])
                        else:
                            hubs += 1
                js = [j for j in votes if j != j0]
                if not js:
                    continue
                held = lam * self.agree(i, j0)  # the neighbours the present match keeps
                if known is not None and known[i]:
                    # a reference function outside i's top K is no more similar than the K-th (floor); the
                    # bound leaves 1e-4 for rounding between this and block's similarities
                    sims_of, floor = known[i], min(known[i].values())
                    bound = max(sims_of.get(j, floor) + lam * votes[j] for j in js)
                    if bound + lam * hubs - (self.match[i].sim + held) <= gain - 1e-4:
                        continue
                sims = self.block([i], js + [j0])[0]
                score = sims[:-1] + lam * np.array([votes[j] for j in js])
                here = float(sims[-1]) + held
                if float(score.max()) + lam * hubs - here <= gain:
                    continue  # no candidate can gain enough
                best, pick = gain, None
                for k in np.argsort(-score, kind="stable")[:tries]:
                    j = js[int(k)]
                    i2 = self.taken.get(j)
                    if i2 in fixed:
                        continue
                    if i2 is None:
                        d = float(sims[k]) + lam * self.agree(i, j) - here
                    else:
                        d = (float(sims[k]) + lam * self.agree(i, j, i2) + self.sim(i2, j0)
                             + lam * self.agree(i2, j0, i) - here - self.sim(i2, j) - lam * self.agree(i2, j))
                    if d > best:
                        best, pick = d, (j, i2)
                if pick is None:
                    del settled[i]  # that depended on which functions hold the candidates: look again
                    continue
                j, i2 = pick
                self.release(i)
                if i2 is not None:
                    self.release(i2)
                    self.accept(i2, j0, "structure")
                self.accept(i, j, "structure")
                moved += 1
                del settled[i]
                changed[i] = moved
                if i2 is not None:
                    changed[i2] = moved
            if moved == before:
                break
        return moved

    def unfold(self) -> int:
        """Target functions matched to a helper that an optimising compiler folds into its caller move to that
        caller when it is free and the target function is unfold_margin more similar to the caller's inlined
        view (S.unfold: with its inlinable callees, the helper among them) than to the helper: the target
        function is the caller with the helper inlined. Settled matches stay."""
        S, margin = self.S, self.p.unfold_margin
        if margin <= 0 or S.unfold is None:
            return 0
        moves = []
        for i, m in self.match.items():
            j2 = m.s
            if is_settled(m):
                continue
            if not inlinable(len(S.callers[j2]), S.sizes[j2], self.p.inline_max_size):
                continue
            here = self.sim(i, j2)
            best = None
            for j1 in sorted(set(S.callers[j2])):
                if j1 == j2 or j1 in self.taken:
                    continue
                v = self.penalised(i, j1, float(self.P.vectors[i] @ S.unfold[j1]))
                if v > here + margin and (best is None or v > best[0]):
                    best = (v, j1)
            if best is not None:
                moves.append((i, best[1]))
        moved = 0
        for i, j1 in moves:
            if j1 in self.taken:  # two helpers of one caller: the first move takes it
                continue
            self.release(i)
            self.accept(i, j1, "structure")
            moved += 1
        return moved

    # ------------------------------------------------------------------ all of it
    def run(self, candidates: tuple | None = None) -> MatchResult:
        """Match; ``candidates`` are those of `candidates(K)` where the caller has them already."""
        (idx, val), (ridx, rval) = candidates if candidates is not None else self.candidates(K)
        self.nearest = ((idx, val), (ridx, rval))
        self.seed_names()
        self.seed_identical()
        self.seed_strings()
        self.seed_mutual(idx, val, ridx, rval)
        seed_share = len(self.match) / max(len(self.P.addrs), 1)
        js = [self.match[i].s for i in sorted(self.match)]
        self.seed_order = sum(b > a for a, b in zip(js, js[1:])) / max(len(js) - 1, 1)
        for _ in range(8):
            n = self.propagate_calls() + self.propagate_tables() + self.propagate_slots() + self.propagate_order()
            if n == 0:
                break
        self.final(idx, val, self.p.final_sim)
        for _ in range(8):
            if self.propagate_calls() + self.propagate_tables() + self.propagate_slots() + self.propagate_order() == 0:
                break
        self.repair_shifted_runs()
        if self.p.refine:
            self.refine_matches(idx)
        if self.p.assign_all:
            self.final(idx, val, -1.0)
            self.assign_rest()
        self.improve(idx, val)
        self.unfold()
        self.add_support(idx, val, ridx, rval)
        mutual = [(i, m) for i, m in self.match.items() if m.top1 and m.reverse_top1]
        shift = float(np.median([math.log2(max(self.P.sizes[i], 1) / max(self.S.sizes[m.s], 1))
                                 for i, m in mutual])) if mutual else 0.0
        sim_median = float(np.median([m.sim for _, m in mutual])) if mutual else 0.0
        return MatchResult(self.match, idx, val, seed_share, shift, sim_median)

    def add_support(self, idx: np.ndarray, val: np.ndarray, ridx: np.ndarray, rval: np.ndarray) -> None:
        """How many call-graph neighbours of each match are matched to each other consistently (and how many
        not), whether the match is each side's nearest neighbour and its place among the candidates, whether
        its neighbours in address order agree, how far the two functions' caller and callee counts are apart,
        how many look-alike candidates compete, and its margin over the reference function's next target."""
        done = sorted(self.match)
        for k, i in enumerate(done):
            s = self.match[i].s
            self.match[i].order_support = ((k > 0 and self.match[done[k - 1]].s < s)
                                           + (k + 1 < len(done) and self.match[done[k + 1]].s > s))
            run = 0
            for step in (-1, 1):
                last, j = s, k + step
                while 0 <= j < len(done) and abs(j - k) <= 4 and (self.match[done[j]].s - last) * step > 0:
                    last, j = self.match[done[j]].s, j + step
                run += abs(j - k) - 1
            self.match[i].order_run = run
        for i, m in self.match.items():
            m.top1 = idx.shape[1] > 0 and int(idx[i, 0]) == m.s
            m.reverse_top1 = ridx.shape[1] > 0 and int(ridx[m.s, 0]) == i
            m.degree = len(self.P.callees[i]) + len(self.P.callers[i])
            m.caller_diff = abs(len(self.P.callers[i]) - len(self.S.callers[m.s]))
            m.n_close = int((val[i] >= m.sim - 0.03).sum()) if val.shape[1] else 1
            m.callee_diff = abs(len(self.P.callees[i]) - len(self.S.callees[m.s]))
            hit = np.flatnonzero(idx[i] == m.s) if idx.shape[1] else []
            m.rank = int(hit[0]) if len(hit) else K
            others = [float(v) for t, v in zip(ridx[m.s], rval[m.s]) if int(t) != i]
            m.reverse_margin = m.sim - others[0] if others else 1.0
            s_nb = self.S.neighbours[m.s]
            n = bad = 0
            for a in self.P.callees[i] + self.P.callers[i]:
                o = self.match.get(a)
                if o is not None:
                    n += o.s in s_nb
                    bad += o.s not in s_nb
            m.support, m.conflict = n, bad
        self.add_nearby()

    def add_nearby(self, reach: int = 4, sure_sim: float = 0.8) -> None:
        """Each match's share of sure matches among the `reach` target functions before and after it (the
        target's functions are in address order, as propagate_order reads them; confidence.match_features:
        `nearby`)."""
        sure = np.array([m is not None and (m.via[0] in ("symbol", "identical")
                                            or (m.top1 and m.reverse_top1 and m.sim >= sure_sim))
                         for m in map(self.match.get, range(len(self.P.addrs)))], float)
        ahead = np.r_[0.0, np.cumsum(sure)]
        for i, m in self.match.items():
            lo, hi = max(0, i - reach), min(len(sure), i + reach + 1)
            m.nearby = float(ahead[hi] - ahead[lo] - sure[i]) / (2 * reach)

