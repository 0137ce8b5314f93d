"""Held-out model comparison: top-1 shares ties the way the benchmark does."""

import numpy as np

from symbridge.train.heldout import top1


def test_top1_counts_a_tie_as_a_share_and_a_loss_as_zero():
    scores = np.array([[0.9, 0.5, 0.1],   # true column 0 is best
                       [0.7, 0.7, 0.2],   # tied with one other: half a hit
                       [0.3, 0.8, 0.1]])  # another is better: a miss
    true = scores[np.arange(3), [0, 0, 0]]
    assert top1(scores, true).tolist() == [1.0, 0.5, 0.0]
