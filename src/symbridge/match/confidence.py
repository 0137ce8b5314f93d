"""Calibrated confidence: a logistic model over the evidence of a match, fitted on train-sources pairs."""

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
            "sim_rel") + tuple("via_" + v for v in VIAS)
CALIBRATION_FILE = "calibration.json"


def match_features(sim: float, margin: float, support: int, size_p: int, size_s: int, via: list[str], *,
                   top1: bool = True, reverse_top1: bool = True, degree: int = 0, order_support: int = 0,
                   seed_share: float = 0.0, order_run: int = 0, size_shift: float = 0.0,
                   sim_median: float = 0.0) -> list[float]:
    """The evidence of one match as the calibration model reads it. `top1`: the reference function is the
    target's nearest neighbour; `reverse_top1`: and the other way round; `degree`: the target function's
    callers + callees (a match with many neighbours and no support is suspicious); `order_support`: how many
    of the two nearest matched functions in address order (before, after) agree with this match's place;
    `seed_share`: the share of the target's functions matched by seeds (how close the two binaries are);
    `order_run`: matches on both sides (up to 4 each) that go on in the same address order; `size_shift` and
    `sim_median`: the typical log2 size ratio and similarity of the pair's mutual nearest neighbours, so that
    a match is judged against what this pair of binaries looks like."""
    return [sim, margin, math.log1p(support), math.log2(max(size_p, 1)),
            abs(math.log2(max(size_p, 1) / max(size_s, 1))), float(top1), float(reverse_top1),
            math.log1p(degree), support / max(degree, 1), sim * float(top1 and reverse_top1), order_support,
            seed_share, order_run / 8.0, abs(math.log2(max(size_p, 1) / max(size_s, 1)) - size_shift),
            sim - sim_median] + [
                1.0 if v in via else 0.0 for v in VIAS]


@dataclass
class Calibrator:
    """p(name right) = isotonic(sigmoid(w . x + b)); ``threshold`` is the default --min-confidence."""

    coef: list[float] = field(default_factory=lambda: [6.0, 8.0, 0.8, 0.3, -0.8, 0.5, 0.5, 0.0, 0.5, 0.5, 0.5,
                                                       1.0, 1.0, -0.5, 2.0, 3.0, 2.0, 1.0, 0.0, 0.5, 0.3, 0.3])
    intercept: float = -6.0
    iso_x: list[float] = field(default_factory=list)  # isotonic map of the logistic output
    iso_y: list[float] = field(default_factory=list)
    threshold: float = 0.5
    fitted_on: str = "hand-set defaults (not fitted)"

    def probability(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, np.float64))
        z = x @ np.asarray(self.coef) + self.intercept
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
        d = dict(self.__dict__, features=list(FEATURES))
        Path(path).write_text(json.dumps(d, indent=1))

    @classmethod
    def default(cls) -> Calibrator:
        ref = resources.files("symbridge.model") / "weights" / CALIBRATION_FILE
        with resources.as_file(ref) as p:
            if Path(p).is_file():
                return cls.load(Path(p))
        return cls()
