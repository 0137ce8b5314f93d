"""Turn a training checkpoint into the shipped model: fit the identifier-sketch weight on train pairs.

    python -m symbridge.train.finalize /work/data/runs/r2/best.safetensors
    python -m symbridge.train.finalize /work/data/runs/f12/last.safetensors /work/data/runs/f13/last.safetensors

The weight is chosen by plain nearest-neighbour top-1 over whole target binaries on train-sources pairs
(never dev-eval) of packages the model was not trained on (`--model-packages`), then the model is written
to src/symbridge/model/weights/symbridge-default.safetensors (or `--out`), with the context weights
(`model.context`: callees and read-only data, chosen with `heldout.py` on held-out train pairs in session 23;
callers, chosen the same way in session 33).
`--context-only` takes one finished model and sets only its context weights (its tables stay bit for bit):

    python -m symbridge.train.finalize src/symbridge/model/weights/symbridge-default.safetensors --context-only
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import SymbridgeError
from ..model.model import DEFAULT_WEIGHTS, Model
from .dataset import read_list
from .fit_matcher import WEIGHTS, hard_pair
from .heldout import queries

GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def top1(model: Model, pairs: list) -> float:
    hits = total = 0
    for sc, pc, q, g in pairs:
        xs, xp = model.embed(sc)[q], model.embed(pc)  # whole binaries: a function's context is its callees
        hits += int((np.argmax(xs @ xp.T, axis=1) == np.array(g)).sum())
        total += len(q)
    return hits / max(total, 1)


def fit_identifier_weight(base: Model, context: dict, a: argparse.Namespace) -> tuple[float, str]:
    """The identifier weight of GRID with the best nearest-neighbour top-1 on held-out train pairs, and how it
    was fitted."""
    rng = random.Random(0)
    seen = read_list(a.model_packages)
    by_kind = defaultdict(list)
    for p in json.loads(a.pairs.read_text()):
        if hard_pair(p) and p["source_package"] not in seen:
            by_kind[p["kind"]].append(p)
    pairs = []
    for _kind, ps in sorted(by_kind.items()):
        for p in rng.sample(ps, min(a.per_kind, len(ps))):
            try:
                got = queries(a.corpus / p["reference"], a.corpus / p["target"], a.work)
            except (SymbridgeError, OSError):
                continue
            if got[2]:
                pairs.append(got)
    best_w, best = 0.0, -1.0
    for w in GRID:
        m = Model(base.t, dict(base.meta, identifier_weight=w, **context), base.source)
        score = top1(m, pairs)
        print(f"identifier weight {w}: train-pairs nearest-neighbour top-1 {score:.4f}", file=sys.stderr)
        if score > best:
            best_w, best = w, score
    return best_w, f"{len(pairs)} train-sources pairs, top-1 {best:.4f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, nargs="+",
                    help="A checkpoint, or several trained alike (other seeds): they become one ensemble model.")
    ap.add_argument("--pairs", type=Path, default=Path("corpus/pairs-train.json"))
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--work", type=Path, default=Path("/work/data/fit"))
    ap.add_argument("--per-kind", type=int, default=8)
    ap.add_argument("--model-packages", type=Path, default=Path("corpus/model-train-packages.txt"),
                    help="Packages the model was trained on: left out of the fit.")
    ap.add_argument("--out", type=Path, default=WEIGHTS / DEFAULT_WEIGHTS)
    ap.add_argument("--bits", type=int, choices=(0, 4, 8), default=0,
                    help="Store the embedding tables as rows of 8- or 4-bit integers with a scale each (four "
                         "networks fit under 20 MB in 8 bits, eight in 4 bits); 0: float16.")
    ap.add_argument("--context-weight", type=float, default=0.5,
                    help="Weight of the callees' vectors appended to each function's own (0: none).")
    ap.add_argument("--data-weight", type=float, default=0.2,
                    help="Weight of the sketch of the read-only data a function reads (0: none).")
    ap.add_argument("--caller-weight", type=float, default=0.7,
                    help="Weight of the callers' vectors appended after the data sketch (0: none).")
    ap.add_argument("--context-members", type=int, default=2,
                    help="The callees' vectors are the outputs of this many ensemble members.")
    ap.add_argument("--identifier-weight", type=float, default=None,
                    help="Set the identifier-sketch weight instead of fitting it: a model trained on every "
                         "train package has no held-out pairs; take the weight its fold models were fitted to.")
    ap.add_argument("--context-only", action="store_true",
                    help="One finished model: set its context weights only, no identifier-weight fit.")
    a = ap.parse_args(argv)
    context = dict(context_weight=a.context_weight, data_weight=a.data_weight, caller_weight=a.caller_weight,
                   context_members=a.context_members)
    ckpts = [Model.load(c) for c in a.checkpoint]
    if a.context_only:
        if len(ckpts) != 1:
            ap.error("--context-only takes one model")
        final = Model(ckpts[0].t, dict(ckpts[0].meta, **context), ckpts[0].source)
        final.save(a.out, bits=ckpts[0].bits)
        print(f"context {context}; wrote {a.out}")
        return 0
    base = ckpts[0] if len(ckpts) == 1 else Model.ensemble(ckpts)
    if a.identifier_weight is not None:
        weight, fit = a.identifier_weight, "set, as its fold models were fitted"
    else:
        weight, fit = fit_identifier_weight(base, context, a)
    final = Model(base.t, dict(base.meta, identifier_weight=weight, **context, identifier_weight_fit=fit), base.source)
    final.save(a.out, bits=a.bits)
    print(f"identifier weight {weight} ({fit}); wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
