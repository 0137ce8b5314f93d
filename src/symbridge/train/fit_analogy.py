"""Fit the analogy's shift filter (`symbridge.model.shift`) on train-sources pairs (never dev-eval).

    python -m symbridge.train.fit_analogy

For held-out train pairs of every kind benchmarks score (packages the model was not trained on, as
`heldout.py` draws them), the shift emb_P(f) - emb_S(f) of each function with a counterpart: the principal
directions of the pairs' mean shifts, the mean square of the mean shifts along them (signal) and of each
function's shift about its pair's mean (noise). Written to src/symbridge/model/weights/analogy-shift.npz
for the shipped model, or beside a `--model` file (MODEL.shift.npz, where `symbridge analogy --model MODEL`
finds it), or to `--out`; bound to the model it was fitted with.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import SymbridgeError
from ..model.model import Model
from ..model.shift import SHIFT_FILE, ShiftFilter, beside, model_key
from .dataset import read_list, read_manifest
from .fit_matcher import WEIGHTS, heldout_pairs
from .heldout import queries


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
    ap.add_argument("--pairs", type=Path, default=Path("corpus/pairs-train.json"))
    ap.add_argument("--manifest", type=Path, default=Path("corpus/manifest-train.jsonl"))
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--work", type=Path, default=Path("/work/data/fit"))
    ap.add_argument("--model-packages", type=Path, default=Path("corpus/model-train-packages.txt"),
                    help="Packages the model was trained on: left out.")
    ap.add_argument("--per-kind", type=int, default=30)
    ap.add_argument("--min-bytes", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--rank", type=int, default=32, help="Directions kept.")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    model = Model.load(a.model) if a.model else Model.default()
    by_kind = heldout_pairs(json.loads(a.pairs.read_text()), read_manifest(a.manifest),
                            read_list(a.model_packages), a.min_bytes)
    rng = random.Random(a.seed)
    shifts, t0 = [], time.time()
    for kind, ps in sorted(by_kind.items()):
        for p in rng.sample(ps, min(a.per_kind, len(ps))):
            try:
                sc, pc, q, t = queries(a.corpus / p["reference"], a.corpus / p["target"], a.work)
            except (SymbridgeError, OSError) as exc:
                print(f"skip {p['target']}: {exc}", file=sys.stderr)
                continue
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
