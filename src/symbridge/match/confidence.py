"""Calibrated confidence: boosted trees (or a logistic model) over the evidence of a match, then an isotonic
map, fitted on train-sources pairs. Inference is NumPy only; the trees are stored as JSON arrays."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

VIAS = ("symbol", "identical", "string", "embedding", "callgraph", "order", "structure")
FEATURES = ("sim", "margin", "support", "log_size", "size_ratio", "top1", "reverse_top1", "log_degree",
            "support_ratio", "mutual_sim", "order_support", "seed_share", "order_run", "size_dev",
            "sim_rel", "caller_diff", "n_close") + tuple("via_" + v for v in VIAS) + (
                "identical_size", "conflict", "callee_diff", "reverse_margin", "rank", "reverse_agrees",
                "plain_agrees", "members_agree", "views_agree", "signature_agrees", "nearby", "sim_median")
# How more of a feature may move the confidence (+1 up, -1 down, 0 either way): the trees are held to it, so
# that stronger evidence never lowers a confidence, also for pairs unlike those of the fit.
MONOTONE = {"sim": 1, "margin": 1, "support": 1, "size_ratio": -1, "top1": 1, "reverse_top1": 1,
            "support_ratio": 1, "mutual_sim": 1, "order_support": 1, "seed_share": 1, "order_run": 1,
            "size_dev": -1, "sim_rel": 1, "caller_diff": -1, "n_close": -1, "via_symbol": 1, "via_identical": 1,
            "via_string": 1, "identical_size": 1, "conflict": -1, "callee_diff": -1, "reverse_margin": 1,
            "rank": -1, "reverse_agrees": 1, "plain_agrees": 1, "members_agree": 1,
            "views_agree": 1, "signature_agrees": 1, "nearby": 1}
CALIBRATION_FILE = "calibration.json"


def match_features(sim: float, margin: float, support: int, size_p: int, size_s: int, via: list[str], *,
                   top1: bool = True, reverse_top1: bool = True, degree: int = 0, order_support: int = 0,
                   seed_share: float = 0.0, order_run: int = 0, size_shift: float = 0.0,
                   sim_median: float = 0.0, caller_diff: int = 0, n_close: int = 1, conflict: int = 0,
                   callee_diff: int = 0, reverse_margin: float = 1.0, rank: int = 0,
                   reverse_agrees: bool = True, plain_agrees: bool = True, members_agree: float = 1.0,
                   views_agree: float = 1.0, signature_agrees: float = 1.0, nearby: float = 1.0) -> list[float]:
    """The evidence of one match as the calibration model reads it. `top1`: the reference function is the
    target's nearest neighbour; `reverse_top1`: and the other way round; `degree`: the target function's
    callers + callees (a match with many neighbours and no support is suspicious); `order_support`: how many
    of the two nearest matched functions in address order (before, after) agree with this match's place;
    `seed_share`: the share of the target's functions matched by seeds (how close the two binaries are);
    `order_run`: matches on both sides (up to 4 each) that go on in the same address order; `size_shift` and
    `sim_median`: the typical log2 size ratio and similarity of the pair's mutual nearest neighbours, so that
    a match is judged against what this pair of binaries looks like; `caller_diff`: how many callers one
    side has more than the other; `n_close`: the candidates within 0.03 of the match's similarity (a family
    of look-alikes); `identical_size`: log2 of the size of identical code (0 for other matches: a long run of
    identical code is near-certain evidence, a short one is not); `conflict`: matched call-graph neighbours
    of the target function whose matches are no neighbours of the reference function; `callee_diff` as
    caller_diff for callees; `reverse_margin`: how much closer the reference function is to this target
    function than to any other; `rank`: its place among the target function's candidates; `reverse_agrees`:
    matching the other way round (the target as the reference) pairs the same two functions; `plain_agrees`:
    so does matching without address-order propagation and refinement; `members_agree`: the share of the
    ensemble's members whose own matching does; `views_agree`: the share of other views of the code (TF-IDF of
    mnemonic n-grams, the identifier sketch alone) whose matching does; `signature_agrees`: see
    signature_agreement; `nearby`: the share of the 8 target functions around it in address order (4 each
    side) whose match is sure (a symbol, identical code, or mutual nearest neighbours at similarity 0.8 or
    more): where two binaries share part of their code, a match inside the shared part has sure ones around
    it, and one out in the other part has none. `sim_median` is also a feature of its own, free to move the
    confidence either way: how far apart the two builds are (clang -O0 against gcc -O3 is far, two releases
    built alike are near), against which the same similarity means more or less."""
    return [sim, margin, math.log1p(support), math.log2(max(size_p, 1)),
            abs(math.log2(max(size_p, 1) / max(size_s, 1))), float(top1), float(reverse_top1),
            math.log1p(degree), support / max(degree, 1), sim * float(top1 and reverse_top1), order_support,
            seed_share, order_run / 8.0, abs(math.log2(max(size_p, 1) / max(size_s, 1)) - size_shift),
            sim - sim_median, math.log1p(caller_diff), math.log1p(n_close)] + [
                1.0 if v in via else 0.0 for v in VIAS] + [math.log2(max(size_p, 1)) if "identical" in via else 0.0,
                                                           math.log1p(conflict), math.log1p(callee_diff),
                                                           reverse_margin, float(rank), float(reverse_agrees),
                                                           float(plain_agrees), float(members_agree),
                                                           float(views_agree), float(signature_agrees),
                                                           float(nearby), sim_median]


def signature_agreement(a, b) -> float:
    """How far two functions' interfaces agree (their lifted facts): half for reading the same parameters
    (registers and widths), half for returning the same kind of value at some ret (or at none)."""
    same_params = set(a.params) == set(b.params)
    ra, rb = set(a.returns), set(b.returns)
    same_returns = bool(ra & rb) or not (ra or rb)
    return (float(same_params) + float(same_returns)) / 2


def tree_scores(trees: list[dict], x: np.ndarray) -> np.ndarray:
    """The summed leaf values of regression trees (arrays: feature, threshold, left, right, value; a leaf has
    left == -1; a row goes left when its feature <= the threshold)."""
    x = np.asarray(x, np.float64)
    rows = np.arange(len(x))
    total = np.zeros(len(x))
    for t in trees:
        feature, threshold = np.asarray(t["feature"]), np.asarray(t["threshold"])
        left, right, value = np.asarray(t["left"]), np.asarray(t["right"]), np.asarray(t["value"])
        node = np.zeros(len(x), np.int64)
        for _ in range(len(feature)):
            leaf = left[node] < 0
            if leaf.all():
                break
            go_left = x[rows, np.maximum(feature[node], 0)] <= threshold[node]
            node = np.where(leaf, node, np.where(go_left, left[node], right[node]))
        total += value[node]
    return total


@dataclass
class Calibrator:
    """p(name right) = isotonic(sigmoid(z)), z = tree_init + tree_rate * (sum of the trees) when there are
    trees, else w . x + b; ``threshold`` is the default --min-confidence."""

    coef: list[float] = field(default_factory=lambda: [6.0, 8.0, 0.8, 0.3, -0.8, 0.5, 0.5, 0.0, 0.5, 0.5, 0.5,
                                                       1.0, 1.0, -0.5, 2.0, -0.5, -0.5,
                                                       3.0, 2.0, 1.0, 0.0, 0.5, 0.3, 0.3, 0.2,
                                                       -0.5, -0.3, 2.0, -0.2, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0])
    intercept: float = -6.0
    iso_x: list[float] = field(default_factory=list)  # isotonic map of sigmoid(raw score)
    iso_y: list[float] = field(default_factory=list)
    threshold: float = 0.5
    fitted_on: str = "hand-set defaults (not fitted)"
    trees: list[dict] = field(default_factory=list)
    tree_init: float = 0.0
    tree_rate: float = 0.0

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The model's score before the sigmoid."""
        x = np.atleast_2d(np.asarray(x, np.float64))
        if self.trees:
            return self.tree_init + self.tree_rate * tree_scores(self.trees, x)
        return x @ np.asarray(self.coef) + self.intercept

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = self.raw(x)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
        if self.iso_x:
            p = np.interp(p, self.iso_x, self.iso_y)
        return p

    @classmethod
    def load(cls, path: Path) -> Calibrator:
        data = json.loads(Path(path).read_text())
        if data.get("features") != list(FEATURES):
            raise ValueError(f"{path}: calibration features do not match this version")
        data.pop("features")
        return cls(**data)

    def save(self, path: Path) -> None:
        d = dict(self.__dict__, features=list(FEATURES), trees=[])
        text = json.dumps(d, indent=1)  # one tree a line
        trees = ",\n  ".join(json.dumps(t, separators=(",", ":")) for t in self.trees)
        text = text.replace('"trees": []', '"trees": [\n  ' + trees + "\n ]" if self.trees else '"trees": []')
        Path(path).write_text(text)

    @classmethod
    def default(cls) -> Calibrator:
        ref = resources.files("symbridge.model") / "weights" / CALIBRATION_FILE
        with resources.as_file(ref) as p:
            if Path(p).is_file():
                return cls.load(Path(p))
        return cls()
