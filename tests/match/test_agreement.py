"""The agreement runs (match.agreement): which other matchings pair the same functions, and the vote."""

import itertools

import numpy as np

from symbridge.match.matcher import Matcher, Params
from symbridge.match.side import Side
from tests.match.test_matcher import noisy_pair, side


def noisy_views(ref: Side, tgt: Side, count: int, noise: float, seed: int, base: tuple | None = None) -> list:
    """`count` other views of the two sides' functions: their vectors (or those of `base`, two sides of the
    same functions) plus noise, renormalised."""
    from symbridge.match.side import vector_view

    rng = np.random.default_rng(seed)
    base_ref, base_tgt = base or (ref, tgt)
    views = []
    for _ in range(count):
        a = base_ref.vectors + noise * rng.standard_normal(ref.vectors.shape)
        b = base_tgt.vectors + noise * rng.standard_normal(tgt.vectors.shape)
        views.append((vector_view(ref, a / np.linalg.norm(a, axis=1, keepdims=True)),
                      vector_view(tgt, b / np.linalg.norm(b, axis=1, keepdims=True))))
    return views


def test_both_ways_marks_the_matches_the_reverse_matching_repeats():
    from symbridge.match.agreement import match_both_ways

    rng = np.random.default_rng(0)
    base = rng.standard_normal((30, 8))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    ref = base[:25]
    tgt = base[5:] + 0.6 * rng.standard_normal((25, 8))  # noisy copies, five on each side without counterpart
    ref, tgt = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (ref, tgt))
    res = match_both_ways(side(ref), side(tgt))
    reverse = Matcher(side(tgt), side(ref)).run()  # matches ref's functions to tgt's
    for i, m in res.matches.items():
        assert m.reverse_agrees == (m.s in reverse.matches and reverse.matches[m.s].s == i)
    flags = [m.reverse_agrees for m in res.matches.values()]
    assert 0 < sum(flags) < len(flags)  # both cases occur here
    from symbridge.match.confidence import FEATURES

    assert res.features(next(iter(res.matches)), 64, 64)[FEATURES.index("reverse_agrees")] in (0.0, 1.0)
    same = match_both_ways(side(ref), side(ref))  # a binary against itself: every match is mutual
    assert all(m.reverse_agrees for m in same.matches.values())


def test_agreement_of_plain_and_member_matchings_is_recorded_per_match():
    """plain_agrees repeats the matching without address-order propagation and refinement; members_agree is
    the share of the column views (ensemble members) whose own matching pairs the same functions."""
    from dataclasses import replace

    from symbridge.match.confidence import FEATURES
    from symbridge.match.agreement import match_both_ways
    from symbridge.match.side import column_view

    ref, tgt = noisy_pair(1, n=120, families=40, noise=0.8)
    cols = [np.arange(0, 8), np.arange(8, 16)]
    res = match_both_ways(ref, tgt, Params(), cols)
    plain = Matcher(ref, tgt, replace(Params(), order_sim=2.0, refine=False)).run().matches
    own = [Matcher(column_view(ref, c), column_view(tgt, c), Params()).run().matches for c in cols]
    for i, m in res.matches.items():
        assert m.plain_agrees == (i in plain and plain[i].s == m.s)
        assert m.members_agree == sum(i in o and o[i].s == m.s for o in own) / 2
    shares = {m.members_agree for m in res.matches.values()}
    assert {0.0, 0.5, 1.0} <= shares  # all three occur here
    assert not all(m.plain_agrees for m in res.matches.values())
    x = res.features(next(iter(res.matches)), 64, 64)
    assert len(x) == len(FEATURES)
    alone = match_both_ways(ref, tgt, Params())  # no members: the share stands at 1
    assert all(m.members_agree == 1.0 for m in alone.matches.values())


def test_agreement_of_other_views_is_the_share_of_their_matchings_that_pair_the_same_functions():
    """views_agree: the share of the other views' matchings (other vectors of the same functions) that make
    the match."""
    from symbridge.match.agreement import match_both_ways
    from symbridge.match.side import vector_view

    ref, tgt = noisy_pair(2, n=120, families=40, noise=0.8)
    rng = np.random.default_rng(5)
    views = []
    for _ in range(2):  # two noisier views of the same functions
        a = ref.vectors + 0.2 * rng.standard_normal(ref.vectors.shape)
        b = tgt.vectors + 0.2 * rng.standard_normal(tgt.vectors.shape)
        views.append((vector_view(ref, a / np.linalg.norm(a, axis=1, keepdims=True)),
                      vector_view(tgt, b / np.linalg.norm(b, axis=1, keepdims=True))))
    res = match_both_ways(ref, tgt, Params(), views=views)
    own = [Matcher(r, t, Params()).run().matches for r, t in views]
    for i, m in res.matches.items():
        assert m.views_agree == sum(i in o and o[i].s == m.s for o in own) / 2
    assert {0.0, 0.5, 1.0} <= {m.views_agree for m in res.matches.values()}
    alone = match_both_ways(ref, tgt, Params())  # no views: the share stands at 1
    assert all(m.views_agree == 1.0 for m in alone.matches.values())


def test_one_plain_run_makes_the_matches_of_the_run_with_agreement_evidence():
    """fit_matcher's grid search counts right matches from Matcher.run alone: the same matches as the first
    run of match_both_ways, whose candidates come from the shared matrix."""
    from symbridge.match.agreement import match_both_ways

    for seed, families in itertools.product(range(3), (6, 40)):
        ref, tgt = noisy_pair(seed, n=150, families=families, noise=0.6)
        alone = Matcher(ref, tgt, Params()).run().matches
        full = match_both_ways(ref, tgt, Params(), [np.arange(0, 8), np.arange(8, 16)]).matches
        assert {i: m.s for i, m in alone.items()} == {i: m.s for i, m in full.items()}


def test_consensus_moves_a_match_its_agreement_runs_outvote_and_keeps_seeded_ones():
    """Target 0 sits on reference 1, but three of four other runs pair it with reference 0: it moves. Target 1
    holds reference 2 and three runs want it on reference 1 (which target 0 leaves): it moves too. Target 2's
    own-name seed stays whatever the runs say; target 3's two votes are too few."""
    from symbridge.match.agreement import consensus

    v = np.eye(5, dtype=np.float32)
    m = Matcher(side(v), side(v))
    m.accept(0, 1, "embedding")
    m.accept(1, 2, "callgraph")
    m.accept(2, 3, "symbol")
    m.accept(3, 4, "embedding")
    runs = [{0: 0, 1: 1, 2: 4, 3: 0}, {0: 0, 1: 1, 2: 4, 3: 0}, {0: 0, 1: 1, 2: 4}, {0: 1, 1: 2}]
    assert consensus(m, runs, 3) == 2
    assert {i: (x.s, x.via) for i, x in m.match.items()} == {
        0: (0, ["consensus"]), 1: (1, ["consensus"]), 2: (3, ["symbol"]), 3: (4, ["embedding"])}
    assert m.taken == {0: 0, 1: 1, 3: 2, 4: 3}


def test_consensus_leaves_a_match_whose_reference_function_stays_held():
    """Three runs want target 0 on reference 1, which target 1 holds and keeps: nothing moves; nor do two
    targets that want the same reference function."""
    from symbridge.match.agreement import consensus

    v = np.eye(4, dtype=np.float32)
    m = Matcher(side(v), side(v))
    m.accept(0, 0, "embedding")
    m.accept(1, 1, "embedding")
    assert consensus(m, [{0: 1}] * 3, 3) == 0
    assert consensus(m, [{2: 3}, {2: 3}, {2: 3}, {3: 3}, {3: 3}, {3: 3}], 3) == 0
    assert (m.match[0].s, m.match[1].s, 2 in m.match) == (0, 1, False)
    assert consensus(m, [{2: 3}] * 3, 3) == 1 and m.match[2].s == 3  # an unmatched function gets a free one


def test_matching_with_a_vote_stays_one_to_one_and_records_the_moved_matches_evidence():
    """With Params.vote, matches that three cleaner views outvote move to their choice (via "consensus"); the
    result stays one to one, and each moved match's place among its candidates is its new reference's."""
    from dataclasses import replace

    from symbridge.match.agreement import match_both_ways

    ref, tgt = noisy_pair(2, n=150, families=40, noise=1.0)
    clean = noisy_pair(2, n=150, families=40, noise=0.3)  # the same functions, less noise
    views = noisy_views(ref, tgt, 3, 0.2, seed=7, base=clean)
    before = match_both_ways(ref, tgt, Params(), (), views).matches
    after = match_both_ways(ref, tgt, replace(Params(), vote=3), (), views)
    moved = [i for i, m in after.matches.items() if m.via == ["consensus"]]
    assert moved and all(i not in before or before[i].s != after.matches[i].s for i in moved)
    assert len({m.s for m in after.matches.values()}) == len(after.matches)
    right = sum(m.s == i for i, m in after.matches.items())  # target i's counterpart is reference i
    assert right > sum(m.s == i for i, m in before.items())
    for i in moved:
        m = after.matches[i]
        hit = np.flatnonzero(after.cand_idx[i] == m.s)
        assert m.rank == (int(hit[0]) if len(hit) else 10) and m.top1 == (after.cand_idx[i, 0] == m.s)
        assert m.views_agree >= 2 / 3
