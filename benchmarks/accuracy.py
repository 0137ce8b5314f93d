"""Accuracy of symbridge on the dev-eval pairs, the model beside the TF-IDF baseline, in one run.

    python benchmarks/accuracy.py                        # all kinds, writes benchmarks/results/accuracy.md
    python benchmarks/accuracy.py --kinds cross-opt --max-pairs 3 --model path/to/model.safetensors
    python benchmarks/accuracy.py --suites bookworm trixie --out benchmarks/results/accuracy-bookworm-trixie.md
    python benchmarks/accuracy.py --rebuilds 'gcc -O2:gcc -Os' 'gcc -O1:clang -O1' --out /tmp/flags.md

Targets are handed to the tool as benchmarks must: stripped, with the names of their defined dynamic
symbols blanked (symbridge.evaluation.anonymize); truth comes from the original target's symbols.
Queries: reference functions whose name the target also has (both unique); pool: the target's functions.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from symbridge.binary import Binary
from symbridge.evaluation import (anonymize, counterpart_queries, name_right, source_name, truth_names,
                                  truth_names_of)
from symbridge.match.confidence import Calibrator
from symbridge.match.transfer import transfer
from symbridge.model.model import Model
from symbridge.model.shift import ShiftFilter
from symbridge.model import parallel

HERE = Path(__file__).resolve().parent
KIND_TITLES = {
    "cross-release": "official bullseye -> trixie shared libraries (gcc 10 -> 14)",
    "cross-release-exec": "official bullseye -> trixie programs",
    "cross-release-static": "official bullseye -> trixie static archives (linked)",
    "cross-opt": "rebuild gcc -O0 -> gcc -O3",
    "cross-compiler": "rebuild gcc -O2 -> clang -O2",
    "cross-version": "rebuild bullseye source -> trixie source (same compiler/flags)",
    "cross-everything": "rebuild clang -O0 -> gcc -O3 and gcc -O3 -> clang -O0",
}
ADDED_KINDS = ("cross-release-static", "cross-everything")  # kinds this benchmark adds to DESIGN.md's
RELEASE_KINDS = ("cross-release", "cross-release-exec", "cross-release-static")
GCC = {"bullseye": "gcc 10", "bookworm": "gcc 12", "trixie": "gcc 14", "sid": "gcc 14"}  # Debian's default


def suite_pairs(corpus: Path, ref_suite: str, tgt_suite: str) -> list[dict]:
    """The official dev-eval pairs between two other suites than the committed list's bullseye -> trixie,
    from the records the corpus builder left (the same pairing as the committed list's: symbridge.train.corpus)."""
    from symbridge.train.corpus import load_records, official_pairs

    return official_pairs(load_records(corpus / "dev-eval"), ref_suite, tgt_suite)


def config_pairs(corpus: Path, configs: list[str], suite: str = "bookworm") -> tuple[list[str], list[dict]]:
    """Dev-eval rebuild pairs between two build configurations of one suite's source, each given as
    "gcc -O2:clang -Os" (reference:target), paired from the corpus's records as the committed list's rebuild
    pairs are (symbridge.train.corpus.rebuild_pairs); the kind is "gcc -O2 -> clang -Os". The kinds, in the
    order given, and the pairs."""
    from symbridge.train.corpus import load_records, rebuild_pairs

    combos = []
    for c in configs:
        try:
            (cc_a, opt_a), (cc_b, opt_b) = (side.split() for side in c.split(":"))
        except ValueError:
            sys.exit(f"accuracy: --rebuilds wants 'COMPILER -OX:COMPILER -OY', not {c!r}")
        combos.append((f"{cc_a} {opt_a} -> {cc_b} {opt_b}", (suite, cc_a, opt_a), (suite, cc_b, opt_b)))
    return [kind for kind, _, _ in combos], rebuild_pairs(load_records(corpus / "dev-eval"), combos)


def release_titles(ref_suite: str, tgt_suite: str) -> None:
    """KIND_TITLES of the official kinds for another pair of suites."""
    old = "bullseye -> trixie"
    for kind in RELEASE_KINDS:
        KIND_TITLES[kind] = KIND_TITLES[kind].replace(old, f"{ref_suite} -> {tgt_suite}")
    gcc = f"({GCC.get(ref_suite, '?')} -> {GCC.get(tgt_suite, '?').split()[-1]})"
    KIND_TITLES["cross-release"] = KIND_TITLES["cross-release"].replace("(gcc 10 -> 14)", gcc)


@dataclass
class PairData:
    kind: str
    name: str
    xs: dict[str, np.ndarray]  # method -> reference vectors (queries)
    xp: dict[str, np.ndarray]  # method -> target vectors (whole pool)
    q: list[int]  # query rows in xs
    t: list[int]  # true rows in xp
    n_target: int
    transfer: dict = field(default_factory=dict)
    docs: list = field(default_factory=list)  # mnemonic n-grams of reference then target functions
    tnames: list = field(default_factory=list)  # the truth names of each target function (pool filtering)
    qnames: list = field(default_factory=list)  # the name of each query
    embed_seconds: float = 0.0
    embed_count: int = 0

    @property
    def package(self) -> str:
        """The source package of the target: corpus paths are split/package/..."""
        parts = Path(self.name).parts
        return parts[1] if len(parts) > 1 else self.name


def mnemonic_ngrams(f) -> list[str]:
    m = f.facts.mnemonics
    return m + [f"{a} {b}" for a, b in zip(m, m[1:])] + [f"{a} {b} {c}" for a, b, c in zip(m, m[1:], m[2:])]


def add_tfidf(pairs: list[PairData]) -> None:
    """The baseline's vectors, one vocabulary and IDF for all pairs of the run (so pools can mix pairs)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer=lambda x: x, sublinear_tf=True)
    vec.fit([doc for d in pairs for doc in d.docs])
    for d in pairs:
        X = vec.transform(d.docs)  # rows are L2-normalised
        ns = len(d.docs) - d.n_target
        d.xs["tfidf"], d.xp["tfidf"] = X[:ns], X[ns:]
        d.docs = []


def tie_ranks(greater: np.ndarray, ties: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chance of being ranked first, expected reciprocal rank) under random tie-breaking: functions with
    the same score as the true counterpart (identical code gives identical vectors) share the places."""
    greater, ties = np.asarray(greater, float), np.asarray(ties, float)
    top1 = np.where(greater == 0, 1.0 / (1.0 + ties), 0.0)
    return top1, 1.0 / (greater + 1.0 + ties / 2.0)


def ranks(scores_true: np.ndarray, scores_all: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 chance and expected reciprocal rank of the true counterpart among all rows of scores_all
    (which include the true one)."""
    greater = (scores_all > scores_true[:, None]).sum(axis=1)
    ties = (scores_all == scores_true[:, None]).sum(axis=1) - 1
    return tie_ranks(greater, np.maximum(ties, 0))


# transfer results are made with every name given (min_confidence 0) and judged at the calibrated threshold, so
# that the operating-point curves hold the cold parts of matches under it too (score_transfer)
THRESHOLD = Calibrator.default().threshold


def load_pair(pair: dict, corpus: Path, work: Path, models: dict[str, Model], run_transfer: bool) -> PairData | None:
    ref, tgt = corpus / pair["reference"], corpus / pair["target"]
    if not ref.exists() or not tgt.exists():
        return None
    anon = anonymize(tgt, work / "anon" / (pair["target"].replace("/", "__")))
    S = Binary(ref, use_debug_files=False)
    P = Binary(anon, ignore_symbols=True)
    truth = truth_names(tgt)
    sc, pc = S.code_functions, P.code_functions
    q, t = counterpart_queries(sc, pc, truth)
    if not q:
        return None
    d = PairData(pair["kind"], pair["target"], {}, {}, q, t, len(pc))
    d.tnames = [frozenset(truth.get(f.address, ())) for f in pc]
    d.qnames = [source_name(sc[i].name) for i in q]
    for name, m in models.items():
        own, d.xs[name] = m.embed_both(sc)
        if name == "model":
            d.xs["own-code"] = own
        t0 = time.perf_counter()
        P2 = Binary(anon, ignore_symbols=True)  # fresh: time lifting too
        p2c = P2.code_functions
        own, d.xp[name] = m.embed_both(p2c)
        if name == "model":
            d.xp["own-code"] = own
            d.embed_seconds = time.perf_counter() - t0
            d.embed_count = len(p2c)
    d.docs = [mnemonic_ngrams(f) for f in sc + pc]
    if run_transfer:
        r = transfer(S, P, models["model"], min_confidence=0.0)  # every name, for the curve: see score_transfer
        ref_names = {source_name(n) for ns in truth_names_of(S).values() for n in ns}
        d.transfer = score_transfer(r, truth, {pc[j].address for j in t}, partial=pair["kind"] == "cross-release",
                                    threshold=THRESHOLD, reference_names=ref_names)
    return d


def shown_path(path: str) -> str:
    """A path as the results files show it: relative to the repository when it lies inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path(__file__).resolve().parent.parent))
    except ValueError:
        return path


def score_transfer(r: dict, truth: dict[int, set[str]], has_counterpart: set[int], partial: bool,
                   threshold: float = 0.0, reference_names: set[str] | None = None) -> dict:
    """Names given, right, and the calibration data of one transfer. With `partial` truth (official shared
    libraries: only exported names are known) a name on a function the target does not export is not judged.
    A match to a reference function without a name gives no name; it is judged (wrong) only where the target
    function's own name is one of `reference_names` (the reference's names, `source_name`d), i.e. where its
    counterpart is known to be another function: else the reference may simply not export it (as the
    calibration's fit leaves such matches out). Without `reference_names` every such match is judged.
    Names count as given at or above `threshold`: give r made with min_confidence 0 and the calibrated
    threshold here, so that the curve holds the cold parts of matches under the threshold too (transfer names
    a cold part after its owner only where the owner is named)."""
    named = right = matched_right = 0
    ref_names = {}
    for f in r["functions"]:
        if "import" in f["via"]:
            continue
        for c in f["candidates"]:
            ref_names[c["address"]] = c["name"]
    right_cp = 0
    confidences, renamed_flags = [], []  # renamed_flags: as `renamed` below, one per confidence
    curve = []  # (confidence, name right, has a counterpart, renamed) of every judged function that could be named
    target_names = {source_name(n) for names in truth.values() for n in names}
    for f in r["functions"]:
        if "import" in f["via"]:
            continue
        names = truth.get(f["address"], set())
        if partial and not names:
            continue
        # the name the match stands for: its reference function's, or the name given without one (a cold part)
        ref = ref_names.get(f["reference_address"]) if f["reference_address"] is not None else f["name"]
        ok, has = name_right(ref, names), f["address"] in has_counterpart
        ref_named = ref is not None and not ref.startswith("sub_")
        # a diagnostic only: a wrong name on a function that has a name of its own found nowhere in the
        # reference, where the name given is found nowhere in the target, looks like a rename
        renamed = ref_named and not ok and not has and bool(names) and source_name(ref) not in target_names
        if ref_named:
            curve.append((f["confidence"], ok, has, renamed))
        if f["name"] and (threshold <= 0 or f["confidence"] >= threshold):
            given_ok = name_right(f["name"], names)
            named += 1
            right += given_ok
            right_cp += given_ok and has
        if has and ok:
            matched_right += 1
        judged = ref is not None
        if judged and ref.startswith("sub_"):  # a match that gives no name (see the docstring)
            judged = (any(source_name(n) in reference_names for n in names) if reference_names is not None
                      else bool(names))
        if judged:
            confidences.append((f["confidence"], ok))
            renamed_flags.append(renamed)
    return {"named": named, "right": right, "right_counterparts": right_cp, "counterparts": len(has_counterpart),
            "matched_right": matched_right, "confidences": confidences, "renamed": renamed_flags, "curve": curve}


def operating_points(curve: list[tuple[float, bool, bool, bool]], counterparts: int,
                     without_renames: bool = False) -> tuple[float, float]:
    """(best precision at recall >= 0.95, best recall at precision >= 0.99) over confidence thresholds: names
    given to every function at or above the threshold; recall counts right names on functions that have a
    counterpart. NaN where the point is never reached. `without_renames` sets the names that look like renames
    aside (a diagnostic: the benchmark's own numbers count them as wrong)."""
    if without_renames:
        curve = [x for x in curve if not x[3]]
    if not curve or not counterparts:
        return float("nan"), float("nan")
    c = np.array(sorted(curve, key=lambda x: -x[0]), dtype=float)
    conf, right, has = c[:, 0], c[:, 1], c[:, 2]
    last = np.r_[conf[1:] != conf[:-1], True]  # a threshold takes every tie at once
    named = np.arange(1, len(c) + 1)[last]
    prec = np.cumsum(right)[last] / named
    rec = np.cumsum(right * has)[last] / counterparts
    p95 = prec[rec >= 0.95].max() if (rec >= 0.95).any() else float("nan")
    r99 = rec[prec >= 0.99].max() if (prec >= 0.99).any() else float("nan")
    return float(p95), float(r99)


def sim(a, b):
    """Scores of rows of a against rows of b (dense or sparse, both unit-normalised)."""
    s = a @ b.T
    return s.toarray() if hasattr(s, "toarray") else np.asarray(s)


def whole_binary(pairs: list[PairData], method: str) -> tuple[float, float, int]:
    top, rr = [], []
    for d in pairs:
        s = sim(d.xs[method][d.q], d.xp[method])
        t1, r1 = ranks(s[np.arange(len(d.q)), d.t], s)
        top.append(t1)
        rr.append(r1)
    top, rr = np.concatenate(top), np.concatenate(rr)
    return float(top.mean()), float(rr.mean()), len(top)


def tie_loss(pairs: list[PairData], method: str) -> float:
    """Top-1 lost to exact ties: the share of queries (ties counted as whole_binary counts them) whose true
    counterpart scores best but shares its score with other target functions (identical vectors, mostly
    identical code), which no similarity of the two functions alone can tell apart."""
    lost, n = 0.0, 0
    for d in pairs:
        s = sim(d.xs[method][d.q], d.xp[method])
        top1, _ = ranks(s[np.arange(len(d.q)), d.t], s)
        lost += float(((top1 > 0) - top1).sum())  # scored best (top1 > 0), yet only 1/(1+ties) of a hit
        n += len(d.q)
    return lost / max(n, 1)


def pooled(pairs: list[PairData], everything: list[PairData], method: str, k: int,
           seed: int = 0, unknown_of_own_package: bool = False) -> tuple[float, float, int]:
    """recall@1 and MRR with pools of k: the true counterpart plus k-1 functions drawn (fixed seed) from the
    target functions of every pair of this run (`everything`) that cannot be the query's own source function:
    none of the query's name (the same function built another way is not a negative), and none whose name is
    unknown from the query's own package, unless `unknown_of_own_package`. Those are the internal functions of
    an official shared library, and the query's function as Debian built it is one of them."""
    rng = np.random.default_rng(seed)
    offs = np.cumsum([0] + [d.xp[method].shape[0] for d in everything])
    offs_of = {id(d): o for d, o in zip(everything, offs)}
    if hasattr(everything[0].xp[method], "toarray"):
        import scipy.sparse as sp

        pool_all = sp.vstack([d.xp[method] for d in everything]).tocsr()
    else:
        pool_all = np.concatenate([d.xp[method] for d in everything])
    n = pool_all.shape[0]
    if n < k:
        return float("nan"), float("nan"), 0
    by_name: dict[str, list[int]] = defaultdict(list)
    unknown_in: dict[str, list[int]] = defaultdict(list)
    for d, o in zip(everything, offs):
        for i, ns in enumerate(d.tnames):
            for name in {source_name(x) for x in ns}:
                by_name[name].append(o + i)
            if not ns:
                unknown_in[d.package].append(o + i)
    greater, ties = [], []
    for d in pairs:
        qv = d.xs[method][d.q]
        s_true = np.asarray(sim(qv, d.xp[method]))[np.arange(len(d.q)), d.t]
        s_pool = sim(qv, pool_all)  # each query against every target function of the run
        allowed_here = np.ones(n, bool)
        if not unknown_of_own_package:
            allowed_here[unknown_in[d.package]] = False
        for row in range(len(d.q)):
            allowed = allowed_here.copy()
            allowed[by_name.get(d.qnames[row], [])] = False
            if id(d) in offs_of:  # the true counterpart is not drawn again
                allowed[offs_of[id(d)] + d.t[row]] = False
            candidates = np.flatnonzero(allowed)
            if len(candidates) < k - 1:
                continue
            others = candidates[rng.choice(len(candidates), size=k - 1, replace=False)]
            greater.append(int((s_pool[row, others] > s_true[row]).sum()))
            ties.append(int((s_pool[row, others] == s_true[row]).sum()))
    if not greater:
        return float("nan"), float("nan"), 0
    top, rr = tie_ranks(np.array(greater), np.array(ties))
    return float(top.mean()), float(rr.mean()), len(top)


def analogy_rows(pairs: list[PairData], method: str, seed: int = 0, filt=None) -> tuple[list[float], int]:
    """Top-1 of plain nearest neighbour, one random anchor, the mean shift of 10 anchors and, with the model's
    shift filter (`filt`, symbridge.model.shift), the same two with the shift filtered (ties shared as in
    tie_ranks). The query's norm does not change the ranking over unit target rows: it is not normalised.
    The anchors' own target functions are no answer (symbridge.analogy leaves them out)."""
    rng = random.Random(seed)
    hits = np.zeros(5)
    total = 0
    for d in pairs:
        xs, xp = d.xs[method], d.xp[method]
        n = len(d.q)
        if n < 12:
            continue
        for row in range(n):
            others = [j for j in rng.sample(range(n), 11) if j != row][:10]
            a = others[0]
            base = xs[d.q[row]]
            one, ten = xp[d.t[a]] - xs[d.q[a]], (xp[[d.t[j] for j in others]] - xs[[d.q[j] for j in others]]).mean(0)
            queries = [base, base + one, base + ten]
            known = [[], [d.t[a]], [d.t[j] for j in others]]  # the anchors' own target functions
            if filt is not None:
                queries += [base + filt.apply(np.asarray(sh).ravel(), k) for sh, k in ((one, 1), (ten, 10))]
                known += known[1:]
            for k, qv in enumerate(queries):
                sc = np.asarray(sim(xp, np.asarray(qv).reshape(1, -1) if not hasattr(qv, "toarray") else qv))
                sc = sc.ravel().astype(np.float64)
                sc[known[k]] = -np.inf  # left out of the answers, as symbridge.analogy does
                g = int((sc > sc[d.t[row]]).sum())
                hits[k] += 0.0 if g else 1.0 / int((sc == sc[d.t[row]]).sum())
            total += 1
    if not total:
        return [float("nan")] * 5, 0
    out = list(hits / total)
    return (out if filt is not None else out[:3] + [float("nan")] * 2), total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=Path, default=HERE.parent / "corpus" / "pairs-dev-eval.json")
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--model", type=Path, default=None, help="Model file (default: the shipped model).")
    ap.add_argument("--kinds", nargs="+", default=list(KIND_TITLES))
    ap.add_argument("--max-pairs", type=int, default=0, help="At most this many pairs per kind (0: all).")
    ap.add_argument("--no-transfer", action="store_true", help="Skip whole-binary matching (faster).")
    ap.add_argument("--suites", nargs=2, metavar=("REF", "TARGET"), default=None,
                    help="Official pairs between these two suites (e.g. bookworm trixie), paired from the corpus's "
                         "records, instead of --pairs; only the official kinds.")
    ap.add_argument("--rebuilds", nargs="+", metavar="CC -OX:CC -OY", default=None,
                    help="Rebuild pairs of bookworm's source between two build configurations (e.g. 'gcc -O2:gcc "
                         "-Os'), paired from the corpus's records, instead of --pairs; each is a kind of its own.")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "accuracy.md")
    ap.add_argument("--title", default="dev-eval", help="What the pairs are, for the table's heading.")
    ap.add_argument("--by-pair", action="store_true", help="Add a table of each pair's figures.")
    a = ap.parse_args(argv)
    if a.rebuilds:
        a.kinds, pairs_spec = config_pairs(a.corpus, a.rebuilds)
    elif a.suites:
        a.kinds = [k for k in a.kinds if k in RELEASE_KINDS]
        release_titles(*a.suites)
        pairs_spec = suite_pairs(a.corpus, *a.suites)
    elif a.pairs.exists():
        pairs_spec = json.loads(a.pairs.read_text())
    else:
        print(f"accuracy.py: {a.pairs} not found: build the corpus first (python -m symbridge.train.corpus)",
              file=sys.stderr)
        return 2
    model = Model.load(a.model) if a.model else Model.default()
    code_only = Model(model.t, dict(model.meta, code_only=True), model.source)
    models = {"model": model, "code-only": code_only}
    by_kind: dict[str, list[PairData]] = defaultdict(list)
    t_start = time.time()
    for kind in a.kinds:
        spec = [p for p in pairs_spec if p["kind"] == kind]
        if a.max_pairs:
            spec = spec[: a.max_pairs]
        for p in spec:
            d = load_pair(p, a.corpus, a.work, models, not a.no_transfer)
            if d is not None:
                by_kind[kind].append(d)
                print(f"[{time.time() - t_start:6.0f}s] {kind}: {p['target']} ({len(d.q)} queries, "
                      f"{d.n_target} target functions)", file=sys.stderr, flush=True)

    if not by_kind:
        sys.exit(f"accuracy: none of the pairs asked for is in {a.corpus} (build it with symbridge.train.corpus)")
    add_tfidf([d for ps in by_kind.values() for d in ps])
    lines = report(by_kind, model, a)
    text = "\n".join(lines) + "\n"
    print(text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    return 0


def report(by_kind: dict[str, list[PairData]], model: Model, a) -> list[str]:
    shift_filter = ShiftFilter.for_model(model)
    L = [f"# symbridge accuracy on {a.title} ({time.strftime('%Y-%m-%d')})", "",
         f"Model: `{model.name}` ({shown_path(model.source)}); baseline: TF-IDF over mnemonic 1-3-grams, cosine.",
         f"Command: `python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}`".rstrip(), ""]
    L += ["## Embedding alone: top-1 and MRR over the whole target binary", "",
          "| pairs | kind | queries | model top-1 | model MRR | own code only top-1 | code-only top-1 "
          "| TF-IDF top-1 | TF-IDF MRR |",
          "|---|---|---|---|---|---|---|---|---|"]
    for kind, ps in by_kind.items():
        m1, mm, n = whole_binary(ps, "model")
        o1, _, _ = whole_binary(ps, "own-code")
        c1, _, _ = whole_binary(ps, "code-only")
        t1, tm, _ = whole_binary(ps, "tfidf")
        L.append(f"| {len(ps)} | {KIND_TITLES.get(kind, kind)} | {n} | {m1:.3f} | {mm:.3f} | {o1:.3f} | {c1:.3f} "
                 f"| {t1:.3f} | {tm:.3f} |")
    L += ["", "Model: the function's vector with its context where the model has one (its callees' vectors, a "
              "sketch of the read-only data it reads and its callers' vectors, `model.context`), as `symbridge "
              "embed` writes it. Own code only: the vector of the function's own code (no callee, no data, no "
              "caller), which the matching below compares. Code-only: strings, imports and callee names masked "
              "(the callees' and callers' vectors stay)."]
    L += ["", "Diagnostic: top-1 lost to exact ties (the true counterpart scores best but shares its vector with other "
               "target functions, mostly identical code): " + ", ".join(
                   f"{kind} {tie_loss(ps, 'model'):.3f}" for kind, ps in by_kind.items()),
          "", "The same for own code only (functions whose own code is the same instruction for instruction, told "
              "apart only by what they call, read or are called from): " + ", ".join(
                  f"{kind} {tie_loss(ps, 'own-code'):.3f}" for kind, ps in by_kind.items())]
    # cross-everything's targets are the files of other kinds' pairs (gcc -O3) or their builds at another level:
    # they stay out of the population, which is what it was before that kind was added
    everything = ([d for kind, ps in by_kind.items() if kind != "cross-everything" for d in ps]
                  or [d for ps in by_kind.values() for d in ps])
    L += ["", "## Pools of 100 and 10,000 (true counterpart + K-1 functions drawn with seed 0 from the target "
              f"functions of all {len(everything)} pairs of this run, cross-everything's aside)", "",
          "The K-1 leave out the functions of the query's name and the functions of the query's own package "
          "whose name is unknown: the internal functions of official shared libraries, among them the query's "
          "own function as Debian built it. The last column draws those too, so that the query's own function "
          "may count as a negative there.", "",
          "| kind | K | model recall@1 | model MRR | TF-IDF recall@1 | TF-IDF MRR | queries | "
          "model recall@1, unknown functions of the package drawn too |",
          "|---|---|---|---|---|---|---|---|"]
    for kind, ps in by_kind.items():
        for k in (100, 10000):
            m1, mm, n = pooled(ps, everything, "model", k)
            t1, tm, _ = pooled(ps, everything, "tfidf", k)
            a1, _, _ = pooled(ps, everything, "model", k, unknown_of_own_package=True)
            if n:
                L.append(f"| {kind} | {k} | {m1:.3f} | {mm:.3f} | {t1:.3f} | {tm:.3f} | {n} | {a1:.3f} |")
            else:
                L.append(f"| {kind} | {k} | n/a (fewer than {k} target functions) | | | | | |")
    L += ["", "## The seed's analogy as a method (top-1 over the whole target binary)", "",
          "The anchors' own target functions are left out of the answers, as `symbridge analogy` does and as "
          "word-analogy tests leave out the question's words.", "",
          "The filtered columns pass the shift through the model's filter (`symbridge.model.shift`, fitted on "
          "train pairs: it keeps the shift's part along the directions in which whole pairs of builds differ, "
          "shrunk by what one anchor or ten can tell), as `symbridge analogy` does by default; the other "
          "columns add it as the seed wrote it (`--raw-shift`). "
          + ("" if shift_filter else "This model has no filter fitted for it."), "",
          "| kind | method | nearest neighbour | one random anchor | mean shift of 10 anchors "
          "| one anchor, filtered shift | 10 anchors, filtered shift | queries |",
          "|---|---|---|---|---|---|---|---|"]
    for kind, ps in by_kind.items():
        for method in ("model", "tfidf"):
            (nn, one, ten, f1, f10), n = analogy_rows(ps, method, filt=shift_filter if method == "model" else None)
            filtered = f"{f1:.3f} | {f10:.3f}" if method == "model" and shift_filter else "n/a | n/a"
            L.append(f"| {kind} | {method} | {nn:.3f} | {one:.3f} | {ten:.3f} | {filtered} | {n} |")
    if any(d.transfer for ps in by_kind.values() for d in ps):
        L += ["", "## Whole-binary matching (transfer) at the default threshold", "",
              "Match top-1: the target functions with a counterpart whose match is right (named or not). Precision: "
              "names given that are the target's own name. Recall: target functions with a counterpart named right. "
              "The two operating points move the confidence threshold instead of using the default one.",
              "",
              "| kind | match top-1 | named | precision | recall | precision at recall 0.95 | recall at precision 0.99 "
              "| nearest-neighbour top-1 | TF-IDF top-1 |",
              "|---|---|---|---|---|---|---|---|---|"]
        for kind, ps in by_kind.items():
            named = sum(d.transfer["named"] for d in ps)
            right = sum(d.transfer["right"] for d in ps)
            right_cp = sum(d.transfer["right_counterparts"] for d in ps)
            cp = sum(d.transfer["counterparts"] for d in ps)
            mr = sum(d.transfer["matched_right"] for d in ps)
            p95, r99 = operating_points([x for d in ps for x in d.transfer["curve"]], cp)
            L.append(f"| {kind} | {mr / max(cp, 1):.3f} | {named} | {right / max(named, 1):.3f} "
                     f"| {right_cp / max(cp, 1):.3f} | {p95:.3f} | {r99:.3f} | {whole_binary(ps, 'model')[0]:.3f} "
                     f"| {whole_binary(ps, 'tfidf')[0]:.3f} |")
        L += renames_table(by_kind)
        conf = [c for ps in by_kind.values() for d in ps for c in d.transfer["confidences"]]
        L += calibration_table(conf)
        per_kind = {kind: [c for d in ps for c in d.transfer["confidences"]] for kind, ps in by_kind.items()}
        # with few wrong matches, each moves a kind's AUROC by 1/wrong: the count says how far to trust it
        L.append("AUROC by kind (wrong matches): " + ", ".join(
            f"{k} {auroc_of(c):.3f} ({sum(not ok for _, ok in c)})" for k, c in per_kind.items()))
        L.append("ECE by kind: " + ", ".join(f"{k} {ece_of(c):.3f}" for k, c in per_kind.items()))
        design = [c for k, cs in per_kind.items() if k not in ADDED_KINDS for c in cs]
        if set(per_kind) & set(ADDED_KINDS) and design:
            L.append(f"The kinds of DESIGN.md's dev-eval pairs alone (the kinds this benchmark adds, "
                     f"{' and '.join(ADDED_KINDS)}, aside): ECE {ece_of(design):.3f}, "
                     f"AUROC {auroc_of(design):.3f} over {len(design)} matches")
        kept = [c for ps in by_kind.values() for d in ps
                for c, r in zip(d.transfer["confidences"], d.transfer["renamed"]) if not r]
        L.append(f"Diagnostic: AUROC {auroc_of(kept):.3f} with the {len(conf) - len(kept)} wrong names that look like "
                 "renames set aside")
    secs = sum(d.embed_seconds for ps in by_kind.values() for d in ps)
    cnt = sum(d.embed_count for ps in by_kind.values() for d in ps)
    if a.by_pair:
        L += [""] + by_pair_table(by_kind)
    L += ["", f"## Speed: {cnt / max(secs, 1e-9):.0f} functions embedded per second (loading, discovery, lifting and "
              f"the model; {cnt} functions in {secs:.1f} s on this machine; one process for binaries under "
              f"{parallel.MIN_FUNCTIONS:,} functions, two from there on)"]
    return L


def by_pair_table(by_kind: dict[str, list[PairData]]) -> list[str]:
    """One row a pair: where a kind's figures come from (a few large or odd binaries can carry a pooled row)."""
    L = ["## By pair", "",
         "| kind | target | queries | model top-1 | own code only top-1 | match top-1 | named | right |",
         "|---|---|---|---|---|---|---|---|"]
    for kind, ps in by_kind.items():
        for d in ps:
            t = d.transfer
            match = (f"{t['matched_right'] / t['counterparts']:.3f} | {t['named']} | {t['right']}"
                     if t and t["counterparts"] else "| |")
            L.append(f"| {kind} | {d.name} | {len(d.q)} | {whole_binary([d], 'model')[0]:.3f} "
                     f"| {whole_binary([d], 'own-code')[0]:.3f} | {match} |")
    return L


def renames_table(by_kind: dict[str, list[PairData]]) -> list[str]:
    """How many of the wrong names at recall 0.95 look like renames (see score_transfer), and the precision
    there with them set aside: how much of the gap to precision 1 is a floor that no matching can lift."""
    L = ["", "### Wrong names that look like renames (diagnostic; the table above counts them as wrong)", "",
         "A wrong name looks like a rename when the target function's own name is nowhere in the reference and the "
         "name given is nowhere in the target: a function renamed between the builds, or a new one matched to one "
         "that is gone.", "",
         "| kind | wrong names at recall 0.95 | of them renames | precision at recall 0.95, renames set aside |",
         "|---|---|---|---|"]
    for kind, ps in by_kind.items():
        curve = [x for d in ps for x in d.transfer["curve"]]
        cp = sum(d.transfer["counterparts"] for d in ps)
        if not curve or not cp:
            continue
        c = sorted(curve, key=lambda x: -x[0])
        right_cp, k = 0, 0
        while k < len(c) and right_cp < 0.95 * cp:  # the smallest prefix (ties included) that reaches recall 0.95
            right_cp += c[k][1] and c[k][2]
            k += 1
        while 0 < k < len(c) and c[k][0] == c[k - 1][0]:
            k += 1
        if right_cp < 0.95 * cp:
            L.append(f"| {kind} | recall 0.95 not reached | | |")
            continue
        wrong = [x for x in c[:k] if not x[1]]
        p95, _ = operating_points(curve, cp, without_renames=True)
        L.append(f"| {kind} | {len(wrong)} of {k} | {sum(x[3] for x in wrong)} | {p95:.3f} |")
    return L


def calibration_table(conf: list[tuple[float, bool]]) -> list[str]:
    if not conf:
        return []
    p = np.array([c for c, _ in conf])
    y = np.array([ok for _, ok in conf], float)
    bins = np.linspace(0, 1, 11)
    L = ["", "### Calibration of `confidence` (matched target functions)", "",
         "| confidence | count | mean confidence | fraction right |", "|---|---|---|---|"]
    for lo, hi in zip(bins, bins[1:]):
        sel = _in_bin(p, lo, hi)
        if sel.any():
            L.append(f"| {lo:.1f}-{hi:.1f} | {int(sel.sum())} | {p[sel].mean():.3f} | {y[sel].mean():.3f} |")
    L.append("")
    L.append(f"ECE {ece_of(conf):.3f}, AUROC {auroc_of(conf):.3f} over {len(p)} matches")
    return L


def _in_bin(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))


def ece_of(conf: list[tuple[float, bool]]) -> float:
    """Expected calibration error over ten bins of confidence, weighted by their counts."""
    p = np.array([c for c, _ in conf])
    y = np.array([ok for _, ok in conf], float)
    bins = np.linspace(0, 1, 11)
    return float(sum(sel.sum() / len(p) * abs(p[sel].mean() - y[sel].mean())
                     for sel in (_in_bin(p, lo, hi) for lo, hi in zip(bins, bins[1:])) if sel.any()))


def auroc_of(conf: list[tuple[float, bool]]) -> float:
    """How well the confidences rank right names above wrong ones (NaN without both)."""
    y = np.array([ok for _, ok in conf], float)
    if not 0 < y.sum() < len(y):
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, np.array([c for c, _ in conf])))


if __name__ == "__main__":
    sys.exit(main())
