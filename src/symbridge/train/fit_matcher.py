"""Fit the confidence calibration and the default --min-confidence on train-sources pairs only.

    python -m symbridge.train.fit_matcher --model src/symbridge/model/weights/symbridge-default.safetensors

Pairs: the corpus's train pairs (cross-suite official builds, rebuilds across compilers and optimisation
levels) plus pairs of two different programs or libraries, so that matches of functions that have no
counterpart are in the fit. Each match of the matcher becomes one example (its evidence -> was the name
right?). Logistic regression, then isotonic regression on its output; the threshold is the lowest
confidence at which the names given on these pairs are still >= 98 % right.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..binary import Binary
from ..errors import SymbridgeError
from ..evaluation import anonymize
from ..match.confidence import CALIBRATION_FILE, Calibrator, match_features
from ..match.transfer import match_binaries
from ..model.model import Model

WEIGHTS = Path(__file__).resolve().parents[1] / "model" / "weights"


def truth(path: Path) -> dict[int, set[str]]:
    out: dict[int, set[str]] = defaultdict(set)
    for s in Binary(path, use_debug_files=False).image.symbols:
        if s.defined and s.name and s.kind in ("STT_FUNC", "STT_GNU_IFUNC"):
            out[s.address].add(s.name)
    return out


def examples(ref: Path, tgt: Path, work: Path, model: Model) -> tuple[list, list]:
    anon = anonymize(tgt, work / "anon" / ("__".join(tgt.parts[-4:])))
    S = Binary(ref, use_debug_files=False)
    P = Binary(anon, ignore_symbols=True)
    res, sc, pc = match_binaries(S, P, model)
    t = truth(tgt)
    X, y = [], []
    for i, m in res.matches.items():
        s = sc[m.s]
        if not s.name:
            continue
        others = [float(v) for j, v in zip(res.cand_idx[i], res.cand_val[i]) if int(j) != m.s]
        margin = m.sim - (others[0] if others else 0.0)
        X.append(match_features(m.sim, margin, m.support, pc[i].size, s.size, m.via))
        y.append(s.name in t.get(pc[i].address, ()))
    return X, y


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=Path, default=Path("corpus/pairs-train.json"))
    ap.add_argument("--manifest", type=Path, default=Path("corpus/manifest-train.jsonl"))
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--work", type=Path, default=Path("/work/data/fit"))
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--per-kind", type=int, default=12)
    ap.add_argument("--unrelated", type=int, default=12)
    ap.add_argument("--precision", type=float, default=0.98)
    ap.add_argument("--out", type=Path, default=WEIGHTS / CALIBRATION_FILE)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    model = Model.load(a.model) if a.model else Model.default()
    rng = random.Random(a.seed)
    pairs = json.loads(a.pairs.read_text())
    by_kind: dict[str, list] = defaultdict(list)
    for p in pairs:
        by_kind[p["kind"]].append(p)
    chosen = [(a.corpus / p["reference"], a.corpus / p["target"], p["kind"])
              for kind, ps in sorted(by_kind.items()) for p in rng.sample(ps, min(a.per_kind, len(ps)))]
    rows = [json.loads(x) for x in a.manifest.read_text().splitlines()]
    shared = [r for r in rows if r["kind"] in ("shared", "exec") and r["size"] < 3_000_000]
    for _ in range(a.unrelated):
        r1, r2 = rng.sample(shared, 2)
        if r1["source_package"] != r2["source_package"]:
            chosen.append((a.corpus / r1["relpath"], a.corpus / r2["relpath"], "unrelated"))
    X, y, kinds = [], [], []
    t0 = time.time()
    for ref, tgt, kind in chosen:
        try:
            xs, ys = examples(ref, tgt, a.work, model)
        except (SymbridgeError, OSError) as exc:
            print(f"skip {tgt}: {exc}", file=sys.stderr)
            continue
        X += xs
        y += ys
        kinds += [kind] * len(xs)
        print(f"[{time.time() - t0:5.0f}s] {kind:22s} {len(xs):5d} matches, {np.mean(ys) if ys else 0:.3f} right  "
              f"{tgt.name}", file=sys.stderr, flush=True)
    X, y = np.array(X), np.array(y, float)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(X, y)
    z = lr.decision_function(X)
    p_lr = 1 / (1 + np.exp(-z))
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p_lr, y)
    grid = np.linspace(0, 1, 101)
    iso_y = iso.predict(grid)
    cal = Calibrator(coef=[float(c) for c in lr.coef_[0]], intercept=float(lr.intercept_[0]),
                     iso_x=[float(v) for v in grid], iso_y=[float(v) for v in iso_y])
    p = cal.probability(X)
    thr = 1.0
    for t in np.linspace(0.0, 1.0, 201):
        sel = p >= t
        if sel.sum() and y[sel].mean() >= a.precision:
            thr = float(t)
            break
    cal.threshold = round(thr, 3)
    cal.fitted_on = (f"{len(chosen)} train-sources pairs ({', '.join(sorted(set(kinds)))}), {len(y)} matches, "
                     f"{y.mean():.3f} right; model {model.name}")
    cal.save(a.out)
    sel = p >= thr
    print(f"threshold {thr:.3f}: named {int(sel.sum())} of {len(y)} matches, precision {y[sel].mean():.4f}, "
          f"recall of right matches {(sel & (y == 1)).sum() / max(y.sum(), 1):.4f}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
