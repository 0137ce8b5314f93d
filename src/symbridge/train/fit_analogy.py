"""Fit the analogy's shift filter (`symbridge.model.shift`) on train-sources pairs (never dev-eval).

    python -m symbridge.train.fit_analogy

For held-out train pairs of the kinds whose builds differ in compiler, flags or release (packages the model
was not trained on, as `heldout.py` draws them; `--kinds`), the shift emb_P(f) - emb_S(f) of each function
with a counterpart: the principal directions of the pairs' mean shifts, the mean square of the mean shifts
along them (signal) and of each function's shift about its pair's mean (noise). Written to
src/symbridge/model/weights/analogy-shift.npz for the shipped model, or beside a `--model` file
(MODEL.shift.npz, where `symbridge analogy --model MODEL` finds it), or to `--out`; bound to the model it was
fitted with.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ..model.model import Model
from ..model.shift import SHIFT_FILE, ShiftFilter, beside, model_key
from .fit_matcher import WEIGHTS
from .heldout import held_out_queries, pair_arguments


def fit(shifts: list[np.ndarray], rank: int, key: str) -> ShiftFilter:
    """The filter from per-pair shift rows (one array a pair, rows: functions, columns: the model's dims)."""
    means = np.stack([d.mean(axis=0) for d in shifts]).astype(np.float64)
    _, sv, vt = np.linalg.svd(means / np.sqrt(len(means)), full_matrices=False)
    r = min(rank, int((sv > sv[0] * 1e-6).sum()))
    basis = vt[:r].T
    noise = np.zeros(r)
    count = 0
    for d, m in zip(shifts, means):
        noise += (((d - m) @ basis) ** 2).sum(axis=0)
        count += len(d)
    return ShiftFilter(basis.astype(np.float32), sv[:r] ** 2, noise / max(count, 1), key)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="Model file (default: the shipped model).")
    # the kinds whose builds differ in compiler, flags or release (cross-version pairs, added since, differ least)
    pair_arguments(ap, per_kind=30, seed=11,
                   kinds=["cross-compiler", "cross-opt", "cross-release", "cross-release-static"])
    ap.add_argument("--rank", type=int, default=32, help="Directions kept.")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    model = Model.load(a.model) if a.model else Model.default()
    shifts, t0 = [], time.time()
    for kind, p, sc, pc, q, t in held_out_queries(a):
        if len(q) < 2:
            continue
        xs, xp = model.embed(sc), model.embed(pc)
        shifts.append((xp[t] - xs[q]).astype(np.float32))
        print(f"[{time.time() - t0:5.0f}s] {kind} {p['target']}: {len(q)} functions", file=sys.stderr)
    if len(shifts) < 2:
        raise SystemExit("fit_analogy: fewer than two pairs with counterparts; is the corpus on this machine?")
    f = fit(shifts, a.rank, model_key(model))
    out = a.out or (beside(str(a.model)) if a.model else WEIGHTS / SHIFT_FILE)
    f.save(out)
    print(f"{len(shifts)} pairs, {sum(map(len, shifts))} functions; one-anchor gains of the first directions "
          f"{np.round(f.gains(1)[:6], 3).tolist()}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
