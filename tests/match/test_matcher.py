"""The matcher's structural steps on small hand-made sides (no binaries)."""

import bisect
import itertools
import math

import numpy as np
import pytest

from symbridge.match.matcher import Match, Matcher, Params
from symbridge.match.side import Side


def side(vectors, callees=None):
    n = len(vectors)
    callees = callees or [[] for _ in range(n)]
    callers = [[i for i in range(n) if j in callees[i]] for j in range(n)]
    return Side(list(range(n)), [64] * n, np.asarray(vectors, np.float32), callees, callers,
                [set() for _ in range(n)], [None] * n, [None] * n)


def order_runs(order):
    v = np.eye(len(order), dtype=np.float32)
    m = Matcher(side(v), side(v))
    for i, s in enumerate(order):
        m.match[i] = Match(s, 1.0, ["embedding"])
    m.add_support(np.array(order).reshape(-1, 1), np.ones((len(order), 1)), np.argsort(order).reshape(-1, 1),
                  np.ones((len(order), 1)))
    return [m.match[i].order_run for i in range(len(order))]


def test_order_run_counts_the_matches_that_go_on_in_the_same_order():
    assert order_runs(list(range(10))) == [4, 5, 6, 7, 8, 8, 7, 6, 5, 4]  # up to 4 on each side
    assert order_runs(list(range(6))[::-1]) == [0] * 6  # reversed: no match agrees with its neighbours
    assert order_runs([0, 1, 2, 5, 3, 4]) == [3, 3, 3, 3, 1, 1]  # 3 after 5 breaks the run


def test_support_and_conflict_count_the_matched_neighbours_that_agree_and_disagree():
    """Target 0 calls 1 and 2; reference 0 calls 1 but not 2: the match of 1 supports, that of 2 conflicts."""
    v = np.eye(3, dtype=np.float32)
    m = Matcher(side(v, callees=[[1], [], []]), side(v, callees=[[1, 2], [], []]))
    for i in range(3):
        m.match[i] = Match(i, 1.0, ["embedding"])
    idx = np.array([[0, 1], [1, 0], [2, 0]])
    val = np.array([[0.9, 0.5], [0.9, 0.2], [0.9, 0.8]])
    m.add_support(idx, val, idx, val)
    assert (m.match[0].support, m.match[0].conflict, m.match[0].callee_diff) == (1, 1, 1)
    assert m.match[0].rank == 0 and abs(m.match[0].reverse_margin - (1.0 - 0.5)) < 1e-9
    assert abs(m.match[2].reverse_margin - 0.2) < 1e-9  # reference 2's next best target scores 0.8


def test_look_alikes_are_told_apart_by_their_matched_callers():
    """Two reference functions with the same vector: the one called by the match of the target's caller wins."""
    a, b, c = np.eye(3, dtype=np.float32)
    ref = side([a, a, a, b, c], callees=[[], [], [], [0], [1]])  # 3 calls 0, 4 calls 1; 0, 1, 2 look alike
    tgt = side([b, c, a], callees=[[2], [], []])  # target 0 (= ref 3) calls target 2
    m = Matcher(ref, tgt, Params(assign_all=False))
    m.accept(0, 3, "string")
    m.accept(1, 4, "string")
    m.refine_matches(np.array([[0, 1, 2]] * 3))
    assert m.match[2].s == 0 and m.match[2].via == ["structure"]


def test_functions_whose_candidates_are_all_taken_still_get_the_best_free_match():
    """assign_rest looks past the K candidates: target 0's candidate is taken, its true twin is not among them."""
    a, b, c = np.eye(3, dtype=np.float32)
    m = Matcher(side([a, 0.9 * a + 0.1 * b, c]), side([0.8 * a + 0.6 * b, a]), Params())
    m.accept(1, 0, "string")  # ref 0 goes to target 1
    assert m.assign_rest() == 1
    assert m.match[0].s == 1 and m.match[0].via == ["embedding"]


def test_address_order_does_not_hand_a_function_to_a_stranger_when_its_own_copy_is_elsewhere():
    """Partial overlap: between two matched anchors the target holds a function of its other part (1) where the
    reference holds a library function (1) whose own copy lies elsewhere (3). Order alone pairs 1 with 1; the
    veto keeps reference 1 for target 3, its mutual nearest by far."""
    e = np.eye(5, dtype=np.float32)
    ref = side([e[0], e[1], e[2]])
    tgt = side([e[0], 0.2 * e[1] + 0.98 * e[3], e[2], 0.6 * e[1] + 0.8 * e[4]])
    pairs = {}
    for veto in (0.0, 0.1):
        res = Matcher(ref, tgt, Params(order_sim=0.0, order_veto=veto)).run()
        pairs[veto] = {i: m.s for i, m in res.matches.items()}
    assert pairs[0.0][1] == 1 and 3 not in pairs[0.0]
    assert pairs[0.1][3] == 1 and 1 not in pairs[0.1]
    assert pairs[0.1][0] == 0 and pairs[0.1][2] == 2


def test_address_order_pairs_a_gap_by_similarity_when_the_compiler_laid_it_out_in_another_order():
    """Between two anchors the reference holds look-alikes A, B, C and the target the same three as C, A, B (as
    gcc 10 and gcc 14 lay out a file's probe functions). In order, each goes to the one before its own (0.30
    similar, its own 0.45); no swap of two gains enough for the last pass (improve); the most similar one-to-one
    pairing of the gap is better by 0.15 a pair, so order_perm takes it. (No veto: in the binaries where this
    happens each look-alike's nearest functions lie elsewhere.)"""
    e = np.eye(6, dtype=np.float32)
    ref = side([e[0], e[2], e[3], e[4], e[1]])  # anchor, A, B, C, anchor
    look = [0.45 * e[own] + 0.30 * e[prev] + 0.841 * e[5] for own, prev in ((4, 2), (2, 3), (3, 4))]  # C', A', B'
    tgt = side([e[0], *look, e[1]])
    pairs = {}
    for perm in (0.0, 0.04):
        res = Matcher(ref, tgt, Params(order_sim=0.0, order_perm=perm, order_veto=0.0, assign_all=False,
                                       refine=False)).run()
        pairs[perm] = {i: (m.s, m.via[0]) for i, m in res.matches.items()}
    assert [pairs[0.0][i] for i in (1, 2, 3)] == [(1, "order"), (2, "order"), (3, "order")]
    assert [pairs[0.04][i] for i in (1, 2, 3)] == [(3, "order"), (1, "order"), (2, "order")]
    assert pairs[0.04][0][0] == 0 and pairs[0.04][4][0] == 4


def test_unequal_gaps_pair_by_similarity_only_where_the_seeds_say_address_order_is_not_kept():
    """Target gap T1, T2 between anchors, reference gap R1, R2, R3: T1 is R3's copy, T2 is R1's. Aligned in order
    the best is T1 -> R2, T2 -> R3 (0.30 each), both wrong; the most similar pairing is right and 0.15 a pair
    better. It is taken only where the seeds themselves leave address order (three anchors in reverse: 2 of 4
    consecutive seeds go on in order, under order_trust 0.9), not where they keep it."""
    e = np.eye(9, dtype=np.float32)  # 0-4 anchors, 5-7 R1-R3, 8 the look-alikes' common part
    t1 = 0.45 * e[7] + 0.30 * e[6] + 0.841 * e[8]
    t2 = 0.45 * e[5] + 0.30 * e[7] + 0.841 * e[8]
    ref = side([e[0], e[5], e[6], e[7], e[1], e[2], e[3], e[4]])
    scrambled = side([e[0], t1, t2, e[1], e[4], e[3], e[2]])  # the last three anchors in reverse order
    kept = side([e[0], t1, t2, e[1], e[2], e[3], e[4]])
    got = {}
    for name, tgt in (("scrambled", scrambled), ("kept", kept)):
        for trust in (0.0, 0.9):
            m = Matcher(ref, tgt, Params(order_sim=0.0, order_perm=0.04, order_trust=trust, order_veto=0.0,
                                         assign_all=False, refine=False))
            res = m.run()
            got[name, trust] = [res.matches[i].s for i in (1, 2)]
    assert got["scrambled", 0.0] == [2, 3] and got["kept", 0.9] == [2, 3]  # in order: both wrong
    assert got["scrambled", 0.9] == [3, 1]


def test_nearby_is_the_share_of_sure_matches_around_a_match_in_address_order():
    """Targets 0-9 and 14 are sure (mutual nearest at 1.0), 10-13 and 15-19 are not matched: a match inside the
    run has 8 sure ones among the 4 before and 4 after it, one at its end 4, the lone one at 14 none."""
    v = np.eye(20, dtype=np.float32)
    m = Matcher(side(v), side(v))
    for i in list(range(10)) + [14]:
        m.match[i] = Match(i, 1.0, ["embedding"])
    m.add_support(np.arange(20).reshape(-1, 1), np.ones((20, 1)), np.arange(20).reshape(-1, 1), np.ones((20, 1)))
    assert m.match[5].nearby == 1.0
    assert m.match[0].nearby == 0.5  # 1-4 after it, nothing before
    assert m.match[9].nearby == 0.5  # 5-8 before it, 10-13 unmatched
    assert m.match[14].nearby == 0.0  # 10-13 and 15-18 unmatched
    m.match[3].sim = 0.5  # no longer sure: 5 loses one
    m.add_support(np.arange(20).reshape(-1, 1), np.ones((20, 1)), np.arange(20).reshape(-1, 1), np.ones((20, 1)))
    assert m.match[5].nearby == 7 / 8


def test_caller_difference_and_look_alike_count_are_recorded():
    a, b = np.eye(2, dtype=np.float32)
    ref = side([a, a, b], callees=[[], [0], [0]])  # ref 0 has two callers
    tgt = side([a, b])  # target 0 has none
    m = Matcher(ref, tgt, Params())
    m.accept(0, 0, "embedding")
    m.add_support(np.array([[0, 1], [2, 0]]), np.array([[1.0, 1.0], [1.0, 0.0]]), np.array([[0, 1], [0, 1], [1, 0]]),
                  np.ones((3, 2)))
    assert m.match[0].caller_diff == 2
    assert m.match[0].n_close == 2  # ref 0 and ref 1 look the same to target 0


def test_exported_functions_match_exported_ones_when_both_libraries_export():
    a, b = np.eye(2, dtype=np.float32)
    ref = side([a, a, b])
    ref.exported = np.array([False, True, False])
    tgt = side([a, b])
    tgt.exported = np.array([True, False])
    res = Matcher(ref, tgt, Params()).run()
    assert res.matches[0].s == 1  # the look-alike that is exported too
    tgt.exported = np.array([False, False])  # a program that links the library: export status says nothing
    assert Matcher(ref, tgt, Params()).export_penalty == 0.0


def test_a_cold_part_does_not_take_the_name_of_the_whole_function_it_was_split_from():
    """The target's foo.cold (gcc's split-off error branch) looks more like the reference's foo (clang: no split)
    than the target's foo itself does; with the cold-part penalty foo goes to foo, the part elsewhere."""
    a, b, c = np.eye(3, dtype=np.float32)
    ref = side([a, c])
    ref.cold = np.array([False, False])
    tgt = side([(0.7 * a + 0.71 * b) / np.hypot(0.7, 0.71), (0.9 * a + 0.44 * b) / np.hypot(0.9, 0.44)])
    tgt.cold = np.array([False, True])
    got = {}
    for pen in (0.0, 1.0):
        res = Matcher(ref, tgt, Params(cold_penalty=pen, assign_all=False)).run()
        got[pen] = {i: m.s for i, m in res.matches.items()}
    assert got[0.0][1] == 0 and got[0.0].get(0) != 0
    assert got[1.0][0] == 0 and got[1.0].get(1) != 0


def test_a_match_moves_to_the_look_alike_its_matched_caller_calls():
    """Target 1 is a hair nearer reference 2, but its caller's match calls reference 1: the call graph wins."""
    a, b, c = np.eye(3, dtype=np.float32)
    t1 = 0.69 * b + 0.71 * c
    ref = side([a, b, c], callees=[[1], [], []])
    tgt = side([a, t1 / np.linalg.norm(t1)], callees=[[1], []])
    m = Matcher(ref, tgt, Params())
    m.accept(0, 0, "string")
    m.accept(1, 2, "embedding")
    assert m.improve(np.array([[0, 1, 2], [2, 1, 0]])) == 1
    assert m.match[1].s == 1 and m.match[1].via == ["structure"]
    m2 = Matcher(ref, tgt, Params(swap_weight=0.0))  # switched off: nothing moves
    m2.accept(0, 0, "string")
    m2.accept(1, 2, "embedding")
    assert m2.improve(np.array([[0, 1, 2], [2, 1, 0]])) == 0


def test_single_pair_similarity_agrees_with_the_block():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((6, 4)).astype(np.float32)
    ref, tgt = side(v[:3]), side(v[3:])
    ref.inlined = np.roll(v[:3], 1, axis=1)
    ref.exported, tgt.exported = np.array([1, 0, 1], bool), np.array([1, 1, 0], bool)
    ref.cold, tgt.cold = np.array([0, 0, 1], bool), np.array([0, 1, 1], bool)
    m = Matcher(ref, tgt, Params(cold_penalty=0.5))
    assert m.export_penalty > 0 and len(m.penalties) == 2
    blk = m.block([0, 1, 2], [0, 1, 2])
    assert np.allclose([[m.sim(i, j) for j in range(3)] for i in range(3)], blk, atol=1e-6)


def test_reverse_candidates_are_the_columns_of_the_forward_matrix():
    """top_k with k_reverse gives, from one matrix computed in blocks, the best rows of each column too; ties go
    to the lower row."""
    from symbridge.match.similarity import top_k

    rng = np.random.default_rng(0)
    q = rng.standard_normal((50, 8)).astype(np.float32)
    b = rng.standard_normal((30, 8)).astype(np.float32)
    q[3] = q[5] = 10 * b[0]  # two query rows tie, and are the best for column 0
    (idx, val), (ridx, rval) = top_k(q, b, 5, block=16, k_reverse=2)
    i2, v2 = top_k(q, b, 5)
    assert np.array_equal(idx, i2) and np.allclose(val, v2)
    full = q @ b.T
    assert np.allclose(rval, -np.sort(-full, axis=0)[:2].T, atol=1e-5)
    assert list(ridx[0]) == [3, 5]  # the tie goes to the lower row


def noisy_pair(seed: int, n: int = 300, families: int = 6, noise: float = 0.3):
    """A reference and a target made of the same functions (noisy vectors, a few call edges changed), with
    look-alike families so that structure has to decide."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((families, 16))[rng.integers(0, families, n)]  # families of look-alikes
    callees = [sorted(set(rng.integers(0, n, 3).tolist()) - {i}) for i in range(n)]

    def copy(noise):
        v = base + noise * rng.standard_normal(base.shape)
        cs = [[j for j in c if rng.random() > 0.1] for c in callees]
        return side(v / np.linalg.norm(v, axis=1, keepdims=True), cs)
    return copy(noise), copy(noise)


def all_candidate_scores(m: Matcher, i: int, idx: np.ndarray, done: list[int]) -> list[tuple[float, int]]:
    """(structural score, reference index) of every free candidate of target function i, as refine_best's
    docstring defines them, with nothing remembered and nothing skipped."""
    n_p = len(m.P.addrs)
    mapped = {m.match[x].s for x in m.P.neighbours[i] if x in m.match}
    k = bisect.bisect_left(done, i)
    i_lo, i_hi = (done[k - 1] if k > 0 else -1), (done[k] if k < len(done) else n_p)
    lo = m.match[i_lo].s if k > 0 else -1
    hi = m.match[i_hi].s if k < len(done) else len(m.S.addrs)
    expect = lo + (i - i_lo) * (hi - lo) / max(i_hi - i_lo, 1)
    cands = {int(j) for j in idx[i]}
    for s in mapped:
        cands.update(m.S.neighbours[s])
    if 0 < hi - lo <= 32:
        cands.update(range(lo + 1, hi))
    out = []
    for j in cands - set(m.taken):
        nb_j = m.S.neighbours[j]
        nb = len(mapped & nb_j) / math.sqrt(len(mapped) * max(len(nb_j), 1)) if mapped else 0.0
        order = 1.0 if lo < j < hi else 0.0
        near = 1.0 / (1.0 + abs(j - expect))
        out.append((m.sim(i, j) + m.p.nb_weight * nb + m.p.order_weight * order + 0.02 * near, j))
    return out


def full_refine(m: Matcher, idx: np.ndarray) -> None:
    """refine_matches as first written: every unmatched function scored again every round, against all of
    its candidates."""
    while True:
        done = sorted(m.match)
        best = {}
        for i in range(len(m.P.addrs)):
            if i not in m.match:
                scored = all_candidate_scores(m, i, idx, done)
                if scored:
                    best[i] = max(scored)
        if not best:
            return
        claim = {}
        for i, (sc, j) in best.items():
            if j not in claim or sc > claim[j][0]:
                claim[j] = (sc, i)
        top = max(sc for sc, _ in claim.values())
        if not [i for j, (sc, i) in sorted(claim.items(), key=lambda x: -x[1][0])
                if sc >= top - 0.1 and m.accept(i, j, "structure")]:
            return


def test_refinement_that_rescores_only_touched_functions_matches_a_full_rescore():
    for seed, families in itertools.product(range(6), (6, 12, 40)):
        ref, tgt = noisy_pair(seed, families=families)
        results = []
        for refine in (Matcher.refine_matches, full_refine):
            m = Matcher(ref, tgt, Params(assign_all=False))
            (idx, val), _ = m.candidates(5)
            for i in range(0, 300, 37):  # a few anchors, as seeds would give
                m.accept(i, i, "string")
            refine(m, idx)
            results.append({i: x.s for i, x in m.match.items()})
        assert results[0] == results[1]
        assert len(results[0]) > 150


def test_improvement_pass_skipped_by_its_bound_moves_the_same_matches():
    for seed in range(8):
        ref, tgt = noisy_pair(seed)
        results = []
        for use_bound in (True, False):
            m = Matcher(ref, tgt, Params(assign_all=False, refine=False))
            (idx, val), _ = m.candidates(5)
            m.final(idx, val, -1.0)
            moved = m.improve(idx, val if use_bound else None)
            results.append((moved, {i: x.s for i, x in m.match.items()}))
        assert results[0] == results[1]


def test_improvement_pass_that_skips_settled_functions_moves_the_same_matches():
    total = 0
    for seed, families in itertools.product(range(8), (6, 40)):
        ref, tgt = noisy_pair(seed, families=families)
        results = []
        for skip in (True, False):
            m = Matcher(ref, tgt, Params(assign_all=False, refine=False))
            (idx, val), _ = m.candidates(5)
            m.final(idx, val, -1.0)
            moved = m.improve(idx, val, skip_settled=skip)
            results.append((moved, {i: x.s for i, x in m.match.items()}))
        assert results[0] == results[1]
        total += results[0][0]
    assert total > 0  # the pass moved matches, so later rounds had something to skip or see again


def test_same_code_on_both_sides_is_told_apart_by_the_constants_it_reads():
    """Two reference functions and two target functions share one code key (sha224_init, sha256_init): no
    identical-code seed by the code alone; the constants they read (data_key) pair them, whatever the order."""
    v = np.eye(2, dtype=np.float32)
    ref, tgt = side(v), side(v)
    ref.code_key, tgt.code_key = [7, 7], [7, 7]
    ref.data_key, tgt.data_key = [1, 2], [2, 1]
    m = Matcher(ref, tgt)
    m.seed_identical()
    assert {i: (mt.s, mt.via) for i, mt in m.match.items()} == {0: (1, ["identical"]), 1: (0, ["identical"])}
    ref.data_key = [1, 1]  # the constants do not tell them apart either: no seed
    m = Matcher(ref, tgt)
    m.seed_identical()
    assert m.match == {}


def test_a_function_matched_to_a_helper_inlined_into_it_moves_to_the_helpers_free_caller():
    """Reference 0 calls helper 1 (its only caller); the target's one function is 0 with 1 folded in: it
    looks more like the helper (0.89) than like 0 alone (0.45), and most like 0's inlined view (1.0)."""
    caller, helper, other = np.eye(3, dtype=np.float32)
    merged = (caller + 2 * helper) / np.linalg.norm(caller + 2 * helper)
    ref = side([caller, helper, other], callees=[[1], [], []])
    tgt = side([merged])
    ref.unfold = np.stack([merged, helper, other]).astype(np.float32)
    moved = {}
    for margin in (0.0, 0.02, 0.5):
        m = Matcher(ref, tgt, Params(unfold_margin=margin))
        m.accept(0, 1, "embedding")
        m.unfold()
        moved[margin] = m.match[0].s
    assert moved == {0.0: 1, 0.02: 0, 0.5: 1}  # off; moves; not similar enough to the inlined view
    m = Matcher(ref, tgt, Params(unfold_margin=0.02))
    m.accept(0, 1, "identical")  # identical code stays
    m.unfold()
    assert m.match[0].s == 1


def test_large_neighbourhoods_are_picked_in_blocks_with_the_same_pairs(monkeypatch):
    """pick compares neighbourhoods too large for one matrix (the callers of a function thousands call) in
    blocks: the same mutual best pairs as the one matrix, look-alikes and penalties included."""
    import symbridge.match.matcher as matcher

    rng = np.random.default_rng(3)
    paired = 0
    for trial in range(6):
        n, m = int(rng.integers(2, 60)), int(rng.integers(2, 60))
        basis = rng.standard_normal((24, 6)).astype(np.float32)
        tgt = side(basis[rng.integers(0, 24, n)] + 0.3 * rng.standard_normal((n, 6)) * (rng.random((n, 1)) < 0.7))
        ref = side(basis[rng.integers(0, 24, m)])  # many exact look-alikes
        mt = Matcher(ref, tgt, Params(prop_margin=0.01))
        if trial % 2:
            mt.penalties = [(rng.random(n) < 0.5, rng.random(m) < 0.5, 0.05)]
        ps, ss = list(range(n)), list(range(m))
        whole = mt.pick(ps, ss, 0.1)
        monkeypatch.setattr(matcher, "PICK_CELLS", 0)
        assert mt.pick(ps, ss, 0.1) == whole
        monkeypatch.setattr(matcher, "PICK_CELLS", 1 << 24)
        paired += len(whole)
    assert paired > 12


@pytest.mark.parametrize("limit, lent", [(64, True), (8, False)])
def test_refinement_takes_no_candidates_from_a_huge_hub(monkeypatch, limit, lent):
    """A function every other one calls (Go's runtime.morestack_noctxt) lends its neighbours as candidates only
    up to REFINE_HUB of them: else each unmatched function kept nearly the whole binary as candidates."""
    import symbridge.match.matcher as matcher_module

    monkeypatch.setattr(matcher_module, "REFINE_HUB", limit)
    n = 20
    v = np.random.default_rng(0).standard_normal((n, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    calls = [[]] + [[0] for _ in range(1, n)]  # everything calls function 0
    m = Matcher(side(v, calls), side(v, calls))
    m.match[0] = Match(0, 1.0, ["symbol"])
    m.taken[0] = 0
    idx = np.array([[i, (i + 1) % n] for i in range(n)])
    memo: dict = {}
    m.refine_best(5, idx, sorted(m.match), memo)
    ranked = {j for _, j in memo[5][1]}
    assert ranked == (set(range(1, n)) if lent else {5, 6})


def shifted_sides(target_offsets, close=True):
    """A reference of anchor, 4 setters (fields 0x10..0x28), anchor, and a target whose setters write
    target_offsets; each target setter's vector is the reference setter's that writes the same offset (as the
    model sees exact offsets). close=False: the target's last anchor is no anchor."""
    ref_offsets = [0x10, 0x18, 0x20, 0x28]
    v = np.eye(8, dtype=np.float32)
    ref = side(v[:6])
    ref.shapes = [None] + [(7, (o,)) for o in ref_offsets] + [None]
    tv = [v[0]] + [v[1 + ref_offsets.index(o)] if o in ref_offsets else v[6] for o in target_offsets]
    tv.append(v[5] if close else v[7])
    tgt = side(np.array(tv))
    tgt.shapes = [None] + [(7, (o,)) for o in target_offsets] + [None]
    return ref, tgt


def test_setters_of_a_struct_whose_fields_moved_pair_in_place_between_two_matches():
    ref, tgt = shifted_sides([0x18, 0x20, 0x28, 0x30])  # a field inserted before them: each one slot on
    m = Matcher(ref, tgt)
    res = m.run()
    assert {i: res.matches[i].s for i in range(6)} == {i: i for i in range(6)}
    assert all(res.matches[i].via == ["order", "layout"] for i in range(1, 5))
    off = Matcher(ref, tgt, Params(shift_run=0)).run()
    assert [off.matches[i].s for i in (1, 2, 3) if i in off.matches] == [2, 3, 4]  # one place off without it


@pytest.mark.parametrize("offsets,close", [
    ([0x18, 0x20, 0x28, 0x30], False),  # no match closes the run
    ([0x18, 0x28, 0x28, 0x30], True),  # the offsets do not move by one constant
])
def test_setters_stay_where_similarity_put_them_without_a_closed_run_of_one_shift(offsets, close):
    ref, tgt = shifted_sides(offsets, close)
    res = Matcher(ref, tgt).run()
    assert not any("layout" in m.via for m in res.matches.values())


def test_setters_before_a_field_inserted_among_them_close_the_run_of_those_after_it():
    ref, tgt = shifted_sides([0x10, 0x18, 0x28, 0x30])  # inserted after the second setter
    res = Matcher(ref, tgt).run()
    assert {i: res.matches[i].s for i in range(6)} == {i: i for i in range(6)}
    assert [res.matches[i].via for i in range(1, 5)] == [["embedding"]] * 2 + [["order", "layout"]] * 2


def test_a_run_that_would_undo_an_identical_code_match_stays_as_similarity_put_it():
    ref, tgt = shifted_sides([0x18, 0x20, 0x28, 0x30])
    ref.code_key[4] = tgt.code_key[2] = 99  # the target's second setter is the reference's fourth, code for code
    res = Matcher(ref, tgt).run()
    assert res.matches[2].s == 4 and res.matches[2].via == ["identical"]
    assert not any("layout" in m.via for m in res.matches.values())
