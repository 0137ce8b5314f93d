"""The inlined view of a binary's functions: each function embedded together with the callees an optimising
compiler would fold into it (static helpers called from one place, and small functions).

Between -O0 and -O3 a target function holds the code of helpers that the reference keeps apart; its embedding
then sits nearer the helper than the function itself. The matcher compares the optimised side with both the
plain and the inlined view of the other (the better of the two counts). Whether one side is the optimised one
shows in the function counts: inlining removes functions (``inline_side``)."""

from __future__ import annotations

import numpy as np


def inlinable(n_callers: int, size: int, max_size: int) -> bool:
    """Whether a compiler would fold a function into its callers: called from one place, or at most max_size
    bytes."""
    return n_callers == 1 or size <= max_size


def inline_groups(functions: list, callees: list[list[int]], callers: list[list[int]],
                  max_size: int) -> list[list[int]]:
    """For each function: itself and its callees that a compiler would inline (inlinable)."""
    return [[j] + [b for b in cs if b != j and inlinable(len(callers[b]), functions[b].size, max_size)]
            for j, cs in enumerate(callees)]


def inlined_vectors(model, functions: list, vectors: np.ndarray, callees: list[list[int]],
                    callers: list[list[int]], max_size: int) -> np.ndarray:
    """The inlined view (N, D): rows of functions with nothing to inline are their plain vectors."""
    groups = inline_groups(functions, callees, callers, max_size)
    rows = [j for j, g in enumerate(groups) if len(g) > 1]
    out = vectors.copy()
    if rows:
        out[rows] = model.embed_merged(functions, [groups[j] for j in rows])
    return out


def inline_side(n_ref: int, n_tgt: int, ratio: float) -> str | None:
    """"ref" when the target has markedly fewer functions than the reference (the target is the more optimised
    build, so the reference's inlined view is the one to compare with), "tgt" in the other direction, else
    None."""
    if ratio <= 0 or not n_ref or not n_tgt:
        return None
    if n_tgt < ratio * n_ref:
        return "ref"
    if n_ref < ratio * n_tgt:
        return "tgt"
    return None
