"""Cosine similarity between two sets of unit vectors, kept to the top K per row (and per column)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def scores(query: np.ndarray, base: np.ndarray, extra: list[tuple[np.ndarray, np.ndarray]] = (),
           differ: Sequence[tuple[np.ndarray, np.ndarray, float]] = ()) -> np.ndarray:
    """The similarity matrix of query rows to base rows: the best of the views (``extra``: other views
    (query', base') of the same rows), less each penalty of ``differ`` (query flags, base flags, penalty) where
    its flags differ."""
    s = query @ base.T
    for q2, b2 in extra:
        np.maximum(s, q2 @ b2.T, out=s)
    for qf, bf, pen in differ:  # in the vectors' own precision, in place: each flag's rows at once
        pen = np.asarray(pen, s.dtype)
        zero = np.zeros((), s.dtype)
        for v in np.unique(qf):
            np.subtract(s, np.where(bf != v, pen, zero)[None, :], out=s, where=(qf == v)[:, None])
    return s


def _kth_above(s: np.ndarray, bound: np.ndarray, k: int) -> np.ndarray:
    """The k-th best value of each row of s, each row known to hold at least k values at or above its bound:
    those values alone are partitioned, row by row (a whole row of a large binary, crowded with look-alikes,
    partitions slowly)."""
    rows, cols = np.nonzero(s >= bound[:, None])
    ends = np.cumsum(np.bincount(rows, minlength=len(s)))
    vals = s[rows, cols]
    out = np.empty(len(s), s.dtype)
    for r, (a, b) in enumerate(zip(np.concatenate([[0], ends[:-1]]), ends)):
        out[r] = np.partition(vals[a:b], b - a - k)[b - a - k]
    return out


def _crowded(s: np.ndarray, bound: np.ndarray, k: int) -> np.ndarray:
    """The columns that may be among the k best of rows s whose bound ties across many columns (zero vectors,
    look-alikes): those above the row's k-th best value, and of those equal to it the lowest that fill k."""
    kth = bound.copy()
    above = s > kth[:, None]
    redo = np.flatnonzero(above.sum(axis=1) >= k)  # the bound lies below the k-th best value: find that
    if len(redo):
        kth[redo] = _kth_above(s[redo], bound[redo], k)
        above[redo] = s[redo] > kth[redo, None]
    need = k - above.sum(axis=1)
    for j in range(len(s)):
        above[j, np.flatnonzero(s[j] == kth[j])[:need[j]]] = True
    return above


def _best(s: np.ndarray, k: int, sample: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The k best columns of each row of s, best first; of equal scores the lower column first."""
    n, m = s.shape
    if k < m and n:
        s = np.ascontiguousarray(s)  # the reverse top k reads the matrix transposed: one copy beats strided passes
        # a bound at or below each row's k-th best value: the k-th best of `sample` columns spread over the row
        # (the first ones, neighbours in the binary, are alike: their bound let through thousands of a row of
        # libLLVM); the columns at or above it (a few hundred at most, where a partition of the whole row costs
        # ~8x more) are sorted by row, score, column, and each row keeps its first k
        step = max(1, m // max(sample, 4 * k))
        part = s[:, ::step]
        c = part.shape[1]
        bound = np.partition(part, c - k, axis=1)[:, c - k]
        mask = s >= bound[:, None]
        crowded = np.flatnonzero(mask.sum(axis=1) > 4 * k * -(-m // c))  # ~k m / c columns a row expected
        if len(crowded):
            mask[crowded] = _crowded(s[crowded], bound[crowded], k)
        rows, cols = np.nonzero(mask)
        vals = s[rows, cols]
        order = np.lexsort((cols, -vals, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        keep = np.arange(len(rows)) - np.searchsorted(rows, np.arange(n))[rows] < k
        if keep.sum() == n * k:  # else NaNs: the slow way below
            return cols[keep].reshape(n, k), vals[keep].reshape(n, k)
    part = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < m else np.broadcast_to(np.arange(m), s.shape).copy()
    part.sort(axis=1)
    ps = np.take_along_axis(s, part, axis=1)
    order = np.argsort(-ps, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(ps, order, axis=1)


def _merge_reverse(s: np.ndarray, lo: int, ridx: np.ndarray, rval: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best rows of each column so far (ridx, rval: kr of them, best first, ties the lower row first) merged
    with block s, whose first row is row lo. Once every column holds kr rows only the block's entries above a
    column's kr-th best can enter (an equal one comes after it, a lower row): those are merged; until then
    the block's own best rows of every column are (its transpose, sorted). Updates ridx and rval in place
    once they are full."""
    kr = ridx.shape[1]
    if np.isneginf(rval[:, -1]).any():
        bi, bv = _best(s.T, min(kr, len(s)))
        ci = np.concatenate([ridx, bi + lo], axis=1)
        cv = np.concatenate([rval, bv.astype(np.float32)], axis=1)
        order = np.lexsort((ci, -cv))[:, :kr]  # ties: the lower row first
        return np.take_along_axis(ci, order, axis=1), np.take_along_axis(cv, order, axis=1)
    rows, cols = np.nonzero(s > rval[:, -1])
    if not len(rows):
        return ridx, rval
    vals = s[rows, cols].astype(np.float32)
    touched = np.unique(cols)
    # each touched column's kr entries so far and its new ones, sorted by column, score (best first), row
    c_all = np.concatenate([np.repeat(touched, kr), cols])
    r_all = np.concatenate([ridx[touched].ravel(), rows + lo])
    v_all = np.concatenate([rval[touched].ravel(), vals])
    order = np.lexsort((r_all, -v_all, c_all))
    c_all, r_all, v_all = c_all[order], r_all[order], v_all[order]
    first = np.searchsorted(c_all, touched)
    take = (first[:, None] + np.arange(kr)).ravel()  # every touched column has at least its kr old entries
    ridx[touched] = r_all[take].reshape(-1, kr)
    rval[touched] = v_all[take].reshape(-1, kr)
    return ridx, rval


BLOCK_CELLS = 1 << 26  # similarities computed at once (256 MB of float32): bounds memory on large binaries
DEDUP_CELLS = 1 << 26  # from this many similarities on, identical rows are scored once (see top_k)
DEDUP_SAVING = 0.8  # ... where that leaves at most this share of the similarities


def top_k(query: np.ndarray, base: np.ndarray, k: int, block: int = 0,
          extra: list[tuple[np.ndarray, np.ndarray]] = (),
          differ: Sequence[tuple[np.ndarray, np.ndarray, float]] = (),
          k_reverse: int = 0, dedup: bool | None = None) -> tuple[np.ndarray, np.ndarray] | tuple[tuple, tuple]:
    """(indices, scores), each (len(query), k'), best first; k' = min(k, len(base)). ``extra`` holds other views
    (query', base') of the same rows; a pair scores the best of its views. Each of ``differ`` (query flags,
    base flags, penalty) takes its penalty off pairs whose flags differ. With ``k_reverse`` also the best
    k_reverse query rows of each base row, from the same matrix: ((indices, scores), (reverse indices, reverse
    scores)). Of equal scores the lower index comes first. ``block``: query rows a step (default: as many as
    BLOCK_CELLS allows, 256 to 2,048).

    Rows that are identical in every view and flag (a large C++ library holds thousands of copies of the same
    small function) are scored once, from DEDUP_CELLS similarities on where that saves enough (``dedup``: always
    or never): the answer is the same, the duplicates' scores equal to the bit."""
    n, m = len(query), len(base)
    auto = dedup is None
    groups = (_groups([query, *(q2 for q2, _ in extra), *(qf for qf, _, _ in differ)]),
              _groups([base, *(b2 for _, b2 in extra), *(bf for _, bf, _ in differ)])) \
        if n and m and (n * m >= DEDUP_CELLS if auto else dedup) else (None, None)
    if None in groups or (auto and len(groups[0][0]) * len(groups[1][0]) > DEDUP_SAVING * n * m):
        return _top_k(query, base, k, block, extra, differ, k_reverse)
    (qf, qinv), (bf, binv) = groups
    got = _top_k(query[qf], base[bf], k, block, [(q2[qf], b2[bf]) for q2, b2 in extra],
                 [(f1[qf], f2[bf], pen) for f1, f2, pen in differ], k_reverse)
    (uidx, uval), (ruidx, ruval) = got if k_reverse else (got, (None, None))
    idx, val = _expand(uidx, uval, binv, min(k, m))
    if not k_reverse:
        return idx[qinv], val[qinv]
    ridx, rval = _expand(ruidx, ruval, qinv, min(k_reverse, n))
    return (idx[qinv], val[qinv]), (ridx[binv], rval[binv])


def _groups(parts: list[np.ndarray], step: int = 4096) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows identical in every part (arrays of one length): the first row of each group, ascending, and each
    row's group. Rows are hashed, then compared byte for byte with their group's first row: a hash collision
    gives None (no grouping rather than a wrong one)."""
    n = len(parts[0])
    rows = [np.ascontiguousarray(a).reshape(n, -1).view(np.uint8) for a in parts]
    rng = np.random.default_rng(0)
    mults = [rng.integers(1, 2**63, -(-b.shape[1] // 8), dtype=np.uint64) for b in rows]
    h = np.zeros(n, np.uint64)
    for lo in range(0, n, step):
        for b, mult in zip(rows, mults):  # sums wrap modulo 2**64, as a hash may
            words = b[lo:lo + step]
            if b.shape[1] % 8:  # whole 64-bit words
                words = np.concatenate([words, np.zeros((len(words), -b.shape[1] % 8), np.uint8)], axis=1)
            h[lo:lo + step] = (h[lo:lo + step] * np.uint64(0x9E3779B97F4A7C15)
                               + (words.view(np.uint64) * mult).sum(axis=1, dtype=np.uint64))
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups numbered in the order of their first rows
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    first, inv = first[order], rank[inv.ravel()]
    for b in rows:
        for lo in range(0, n, step):
            if not np.array_equal(b[lo:lo + step], b[first[inv[lo:lo + step]]]):
                return None
    return first, inv


def _expand(uidx: np.ndarray, uval: np.ndarray, inv: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best members of each row's best groups (uidx, uval: groups, best first, ties the lower group first;
    inv: the group of each member), best first, of equal scores the lower member first. The k best members lie
    in the k best groups: a group ranks below k others only where each of those has a member (its first) that
    ranks above all of its own members."""
    order = np.argsort(inv, kind="stable")  # members by group, ascending within it
    sizes = np.bincount(inv)
    starts = np.cumsum(sizes) - sizes  # where each group's members begin in order
    take = np.minimum(sizes[uidx], k)  # more than k members of one group never count
    offs = np.arange(k)
    valid = offs[None, None, :] < take[:, :, None]
    pos = np.where(valid, starts[uidx][:, :, None] + offs, 0)
    cand = np.where(valid, order[pos], np.iinfo(np.int64).max).reshape(len(uidx), -1)
    score = np.where(valid, uval[:, :, None], -np.inf).astype(uval.dtype).reshape(len(uidx), -1)
    best = np.lexsort((cand, -score))[:, :k] if cand.shape[1] else np.zeros((len(uidx), 0), np.int64)
    return np.take_along_axis(cand, best, axis=1), np.take_along_axis(score, best, axis=1)


def _top_k(query: np.ndarray, base: np.ndarray, k: int, block: int,
           extra: list[tuple[np.ndarray, np.ndarray]],
           differ: Sequence[tuple[np.ndarray, np.ndarray, float]],
           k_reverse: int) -> tuple[np.ndarray, np.ndarray] | tuple[tuple, tuple]:
    """top_k without grouping identical rows."""
    n, m = len(query), len(base)
    block = block or max(256, min(2048, BLOCK_CELLS // max(m, 1)))
    k = min(k, m)
    idx = np.zeros((n, k), np.int64)
    val = np.zeros((n, k), np.float32)
    kr = min(k_reverse, n)
    ridx = np.zeros((m, kr), np.int64)
    rval = np.full((m, kr), -np.inf, np.float32)
    if n and m and (k or kr):
        for lo in range(0, n, block):
            hi = lo + block
            s = scores(query[lo:hi], base, [(q2[lo:hi], b2) for q2, b2 in extra],
                       [(qf[lo:hi], bf, pen) for qf, bf, pen in differ])
            if k:
                idx[lo:lo + block], val[lo:lo + block] = _best(s, k)
            if kr:
                ridx, rval = _merge_reverse(s, lo, ridx, rval)
    if not k_reverse:
        return idx, val
    return (idx, val), (ridx, rval)
