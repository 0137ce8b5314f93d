"""Fit the confidence calibration and the default --min-confidence on train-sources pairs only.

    python -m symbridge.train.fit_matcher --model src/symbridge/model/weights/symbridge-default.safetensors

Pairs: train pairs of the packages the model was not trained on (`--model-packages`; a model is too sure of
functions it has seen, and a calibration fitted there is overconfident elsewhere), of the kinds the benchmark
scores (`hard_pair`), rebuilds of other compilers and levels (`other_rebuild`: another compiler and -O0
against -O3 both ways round, and the rest), plus pairs of two different programs or libraries (of two
packages, so that matches of functions that have no counterpart are in the fit, and of one package and build,
which share part of their code: the seed's own setting; and a shared library, names of its exports only,
against a static program that links the same package's archive with glibc: `symbridge.train.shared_static`).
Each match of the matcher becomes one example (its evidence -> was the name right?). Boosted trees (or
logistic regression), then isotonic regression on their out-of-fold scores; the threshold is the lowest
confidence at which the names given are still >= 98 % right (and >= 97 % on each kind of pair; out of fold).
`--examples` refits the calibration alone from an earlier `--dump`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..binary import Binary
from . import shared_static
from .dataset import read_list, read_manifest, unit_of
from ..errors import SymbridgeError
from ..evaluation import anonymize, name_right, truth_names
from ..match.confidence import CALIBRATION_FILE, FEATURES, MONOTONE, Calibrator, signature_agreement
from ..match.agreement import match_both_ways
from ..match.matcher import Matcher, MatchResult, Params
from ..match.transfer import code_views, match_sides
from ..model.model import Model

WEIGHTS = Path(__file__).resolve().parents[1] / "model" / "weights"


def load_pair(ref: Path, tgt: Path, work: Path) -> tuple[Binary, Binary]:
    """The reference as it is, and the target as benchmarks hand it over (stripped, exports blanked; the copy
    is kept under work/anon)."""
    anon = anonymize(tgt, work / "anon" / ("__".join(tgt.parts[-4:])))
    return Binary(ref, use_debug_files=False), Binary(anon, ignore_symbols=True)


def prepare(ref: Path, tgt: Path, work: Path, model: Model) -> tuple:
    """(reference side, target side, their functions, the target's true names, the model's member columns, the
    other views of the code), what run_pair needs."""
    S, P = load_pair(ref, tgt, work)
    ref_side, tgt_side = match_sides(S, P, model, unfold=True)  # whichever settings are compared on it
    return (ref_side, tgt_side, S.code_functions, P.code_functions, truth_names(tgt), model.member_columns(),
            code_views(ref_side, tgt_side, S.code_functions, P.code_functions, model))


def run_pair(prepared: tuple, params: Params, evidence: bool = True) -> tuple[MatchResult, int, int]:
    """The match result, and how many matches name their target right and wrong. Without `evidence` the
    matcher runs once, without the agreement runs (the same matches; what counting right ones needs)."""
    ref_side, tgt_side, sc, pc, t, members, views = prepared
    res = (match_both_ways(ref_side, tgt_side, params, members, views) if evidence
           else Matcher(ref_side, tgt_side, params).run())
    right = sum(1 for i, m in res.matches.items() if name_right(sc[m.s].name, t.get(pc[i].address, ())))
    return res, right, len(res.matches) - right


def hard_pair(p: dict) -> bool:
    """The pairs of the kinds benchmarks score: official builds from bullseye to trixie, gcc -O0 -> -O3 and
    gcc -O2 -> clang -O2 rebuilds, rebuilds of two versions of the source (neighbouring suites or optimisation
    levels are too easy to teach much)."""
    if p["kind"] == "cross-opt":
        return "gcc-O0/" in p["reference"] and "gcc-O3/" in p["target"] or (
            "clang-O0/" in p["reference"] and "clang-O3/" in p["target"])
    if p["kind"] == "cross-compiler":
        return "gcc-O2/" in p["reference"] and "clang-O2/" in p["target"]
    if p["kind"] in ("cross-release", "cross-release-static"):  # the widest gap: gcc 10 -> gcc 14
        return (p.get("ref_suite"), p.get("target_suite")) == ("bullseye", "trixie")
    return p["kind"] == "cross-version"  # bookworm's and trixie's (or sid's) source, one compiler and flags


def other_rebuild(p: dict) -> str | None:
    """The kind of draw of a rebuild pair of other compilers and levels than the benchmark's, or None: users
    bring any. "cross-everything": another compiler and -O0 against -O3 (used both ways round), the widest
    gap; "mixed-rebuild": the rest (gcc -O2 -> -O3, clang -Os -> gcc -O1...)."""
    if p["kind"] not in ("cross-opt", "cross-compiler", "cross-compiler-opt") or hard_pair(p):
        return None
    levels = {lvl for path in (p["reference"], p["target"]) for lvl in ("-O0/", "-O3/") if lvl in path}
    return "cross-everything" if p["kind"] == "cross-compiler-opt" and len(levels) == 2 else "mixed-rebuild"


def heldout_pairs(pairs: list[dict], rows: list[dict], seen: set[str], min_bytes: int,
                  mixed: bool = False) -> dict[str, list]:
    """The pairs of each kind benchmarks score, of packages outside `seen`, whose target is at least min_bytes.
    Read from the committed manifest (rows), not from what is on disk, so that a draw from them is the same on
    every machine; a pair whose files are missing here is skipped where it is loaded. Official programs are
    stripped (no names to judge by): hard_pair leaves them out."""
    if pairs and all(p["source_package"] in seen for p in pairs):
        raise SystemExit("no held-out train pairs: the model was trained on every package of the pairs (the shipped "
                         "model is, since session 46); give a fold model and the packages it trained on, e.g. "
                         "--model DATA/runs/foldA.safetensors --model-packages DATA/runs/without-A.txt "
                         "(scripts/retrain.sh writes both)")
    size = {r["relpath"]: r["size"] for r in rows}
    by_kind: dict[str, list] = defaultdict(list)
    for p in pairs:
        if p["source_package"] not in seen and size.get(p["target"], 0) >= min_bytes:
            if hard_pair(p):
                by_kind[p["kind"]].append(p)
            elif mixed and (kind := other_rebuild(p)):
                by_kind[kind].append(p)
    return by_kind


def package_of(ref: Path, corpus: Path) -> str:
    """The source package of a pair (its reference's): corpus paths are split/package/..."""
    try:
        return ref.relative_to(corpus).parts[1]
    except (ValueError, IndexError):
        return str(ref)


def fit_params(prepared: list[tuple], penalty: float = 2.0) -> Params:
    """Grid search of the matcher's thresholds: most right matches, each wrong one costing `penalty`. The
    settings outside the grid stay as shipped (Params.default(): order_veto, cold_penalty, unfold_margin...
    were chosen after the thresholds; the built-in defaults would switch some of them off)."""
    base = Params.default()
    best, best_score = base, None
    # the region searched on 2026-12-02: stricter call-graph propagation and no intermediate final pass
    # (final_sim 1.0) did best; lower ones were searched before and lost
    for seed_sim, prop_sim, final_sim, order_sim in itertools.product((0.7,), (0.6, 0.8, 0.9), (0.8, 0.9, 1.0),
                                                                      (0.0, 0.1, 0.2, 0.35)):
        p = replace(base, seed_sim=seed_sim, prop_sim=prop_sim, final_sim=final_sim, order_sim=order_sim)
        score = 0.0
        for prep in prepared:
            _, r, w = run_pair(prep, p, evidence=False)
            score += r - penalty * w
        if best_score is None or score > best_score:
            best, best_score = p, score
        print(f"  seed {seed_sim} prop {prop_sim} final {final_sim} order {order_sim}: {score:.0f}", file=sys.stderr)
    return best


def examples(prepared: tuple, params: Params, partial: bool = False, names: list | None = None) -> tuple[list, list]:
    """One example per match that can be judged. With `partial` truth (official shared libraries: only the
    exported names are known) a match of a function the target does not export is left out, as the
    benchmark leaves it out: its name may well be right. `names`, when given, gets one line per example:
    target address, the name given and the target's true names (to read what the wrong ones are)."""
    res, _, _ = run_pair(prepared, params)
    _, _, sc, pc, t, _, _ = prepared
    X, y = [], []
    for i, m in res.matches.items():
        s = sc[m.s]
        if not s.name or (partial and not t.get(pc[i].address)):
            continue
        X.append(res.features(i, pc[i].size, s.size, signature_agreement(pc[i].facts, s.facts)))
        y.append(name_right(s.name, t.get(pc[i].address, ())))
        if names is not None:
            names.append(f"{pc[i].address:#x} {s.name} -> {'|'.join(sorted(t.get(pc[i].address, ()))) or '-'}")
    return X, y


def classifier(kind: str):
    """The unfitted model under the calibration: boosted trees held to confidence.MONOTONE ("trees"), or
    logistic regression."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    if kind == "trees":
        return HistGradientBoostingClassifier(max_iter=400, learning_rate=0.05, max_leaf_nodes=8,
                                              min_samples_leaf=40, monotonic_cst=[MONOTONE.get(f, 0) for f in FEATURES],
                                              early_stopping=False, random_state=0)
    return LogisticRegression(C=1.0, max_iter=2000)


def out_of_fold(X: np.ndarray, y: np.ndarray, groups: np.ndarray, kind: str, folds: int = 5) -> np.ndarray:
    """Raw scores of the model under cross-validation that keeps each group's matches (a source package's:
    its pairs look alike) in one fold: how it scores matches of packages it was not fitted on."""
    from sklearn.model_selection import GroupKFold

    scores = np.zeros(len(y))
    for tr, te in GroupKFold(n_splits=folds).split(X, y, groups):
        scores[te] = classifier(kind).fit(X[tr], y[tr]).decision_function(X[te])
    return scores


def threshold_for(p: np.ndarray, y: np.ndarray, kinds: np.ndarray, precision: float, slack: float = 0.01,
                  min_count: int = 100) -> float:
    """The lowest confidence (steps of 0.005) at which the names given are right at least `precision` of the
    time over all pairs, and at least `precision - slack` on every kind of pair the benchmark scores (pairs
    of unrelated or related programs are in the fit, not here; a kind's precision has a floor of names that
    changed between releases, which an exact rule would chase to 1.0). Shared-static pairs are held to the
    kind's rule only: their many easy matches would lower the threshold for every other kind."""
    scored = [k for k in np.unique(kinds) if k not in ("unrelated", "related") and (kinds == k).sum() >= min_count]
    overall = kinds != "shared-static"
    for t in np.linspace(0.0, 1.0, 201):
        named = p >= t
        counted = named & overall
        if counted.any() and y[counted].mean() < precision:
            continue
        if all(y[(kinds == k) & named].mean() >= precision - slack for k in scored if ((kinds == k) & named).any()):
            return float(t)
    return 1.0


def to_calibrator(clf, X: np.ndarray) -> Calibrator:
    """The fitted model as a Calibrator (its raw score reproduced in NumPy, checked on X). The trees are read
    from the fitted HistGradientBoostingClassifier's predictors (numerical splits only)."""
    if not hasattr(clf, "_predictors"):
        return Calibrator(coef=[float(c) for c in clf.coef_[0]], intercept=float(clf.intercept_[0]))
    trees = []
    for (pred,) in clf._predictors:
        n = pred.nodes
        leaf = n["is_leaf"].astype(bool)
        feature, left, right = (np.where(leaf, v, n[c].astype(np.int64)).tolist()
                                for c, v in (("feature_idx", -2), ("left", -1), ("right", -1)))
        trees.append({"feature": feature, "left": left, "right": right,
                      "threshold": [float(v) for v in np.where(leaf, -2.0, n["num_threshold"])],
                      "value": [float(v) for v in n["value"]]})
    cal = Calibrator(coef=[], intercept=0.0, trees=trees, tree_rate=1.0,
                     tree_init=float(np.ravel(clf._baseline_prediction)[0]))
    err = float(np.max(np.abs(cal.raw(X) - clf.decision_function(X))))
    if err > 1e-6:
        raise SystemExit(f"fit_matcher: the NumPy trees differ from sklearn's by {err}")
    return cal


def pooled_examples(paths: list[Path]) -> tuple:
    """The examples of several --dump files as one set (X, y, packages, kinds, fitted_on)."""
    Xs, ys, groups, kinds, fitted = [], [], [], [], []
    for k, path in enumerate(paths):
        d = np.load(path, allow_pickle=False)
        if list(d["features"]) != list(FEATURES):
            raise SystemExit(f"fit_matcher: {path} holds other features than this version's")
        # dumps before packages were kept have pair numbers: keep each file's apart
        groups.append(d["packages"].astype(str) if "packages" in d else np.char.add(f"{k}:", d["groups"].astype(str)))
        Xs.append(d["X"])
        ys.append(d["y"])
        kinds.append(d["kinds"].astype(str))
        fitted.append(str(d["fitted_on"]))
    if any(set(a) & set(b) for a, b in itertools.combinations(groups, 2)):
        raise SystemExit("fit_matcher: the --examples files share packages; each package belongs in one file")
    return np.concatenate(Xs), np.concatenate(ys), np.concatenate(groups), np.concatenate(kinds), "; ".join(fitted)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=Path, default=Path("corpus/pairs-train.json"))
    ap.add_argument("--manifest", type=Path, default=Path("corpus/manifest-train.jsonl"))
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--work", type=Path, default=Path("/work/data/fit"))
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--model-packages", type=Path, default=Path("corpus/model-train-packages.txt"),
                    help="Packages the model was trained on: left out of the fit.")
    ap.add_argument("--min-bytes", type=int, default=20000, help="Leave out targets smaller than this.")
    ap.add_argument("--per-kind", type=int, default=16)
    ap.add_argument("--mixed", type=int, default=16,
                    help="Rebuild pairs of other compilers and levels than the benchmark's (other_rebuild).")
    ap.add_argument("--everything", type=int, default=16,
                    help="Rebuild pairs of another compiler and -O0 against -O3, each used both ways round.")
    ap.add_argument("--unrelated", type=int, default=16)
    ap.add_argument("--related", type=int, default=16,
                    help="Pairs of two different programs or libraries of one package and one build.")
    ap.add_argument("--shared-static", type=int, default=2,
                    help="Pairs a package and suite of a shared library (exports only) and a static program "
                         "linking the same package's archive with glibc (symbridge.train.shared_static; 0: none).")
    ap.add_argument("--precision", type=float, default=0.98)
    ap.add_argument("--out", type=Path, default=WEIGHTS / CALIBRATION_FILE)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-fit-params", dest="fit_params", action="store_false",
                    help="Keep the matcher's thresholds; fit only the calibration.")
    ap.add_argument("--calibrator", choices=("trees", "logistic"), default="trees",
                    help="The model under the isotonic map (default: boosted trees).")
    ap.add_argument("--dump", type=Path, default=None,
                    help="Also save the examples (features, right or not, pair, kind, names) to this .npz.")
    ap.add_argument("--examples", type=Path, nargs="+", default=None,
                    help="Fit only the calibration, on the examples of earlier --dump files (same matcher). "
                         "Several files are pooled: the cross-fitting of a model trained on every train "
                         "package, each file from a model that held out other packages.")
    ap.add_argument("--missing-packages", action="store_true",
                    help="Only print the source packages of the drawn pairs whose files are not in --corpus "
                         "(what to rebuild first; scripts/rebuild_data.sh uses it).")
    a = ap.parse_args(argv)
    if a.examples:  # refit the calibration alone, on the examples of earlier dumps
        X, y, packages, kinds, fitted_on = pooled_examples(a.examples)
        fit_calibration(X, y, packages, kinds, a, fitted_on)
        return 0
    model = Model.load(a.model) if a.model else Model.default()
    rng = random.Random(a.seed)
    pairs = json.loads(a.pairs.read_text())
    seen = read_list(a.model_packages)
    rows = read_manifest(a.manifest)
    by_kind = heldout_pairs(pairs, rows, seen, a.min_bytes, mixed=True)
    later = ("cross-version", "mixed-rebuild", "cross-everything")  # kinds added since: their own draw below,
    # so that the others' stay as they were
    chosen = [(a.corpus / p["reference"], a.corpus / p["target"], p["kind"])
              for kind, ps in sorted(by_kind.items()) if kind not in later
              for p in rng.sample(ps, min(a.per_kind, len(ps)))]
    # binaries that keep their full symbol tables, so that every function of the pair can be judged
    shared = [r for r in rows if r["origin"] in ("rebuild", "static-dev") and r["size"] < 3_000_000
              and r["source_package"] not in seen]
    for _ in range(a.unrelated):
        r1, r2 = rng.sample(shared, 2)
        if r1["source_package"] != r2["source_package"]:
            chosen.append((a.corpus / r1["relpath"], a.corpus / r2["relpath"], "unrelated"))
    # the seed's own setting: two programs that share part of their code (a library or gnulib linked into both)
    builds: dict[tuple, list] = defaultdict(list)
    for r in shared:
        builds[(r["source_package"], r["origin"], r["suite"], r["compiler"], r["flags"])].append(r)
    several = [rs for _, rs in sorted(builds.items()) if len({unit_of(r["relpath"]) for r in rs}) >= 2]
    for _ in range(a.related if several else 0):
        r1, r2 = rng.sample(rng.choice(several), 2)
        if unit_of(r1["relpath"]) != unit_of(r2["relpath"]):
            chosen.append((a.corpus / r1["relpath"], a.corpus / r2["relpath"], "related"))
    # the seed's setting from a library's shared build: a static program holding the library and glibc (its
    # own draw: adding these pairs leaves the others as they were)
    for lib, prog in shared_static.choose(shared_static.pairs(rows, a.corpus, seen), a.shared_static, a.seed):
        chosen.append((lib, prog, "shared-static"))
    for kind in later:
        ps = by_kind.get(kind, [])
        n = {"mixed-rebuild": a.mixed, "cross-everything": a.everything}.get(kind, a.per_kind)
        for p in random.Random(a.seed).sample(ps, min(n, len(ps))):
            chosen.append((a.corpus / p["reference"], a.corpus / p["target"], kind))
            if kind == "cross-everything":  # the other way round is another task (-O0 named from -O3)
                chosen.append((a.corpus / p["target"], a.corpus / p["reference"], kind))
    if a.missing_packages:
        for package in sorted({package_of(path, a.corpus) for ref, tgt, _ in chosen for path in (ref, tgt)
                               if not path.exists()}):
            print(package)
        return 0
    t0 = time.time()
    prepared, kinds_of, packages_of = [], [], []
    for ref, tgt, kind in chosen:
        if not ref.exists() or not tgt.exists():
            print(f"skip {tgt}: not in the corpus on this machine", file=sys.stderr)
            continue
        try:
            prepared.append(prepare(ref, tgt, a.work, model))
            kinds_of.append(kind)
            packages_of.append(package_of(ref, a.corpus))
        except (SymbridgeError, OSError) as exc:
            print(f"skip {tgt}: {exc}", file=sys.stderr)
    print(f"[{time.time() - t0:5.0f}s] {len(prepared)} pairs loaded", file=sys.stderr)
    params = fit_params(prepared) if a.fit_params else Params.default()
    if a.fit_params:
        (a.out.parent / "matcher.json").write_text(json.dumps(
            {"params": params.to_dict(), "fitted_on": f"{len(prepared)} train-sources pairs, model {model.name}"},
            indent=1))
    print(f"matcher thresholds: {params}", file=sys.stderr)
    X, y, kinds, counts, names, packages = [], [], [], [], [], []
    for prep, kind, package in zip(prepared, kinds_of, packages_of):
        xs, ys = examples(prep, params, partial=kind == "cross-release", names=names)
        counts.append(len(xs))
        name = prep[3][0].binary.path.name if prep[3] else "?"
        X += xs
        y += ys
        kinds += [kind] * len(xs)
        packages += [package] * len(xs)
        print(f"[{time.time() - t0:5.0f}s] {kind:22s} {len(xs):5d} matches, {np.mean(ys) if ys else 0:.3f} right  "
              f"{name}", file=sys.stderr, flush=True)
    X, y = np.array(X), np.array(y, float)
    groups = np.concatenate([[k] * n for k, n in enumerate(counts)]) if counts else np.zeros(0)
    fitted_on = (f"{len(chosen)} train-sources pairs of packages the model was not trained on "
                 f"({', '.join(sorted(set(kinds)))}), {len(y)} matches, {y.mean():.3f} right; model {model.name}")
    if a.dump:
        np.savez(a.dump, X=X, y=y, groups=groups, packages=np.array(packages), kinds=np.array(kinds),
                 features=np.array(FEATURES),
                 fitted_on=np.array(fitted_on), names=np.array(names),
                 pairs=np.array([f"{p[2][0].binary.path} {p[3][0].binary.path}" if p[3] and p[2] else "?"
                                 for p in prepared]))
    fit_calibration(X, y, np.array(packages), np.array(kinds), a, fitted_on)
    return 0


def centred_isotonic(p: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """Knots of a centred isotonic map (after Oron and Flournoy 2017): each step of the isotonic fit becomes one
    knot at the mean score of its examples (the lowest step at its lowest score, the highest at its highest),
    and the map interpolates between them. It is as calibrated as the steps but strictly increasing over the
    scores it was fitted on, so it keeps the order the trees put matches in, where the steps tie every match
    of a wide step (most confident matches shared one value)."""
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y).predict(p)
    steps = np.unique(fitted)
    xs = [float(p[fitted == v].mean()) for v in steps]
    xs[0], xs[-1] = float(p[fitted == steps[0]].min()), float(p[fitted == steps[-1]].max())
    ys = [float(v) for v in steps]
    if xs[0] > 0.0:
        xs, ys = [0.0] + xs, [0.0] + ys
    if xs[-1] < 1.0:
        xs, ys = xs + [1.0], ys + [1.0]
    return xs, ys


def fit_calibration(X: np.ndarray, y: np.ndarray, groups: np.ndarray, kinds: np.ndarray, a, fitted_on: str) -> None:
    """The model on every example; the isotonic map and the threshold from its out-of-fold scores, which is
    how it will score packages it was not fitted on (its scores on its own examples are too sure)."""
    from sklearn.metrics import roc_auc_score

    oof = {}
    for kind in ("logistic", "trees"):
        oof[kind] = out_of_fold(X, y, groups, kind)
        per_kind = ", ".join(f"{k} {roc_auc_score(y[kinds == k], oof[kind][kinds == k]):.3f}"
                             for k in np.unique(kinds) if 0 < y[kinds == k].mean() < 1)
        print(f"package-grouped 5-fold AUROC, {kind}: {roc_auc_score(y, oof[kind]):.4f} ({per_kind})", file=sys.stderr)
    cal = to_calibrator(classifier(a.calibrator).fit(X, y), X)
    p_raw = 1 / (1 + np.exp(-np.clip(oof[a.calibrator], -40, 40)))
    cal.iso_x, cal.iso_y = centred_isotonic(p_raw, y)
    p = np.interp(p_raw, cal.iso_x, cal.iso_y)
    cal.threshold = round(threshold_for(p, y, kinds, a.precision), 3)
    cal.fitted_on = fitted_on
    cal.save(a.out)
    for kind in np.unique(kinds):
        sel, k = p >= cal.threshold, kinds == kind
        print(f"threshold {cal.threshold:.3f}, {kind}: named {int((sel & k).sum())} of {int(k.sum())} matches, "
              f"precision {y[sel & k].mean() if (sel & k).any() else float('nan'):.4f}, recall of right matches "
              f"{(sel & k & (y == 1)).sum() / max((k & (y == 1)).sum(), 1):.4f} (out of fold)")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())
