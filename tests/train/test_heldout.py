"""Held-out model comparison: top-1 shares ties the way the benchmark does."""

import numpy as np

from symbridge.train.heldout import top1


def test_top1_counts_a_tie_as_a_share_and_a_loss_as_zero():
    scores = np.array([[0.9, 0.5, 0.1],   # true column 0 is best
                       [0.7, 0.7, 0.2],   # tied with one other: half a hit
                       [0.3, 0.8, 0.1]])  # another is better: a miss
    true = scores[np.arange(3), [0, 0, 0]]
    assert top1(scores, true).tolist() == [1.0, 0.5, 0.0]


def draw(monkeypatch, tmp_path, by_kind, kinds):
    import argparse

    from symbridge.train import heldout

    (tmp_path / "pairs.json").write_text("[]")
    monkeypatch.setattr(heldout, "heldout_pairs", lambda *args: by_kind)
    monkeypatch.setattr(heldout, "read_manifest", lambda path: [])
    monkeypatch.setattr(heldout, "read_list", lambda path: set())
    monkeypatch.setattr(heldout, "queries", lambda ref, tgt, work: ([], [], [0], [0]))
    ap = argparse.ArgumentParser()
    heldout.pair_arguments(ap, per_kind=2, seed=3, kinds=kinds)
    a = ap.parse_args(["--pairs", str(tmp_path / "pairs.json"), "--corpus", str(tmp_path)])
    return [(kind, p["target"]) for kind, p, *_ in heldout.held_out_queries(a)]


def test_a_kind_added_after_the_others_leaves_their_draw_as_it_was(monkeypatch, tmp_path):
    def pairs(kind, n):
        return [{"reference": f"{kind}-r{i}", "target": f"{kind}-t{i}"} for i in range(n)]

    old = {"cross-opt": pairs("cross-opt", 6), "cross-release": pairs("cross-release", 6)}
    new = dict(old, **{"cross-version": pairs("cross-version", 6)})
    before = draw(monkeypatch, tmp_path, old, None)
    assert draw(monkeypatch, tmp_path, new, ["cross-opt", "cross-release"]) == before
    after = draw(monkeypatch, tmp_path, new, None)
    assert after[:len(before)] == before and {k for k, _ in after[len(before):]} == {"cross-version"}
