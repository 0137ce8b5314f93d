"""Whole-binary matching on held-out train pairs: the check of a matcher change before it goes near dev-eval.

    python -m symbridge.train.matcher_eval --kinds cross-opt cross-compiler cross-release --per-kind 30

The pairs are those fit_matcher draws from (`heldout_pairs`: packages the model was not trained on, drawn from
the committed manifest). For each kind it prints match top-1 (target functions with a counterpart whose match
is right) and the plain nearest neighbour's top-1, over the target functions whose truth names one reference
function.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..errors import SymbridgeError
from ..evaluation import name_right, source_name
from ..match.matcher import Params
from ..model.model import Model
from .dataset import read_list, read_manifest
from .fit_matcher import heldout_pairs, prepare, run_pair


def score(prepared: tuple, params=None) -> tuple[int, int, int]:
    """(right matches, right nearest neighbours, target functions with a counterpart) of one prepared pair."""
    res, _, _ = run_pair(prepared, params, evidence=False)
    _, _, sc, pc, truth, _, _ = prepared
    ref_names = {n for f in sc if f.name for n in (f.name, source_name(f.name))}
    right = nn = n = 0
    for i, f in enumerate(pc):
        names = truth.get(f.address, ())
        if not any(x in ref_names for x in names):
            continue
        n += 1
        m = res.matches.get(i)
        right += m is not None and name_right(sc[m.s].name, names)
        nn += res.cand_idx.shape[1] > 0 and name_right(sc[int(res.cand_idx[i, 0])].name, names)
    return right, nn, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=Path, default=Path("corpus/pairs-train.json"))
    ap.add_argument("--manifest", type=Path, default=Path("corpus/manifest-train.jsonl"))
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--work", type=Path, default=Path("/work/data/fit"))
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--model-packages", type=Path, default=Path("corpus/model-train-packages.txt"))
    ap.add_argument("--kinds", nargs="+", default=["cross-opt", "cross-compiler", "cross-release"])
    ap.add_argument("--per-kind", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--params", nargs="+", default=[""], metavar="NAME=VALUE,...",
                    help="Matcher settings to compare on the same pairs, each a comma-separated list of "
                         "overrides of the shipped ones (e.g. --params '' prop_sim=0.8,refine=false); "
                         "default: the shipped.")
    a = ap.parse_args(argv)
    base = Params.default()
    configs = []
    for spec in a.params:
        over = dict(kv.split("=", 1) for kv in spec.split(",") if kv)
        unknown = set(over) - set(base.to_dict())
        if unknown:
            raise SystemExit(f"matcher_eval: no matcher setting {', '.join(sorted(unknown))}")
        configs.append((spec or "shipped", replace(base, **{k: type(getattr(base, k))(
            v if not isinstance(getattr(base, k), bool) else v.lower() in ("1", "true")) for k, v in over.items()})))
    model = Model.load(a.model) if a.model else Model.default()
    seen = read_list(a.model_packages)
    rows = read_manifest(a.manifest)
    by_kind = heldout_pairs(json.loads(a.pairs.read_text()), rows, seen, min_bytes=0)
    rng = random.Random(a.seed)
    t0 = time.time()
    for kind in a.kinds:
        ps = by_kind.get(kind, [])
        tot = {label: [0, 0, 0] for label, _ in configs}
        for p in rng.sample(ps, min(a.per_kind, len(ps))):
            if not (a.corpus / p["reference"]).exists() or not (a.corpus / p["target"]).exists():
                print(f"skip {p['target']}: not in the corpus on this machine", file=sys.stderr)
                continue
            try:
                prepared = prepare(a.corpus / p["reference"], a.corpus / p["target"], a.work, model)
            except (SymbridgeError, OSError) as exc:
                print(f"skip {p['target']}: {exc}", file=sys.stderr)
                continue
            for label, params in configs:
                tot[label] = [x + y for x, y in zip(tot[label], score(prepared, params))]
        for label, (right, nn, n) in tot.items():
            print(f"{kind:22s} pairs {min(a.per_kind, len(ps)):3d}  functions {n:6d}  match top-1 "
                  f"{right / max(n, 1):.4f}  nearest neighbour {nn / max(n, 1):.4f}  {label}  "
                  f"[{time.time() - t0:.0f}s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
