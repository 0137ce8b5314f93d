"""Agreement runs: the matching made again other ways (the other way round, without propagation or refinement,
with each ensemble member's vectors, with other views of the code), and which pairs they agree on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from .matcher import K, Match, Matcher, MatchResult, Params
from .runs import run_all
from .side import Side, column_view


def match_both_ways(ref: Side, tgt: Side, params: Params | None = None,
                    member_columns: Sequence[np.ndarray] = (), views: Sequence[tuple[Side, Side]] = (),
                    announce: Callable[[int, int], None] | None = None) -> MatchResult:
    """The matches of tgt's functions, each marked with which other matchings pair the same two functions
    (a pair they agree on is right far more often): matching the other way round (tgt as the reference),
    matching without address-order propagation or refinement (``plain_agrees``), matching with each
    ensemble member's own vectors (``member_columns``, from Model.member_columns; ``members_agree`` is the
    share that agree, 1.0 without members), and matching each other view of the code (``views``: (ref, tgt)
    sides, as transfer.code_views makes them; ``views_agree``, 1.0 without views). With ``params.vote`` a
    match those runs outvote moves to their choice first (``consensus``). ``announce(k, n)``: the k-th of
    those n runs is taken up (runs.run_all)."""
    p = params or Params.default()
    fwd = Matcher(ref, tgt, p)
    # one similarity matrix serves both runs: the reverse run's candidates are its columns
    (idx, val), (ridx, rval) = fwd.candidates(K, k_reverse=K)
    candidates = ((idx, val), (ridx[:, :2], rval[:, :2]))  # as Matcher.candidates(K) gives them

    def job(r: Side, t: Side, q: Params, cands: tuple | None = None) -> Callable[[], dict[int, int]]:
        return lambda: {i: m.s for i, m in Matcher(r, t, q).run(cands).matches.items()}

    def member_job(c: np.ndarray) -> Callable[[], dict[int, int]]:  # its columns copied when it runs, not before
        return lambda: job(column_view(ref, c), column_view(tgt, c), p)()

    # the reverse run matches ref's functions (its targets) to tgt's (its references): ref index -> tgt index
    jobs = [job(tgt, ref, p, ((ridx, rval), (idx[:, :2], val[:, :2]))),
            job(ref, tgt, replace(p, order_sim=2.0, refine=False), candidates)]
    jobs += [member_job(c) for c in member_columns]
    jobs += [job(r, t, p) for r, t in views]
    res, (back, plain, *rest) = run_all(lambda: fwd.run(candidates), jobs, len(ref.addrs) + len(tgt.addrs),
                                        announce)
    members, others = rest[:len(member_columns)], rest[len(member_columns):]
    if p.vote and consensus(fwd, [{i: s for s, i in back.items()}, plain, *rest], p.vote):
        fwd.add_support(idx, val, ridx, rval)

    def share(runs: list[dict[int, int]], i: int, s: int) -> float:  # 1.0 where there are no such runs
        return sum(1 for r in runs if r.get(i) == s) / len(runs) if runs else 1.0

    for i, m in res.matches.items():
        m.reverse_agrees = back.get(m.s) == i
        m.plain_agrees = plain.get(i) == m.s
        m.members_agree, m.views_agree = share(members, i, m.s), share(others, i, m.s)
    return res


def consensus(fwd: Matcher, runs: Sequence[dict[int, int]], min_votes: int) -> int:
    """Move each target function whose agreement runs (each a matching: target index -> reference index)
    choose one other reference function at least min_votes times, and more often than the first matching's
    choice (it counts as one vote for itself), to that function. Seeded matches (own names, identical code)
    stay; a move to a reference function another target function holds waits until that one moves away.
    Returns how many moved."""
    firm = ("symbol", "identical")
    wants: dict[int, int] = {}
    for i in set().union(*runs) if runs else ():
        count = Counter(r[i] for r in runs if i in r)
        (s, n), *rest = sorted(count.items(), key=lambda kv: (-kv[1], kv[0]))
        m = fwd.match.get(i)
        if m is not None and (m.s == s or any(v in m.via for v in firm)):
            continue
        if n >= min_votes and (not rest or rest[0][1] < n) and n > (1 + count.get(m.s, 0) if m else 0):
            wants[i] = s
    # two target functions that want the same reference function: neither moves
    twice = {s for s, k in Counter(wants.values()).items() if k > 1}
    wants = {i: s for i, s in wants.items() if s not in twice}
    while True:  # a move waits for the holder of its reference function to move away
        held = {i: s for i, s in wants.items() if fwd.taken.get(s, i) != i and fwd.taken[s] not in wants}
        if not held:
            break
        for i in held:
            del wants[i]
    for i in wants:
        fwd.release(i)
    for i, s in sorted(wants.items()):
        fwd.match[i] = Match(s, fwd.sim(i, s), ["consensus"])
        fwd.taken[s] = i
    return len(wants)
