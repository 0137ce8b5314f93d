"""Cosine similarity between two sets of unit vectors, kept to the top K per row."""

from __future__ import annotations

import numpy as np


def top_k(query: np.ndarray, base: np.ndarray, k: int, block: int = 2048,
          extra: list[tuple[np.ndarray, np.ndarray]] = (),
          differ: tuple[np.ndarray, np.ndarray, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores), each (len(query), k'), best first; k' = min(k, len(base)). ``extra`` holds other views
    (query', base') of the same rows; a pair scores the best of its views. ``differ`` (query flags, base flags,
    penalty) takes the penalty off pairs whose flags differ."""
    n, m = len(query), len(base)
    k = min(k, m)
    idx = np.zeros((n, k), np.int64)
    val = np.zeros((n, k), np.float32)
    if n == 0 or k == 0:
        return idx, val
    for i in range(0, n, block):
        s = query[i:i + block] @ base.T
        for q2, b2 in extra:
            s = np.maximum(s, q2[i:i + block] @ b2.T)
        if differ is not None:
            s = s - differ[2] * (differ[0][i:i + block, None] != differ[1][None, :])
        if k < m:
            part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(m), (len(s), m)).copy()
        ps = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        idx[i:i + block] = np.take_along_axis(part, order, axis=1)
        val[i:i + block] = np.take_along_axis(ps, order, axis=1)
    return idx, val
