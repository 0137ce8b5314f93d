"""Compare models on train-sources pairs of packages none of them was trained on (never dev-eval).

    python -m symbridge.train.heldout /work/data/runs/f11/final.safetensors /work/data/runs/f12/last.safetensors

Nearest-neighbour top-1 (ties shared) over the whole target binary, per kind of pair that the benchmark
scores (`fit_matcher.hard_pair`), plus the seed's analogy on each kind (one random anchor, and the mean shift
of 10; the shift raw and through the model's filter). This is how a checkpoint is chosen without looking at
dev-eval; `default` stands for the shipped model.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import SymbridgeError
from ..evaluation import counterpart_queries, truth_names
from ..model.model import Model
from ..model.shift import ShiftFilter
from .dataset import read_list, read_manifest
from .fit_matcher import heldout_pairs, load_pair


def queries(ref: Path, tgt: Path, work: Path) -> tuple[list, list, list[int], list[int]]:
    """Reference and target functions, and the (reference row, target row) pairs the benchmark queries."""
    S, P = load_pair(ref, tgt, work)
    sc, pc = S.code_functions, P.code_functions
    return (sc, pc, *counterpart_queries(sc, pc, truth_names(tgt)))


def top1(scores: np.ndarray, true: np.ndarray) -> np.ndarray:
    """1 / (number tied) where the true column is the best of its row, else 0."""
    st = true[:, None]
    greater = (scores > st + 1e-7).sum(1)
    ties = (np.abs(scores - st) <= 1e-7).sum(1)
    return np.where(greater == 0, 1.0 / ties, 0.0)


def analogy_hits(xs: np.ndarray, xp: np.ndarray, q: list[int], t: list[int], filt=None) -> dict[str, list]:
    """Top-1 of the seed's analogy for each query, with one random anchor and with the mean shift of 10
    (the anchors' own target functions are no answer, as in symbridge.analogy), the shift as it is and, with
    the model's filter, filtered."""
    rng = np.random.default_rng(0)
    out: dict[str, list] = defaultdict(list)
    for r in range(len(q)):
        others = [int(j) + (j >= r) for j in rng.choice(len(q) - 1, 10, replace=False)]
        for k in (1, 10):
            used = others[:k]
            shift = (xp[[t[j] for j in used]] - xs[[q[j] for j in used]]).mean(axis=0)
            for label, sh in [("raw", shift)] + ([("filtered", filt.apply(shift, k))] if filt else []):
                sv = (xp @ (xs[q[r]] + sh))[None, :].astype(np.float64)
                sv[0, [t[j] for j in used]] = -np.inf
                out[f"analogy, {k} anchor{'s' if k > 1 else ''}, {label}"].extend(top1(sv, sv[:, t[r]]))
    return out


def pair_arguments(ap: argparse.ArgumentParser, per_kind: int, seed: int, kinds: list[str] | None = None) -> None:
    """The options that say which held-out train pairs to draw (held_out_queries reads them)."""
    ap.add_argument("--pairs", type=Path, default=Path("corpus/pairs-train.json"))
    ap.add_argument("--manifest", type=Path, default=Path("corpus/manifest-train.jsonl"))
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--work", type=Path, default=Path("/work/data/fit"))
    ap.add_argument("--model-packages", type=Path, default=Path("corpus/model-train-packages.txt"),
                    help="Packages a model may have seen: left out.")
    ap.add_argument("--per-kind", type=int, default=per_kind)
    ap.add_argument("--min-bytes", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=seed)
    every = " ".join(kinds) if kinds else "every kind benchmarks score"
    ap.add_argument("--kinds", nargs="+", default=kinds, help=f"Kinds of pairs to draw (default: {every}).")


def held_out_queries(a: argparse.Namespace) -> Iterator[tuple[str, dict, list, list, list[int], list[int]]]:
    """(kind, pair, reference functions, target functions, reference rows, target rows) of each pair drawn
    (--per-kind a kind, --seed) from the held-out train pairs that have queries; pairs that fail to load are
    reported and skipped."""
    by_kind = heldout_pairs(json.loads(a.pairs.read_text()), read_manifest(a.manifest),
                            read_list(a.model_packages), a.min_bytes)
    rng = random.Random(a.seed)
    for kind, ps in sorted(by_kind.items()):
        if a.kinds and kind not in a.kinds:
            continue  # kinds sort so that one left out after the others leaves their draws as they were
        for p in rng.sample(ps, min(a.per_kind, len(ps))):
            try:
                sc, pc, q, t = queries(a.corpus / p["reference"], a.corpus / p["target"], a.work)
            except (SymbridgeError, OSError) as exc:
                print(f"skip {p['target']}: {exc}", file=sys.stderr)
                continue
            if q:
                yield kind, p, sc, pc, q, t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="Model files, or `default` for the shipped model.")
    pair_arguments(ap, per_kind=14, seed=7)
    a = ap.parse_args(argv)
    models = {m: Model.default() if m == "default" else Model.load(Path(m)) for m in a.models}
    filters = {name: ShiftFilter.for_model(m) for name, m in models.items()}
    hits: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for kind, _, sc, pc, q, t in held_out_queries(a):
        for name, m in models.items():
            xs, xp = m.embed(sc), m.embed(pc)
            s = xs[q] @ xp.T
            hits[kind][name].extend(top1(s, s[np.arange(len(q)), t]))
            if len(q) >= 12:
                for label, k in analogy_hits(xs, xp, q, t, filters[name]).items():
                    hits[f"{label}, {kind}"][name].extend(k)
    for kind in sorted(hits):
        row = "  ".join(f"{name}: {np.mean(v):.3f}" for name, v in hits[kind].items())
        n = len(next(iter(hits[kind].values())))
        print(f"{kind:32s} {row}  ({n} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
