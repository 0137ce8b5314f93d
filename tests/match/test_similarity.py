"""Top-K candidates from the similarity matrix: against a brute-force sort, ties included."""

import numpy as np

from symbridge.match.similarity import top_k


def brute(s: np.ndarray, k: int) -> list[list[int]]:
    return [sorted(range(s.shape[1]), key=lambda c: (-s[r, c], c))[:k] for r in range(s.shape[0])]


def few_distinct(rng: np.random.Generator, high: int) -> tuple[np.ndarray, np.ndarray]:
    """Query and base rows of few distinct values: many exactly equal scores, as identical functions give."""
    n, m, d = (int(v) for v in rng.integers(1, high, 3))
    return rng.integers(-1, 2, (n, d)).astype(np.float32), rng.integers(-1, 2, (m, d)).astype(np.float32)


def test_top_k_orders_best_first_and_breaks_ties_by_the_lower_index():
    rng = np.random.default_rng(3)
    for _ in range(60):
        q, b = few_distinct(rng, 30)
        n, m = len(q), len(b)
        k, kr = int(rng.integers(1, 12)), int(rng.integers(1, 4))
        (idx, val), (ridx, rval) = top_k(q, b, k, block=7, k_reverse=kr)
        s = q @ b.T
        assert idx.tolist() == brute(s, min(k, m))
        assert np.array_equal(val, np.take_along_axis(s, idx, axis=1))
        assert ridx.tolist() == brute(s.T, min(kr, n))
        assert np.array_equal(rval, np.take_along_axis(s.T, ridx, axis=1))


def test_top_k_of_rows_tied_across_most_columns_keeps_the_lowest_columns():
    """Functions without identifiers have a zero identifier sketch: every score of their rows ties."""
    rng = np.random.default_rng(4)
    for _ in range(30):
        q, b = few_distinct(rng, 40)
        n, m = len(q), len(b)
        q[rng.random(n) < 0.6] = 0.0  # most rows all zero
        b[rng.random(m) < 0.3] = 0.0
        k = int(rng.integers(1, 12))
        (idx, val), (ridx, _) = top_k(q, b, k, block=9, k_reverse=3)
        s = q @ b.T
        assert idx.tolist() == brute(s, min(k, m))
        assert np.array_equal(val, np.take_along_axis(s, idx, axis=1))
        assert ridx.tolist() == brute(s.T, min(3, n))


def test_top_k_over_more_columns_than_the_sample_finds_best_columns_placed_last():
    """The k-th best of a row's first columns bounds its search: rows whose best columns come last (the bound
    far below the k-th best) and rows tied across thousands of columns still get the brute-force answer."""
    rng = np.random.default_rng(5)
    for _ in range(4):
        n, m, d = int(rng.integers(20, 60)), int(rng.integers(1100, 3000)), 4
        q = rng.integers(-1, 2, (n, d)).astype(np.float32)
        b = np.sort(rng.integers(-2, 3, (m, d)), axis=0).astype(np.float32)  # scores grow towards the last rows
        q[rng.random(n) < 0.3] = 0.0
        k = int(rng.integers(1, 12))
        (idx, val), (ridx, _) = top_k(q, b, k, k_reverse=2)
        s = q @ b.T
        assert idx.tolist() == brute(s, k)
        assert np.array_equal(val, np.take_along_axis(s, idx, axis=1))
        assert ridx.tolist() == brute(s.T, min(2, n))


def test_top_k_scoring_identical_rows_once_gives_the_same_answer():
    """Identical functions (rows equal in every view and flag) are scored once: the same indices and scores as
    scoring every row, ties across copies broken by the lower index as before."""
    rng = np.random.default_rng(6)
    for _ in range(40):
        q, b = few_distinct(rng, 40)
        n, m = len(q), len(b)
        q = q[rng.integers(0, n, n)]  # copies of rows
        b = b[rng.integers(0, m, m)]
        q2, b2 = q[:, ::-1].copy(), b[:, ::-1].copy()
        q2[rng.random(n) < 0.2] = 0.5
        extra = [(q2, b2)]
        differ = [(rng.random(n) < 0.5, rng.random(m) < 0.5, 0.25)]
        k, kr = int(rng.integers(1, 12)), int(rng.integers(1, 4))
        plain = top_k(q, b, k, block=5, extra=extra, differ=differ, k_reverse=kr, dedup=False)
        once = top_k(q, b, k, block=5, extra=extra, differ=differ, k_reverse=kr, dedup=True)
        for a, c in zip(plain, once):
            assert np.array_equal(a[0], c[0]) and np.array_equal(a[1], c[1])
        assert np.array_equal(top_k(q, b, k, dedup=True)[0], top_k(q, b, k, dedup=False)[0])


def test_grouping_rows_puts_only_identical_rows_together():
    from symbridge.match.similarity import _groups

    a = np.array([[1.0, 2.0], [0.0, 1.0], [1.0, 2.0], [-0.0, 1.0], [0.0, 1.0]], np.float32)
    flags = np.array([True, False, True, False, True])
    first, inv = _groups([a])
    assert first.tolist() == [0, 1, 3] and inv.tolist() == [0, 1, 0, 2, 1]  # -0.0 is not 0.0 to the bit
    first, inv = _groups([a, flags])
    assert first.tolist() == [0, 1, 3, 4] and inv.tolist() == [0, 1, 0, 2, 3]
