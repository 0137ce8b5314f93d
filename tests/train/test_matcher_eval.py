"""The held-out matcher check counts only target functions whose truth names a reference function."""

from types import SimpleNamespace

import numpy as np

from symbridge.train.matcher_eval import score
from tests.match.test_matcher import side


def test_score_counts_right_matches_and_nearest_neighbours_over_functions_with_a_counterpart():
    a, b, c = np.eye(3, dtype=np.float32)
    sc = [SimpleNamespace(name=n, size=64, address=k) for k, n in enumerate(("f", "g", "h"))]
    pc = [SimpleNamespace(name=None, size=64, address=0x100 + k) for k in range(3)]
    truth = {0x100: {"f"}, 0x101: {"h"}, 0x102: {"only_in_target"}}  # target 1 looks like g but is h
    prepared = (side([a, b, c]), side([a, b, np.float32(0.6) * a + np.float32(0.8) * c]), sc, pc, truth, [], [])
    right, nn, n = score(prepared)
    assert n == 2  # target 2 has no counterpart
    assert (right, nn) == (1, 1)
