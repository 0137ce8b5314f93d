"""The scores benchmarks/accuracy.py reports (importable without the corpus)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
spec = importlib.util.spec_from_file_location("accuracy", Path(__file__).parent.parent / "benchmarks" / "accuracy.py")
accuracy = importlib.util.module_from_spec(spec)
sys.modules["accuracy"] = accuracy  # dataclasses look their module up
spec.loader.exec_module(accuracy)


def test_operating_points_move_the_threshold_over_the_confidences():
    curve = [(0.9, True, True), (0.8, True, True), (0.7, False, True), (0.6, True, True)]
    p95, r99 = accuracy.operating_points(curve, counterparts=4)
    assert p95 != p95  # recall 0.95 is never reached (a wrong name): NaN
    assert r99 == 0.5  # the two names above 0.75 are right


def test_operating_points_take_tied_confidences_together():
    curve = [(0.9, True, True)] * 3 + [(0.5, True, True), (0.5, False, False)]
    p95, r99 = accuracy.operating_points(curve, counterparts=4)
    assert p95 == 0.8  # the tie at 0.5 comes in whole: 4 right of 5
    assert r99 == 0.75


def test_auroc_ranks_right_names_above_wrong_ones_and_is_nan_without_both():
    assert accuracy.auroc_of([(0.9, True), (0.8, True), (0.2, False)]) == 1.0
    assert accuracy.auroc_of([(0.9, False), (0.2, True)]) == 0.0
    assert accuracy.auroc_of([(0.9, True)]) != accuracy.auroc_of([(0.9, True)])


def _row(address, ref_address, ref_name, confidence):
    return {"address": address, "via": ["embedding"], "reference_address": ref_address, "name": ref_name,
            "confidence": confidence, "candidates": [{"address": ref_address, "name": ref_name, "score": 0.9}]}


def test_a_wrong_name_looks_like_a_rename_only_when_neither_name_is_on_the_other_side():
    truth = {0x10: {"ul_strv_join"}, 0x20: {"bar"}, 0x30: {"baz"}}
    r = {"functions": [_row(0x10, 0x110, "strv_join", 0.9),  # own name new, name given gone: a rename
                       _row(0x20, 0x120, "baz", 0.8),  # the name given is another target function's: a mistake
                       _row(0x30, 0x130, "baz", 0.7)]}
    out = accuracy.score_transfer(r, truth, has_counterpart={0x30}, partial=False)
    assert [(ok, renamed) for _, ok, _, renamed in out["curve"]] == [(False, True), (False, False), (True, False)]
    assert out["renamed"] == [True, False, False]  # one flag a confidence, for the AUROC without renames


def test_operating_points_can_set_renames_aside():
    curve = [(0.9, True, True, False), (0.8, False, False, True), (0.7, True, True, False)]
    assert accuracy.operating_points(curve, counterparts=2)[0] == 2 / 3
    assert accuracy.operating_points(curve, counterparts=2, without_renames=True)[0] == 1.0


def test_a_matchs_confidence_is_judged_by_its_reference_name_not_by_the_name_given():
    truth = {0x10: {"foo"}}
    row = dict(_row(0x10, 0x110, "foo", 0.9), name="other")  # given another name than its reference function's
    out = accuracy.score_transfer({"functions": [row]}, truth, has_counterpart={0x10}, partial=False)
    assert out["confidences"] == [(0.9, True)] and out["right"] == 0 and out["matched_right"] == 1


def test_a_match_to_an_unnamed_reference_function_is_judged_only_where_the_targets_name_is_elsewhere():
    truth = {0x10: {"sqlite3BtreeNext"}, 0x20: {"foo"}}
    rows = [_row(0x10, 0x110, "sub_110", 0.9),  # the reference does not export it: may well be right
            _row(0x20, 0x120, "sub_120", 0.8)]  # the reference names foo elsewhere: wrong
    for row in rows:
        row["name"] = None
    out = accuracy.score_transfer({"functions": rows}, truth, has_counterpart={0x20}, partial=True,
                                  reference_names={"foo", "bar"})
    assert out["confidences"] == [(0.8, False)] and out["named"] == 0
    everything = accuracy.score_transfer({"functions": rows}, truth, has_counterpart={0x20}, partial=True)
    assert everything["confidences"] == [(0.9, False), (0.8, False)]  # without the reference's names: all judged


def test_tie_loss_counts_the_share_lost_to_identical_vectors_only():
    import numpy as np

    xs = np.eye(3, dtype=np.float32)
    # target: row 0 is query 0's counterpart with a twin (row 3); row 1 is query 1's; query 2's counterpart
    # (row 2) is beaten by row 4, which is no tie
    xp = np.array([[1, 0, 0], [0, 1, 0], [0, 0.6, 0.8], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    d = accuracy.PairData("cross-release", "t", {"model": xs}, {"model": xp}, [0, 1, 2], [0, 1, 2], 5)
    assert accuracy.tie_loss([d], "model") == pytest.approx(0.5 / 3)  # query 0 has half a chance; query 2 none
    top1, _, _ = accuracy.whole_binary([d], "model")
    assert top1 == pytest.approx(1.5 / 3)


def test_the_by_pair_table_gives_each_pairs_top1_and_its_matching():
    import numpy as np

    xs = np.eye(2, dtype=np.float32)
    # query 0's counterpart (row 0) ties with row 1: half a hit; query 1's (row 1) loses to row 2
    xp = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    d = accuracy.PairData("cross-opt", "lib.so", {"model": xs, "own-code": xs}, {"model": xp, "own-code": xp},
                          [0, 1], [0, 1], 3)
    d.transfer = {"matched_right": 1, "counterparts": 2, "named": 2, "right": 1}
    rows = accuracy.by_pair_table({"cross-opt": [d]})
    assert rows[-1] == "| cross-opt | lib.so | 2 | 0.250 | 0.250 | 0.500 | 2 | 1 |"
    d.transfer = {}  # --no-transfer: the matching's columns stay empty
    assert accuracy.by_pair_table({"cross-opt": [d]})[-1].endswith("| 0.250 | | | |")


def test_pools_leave_out_the_querys_own_source_function_and_unknown_functions_of_its_package():
    import numpy as np

    xs = np.array([[1, 0, 0]], dtype=np.float32)
    # package a's target: row 0 the true counterpart; row 1 a function of unknown name identical to the query
    # (an official library's internal copy of it); row 2 `foo.isra.0`, the query's own function under a
    # clone's name; row 3 a named other function, further away
    xp = np.array([[0.8, 0.6, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    d = accuracy.PairData("cross-opt", "dev-eval/a/x", {"model": xs}, {"model": xp}, [0], [0], 4,
                          tnames=[frozenset({"foo"}), frozenset(), frozenset({"foo.isra.0"}), frozenset({"bar"})],
                          qnames=["foo"])
    assert d.package == "a"
    assert accuracy.pooled([d], [d], "model", k=2)[::2] == (1.0, 1)  # only `bar` can be drawn
    assert accuracy.pooled([d], [d], "model", k=3)[2] == 0  # too few functions for a pool of 3
    assert accuracy.pooled([d], [d], "model", k=3, unknown_of_own_package=True)[0] == 0.0  # the copy wins
    # another package's function of unknown name is a negative like any other
    e = accuracy.PairData("cross-opt", "dev-eval/b/y", {"model": xs}, {"model": xp[1:2]}, [], [], 1,
                          tnames=[frozenset()], qnames=[])
    assert accuracy.pooled([d], [d, e], "model", k=3)[0] == 0.0


def test_a_name_given_without_a_reference_function_is_judged_by_itself():
    """A cold part named after its owner has no reference function: its own name is judged, on the curve too."""
    truth = {0x10: {"foo.cold"}, 0x20: {"bar.cold"}}
    rows = [dict(_row(0x10, 0x110, "x", 0.8), reference_address=None, name="foo.cold", candidates=[]),
            dict(_row(0x20, 0x120, "x", 0.7), reference_address=None, name="baz.cold", candidates=[])]
    out = accuracy.score_transfer({"functions": rows}, truth, has_counterpart={0x10, 0x20}, partial=False)
    assert out["confidences"] == [(0.8, True), (0.7, False)] and out["right"] == 1
    assert [c[:2] for c in out["curve"]] == [(0.8, True), (0.7, False)]


def test_names_under_the_threshold_are_not_given_but_stay_on_the_curve():
    """A result made at min_confidence 0 and judged at the threshold: the cold part of a match under it counts
    as not named, and is on the operating-point curve at its owner's confidence."""
    truth = {0x10: {"foo"}, 0x20: {"foo.cold"}}
    rows = [_row(0x10, 0x110, "foo", 0.5),
            dict(_row(0x20, 0x120, "x", 0.5), reference_address=None, name="foo.cold", candidates=[])]
    out = accuracy.score_transfer({"functions": rows}, truth, has_counterpart={0x10, 0x20}, partial=False,
                                  threshold=0.68)
    assert out["named"] == 0 and out["right"] == 0
    assert [c[:2] for c in out["curve"]] == [(0.5, True), (0.5, True)]
    assert accuracy.operating_points(out["curve"], 2) == (1.0, 1.0)


def test_a_pool_may_be_drawn_from_pairs_other_than_the_querys():
    import numpy as np

    xs = np.array([[1, 0, 0]], dtype=np.float32)
    d = accuracy.PairData("cross-everything", "dev-eval/a/x", {"model": xs},
                          {"model": np.array([[0.8, 0.6, 0]], dtype=np.float32)}, [0], [0], 1,
                          tnames=[frozenset({"foo"})], qnames=["foo"])
    # the population: another pair's target, where `foo` (the query's own function built another way) is left
    # out and `bar` beats the true counterpart
    e = accuracy.PairData("cross-opt", "dev-eval/a/y", {"model": xs},
                          {"model": np.array([[1, 0, 0], [0.9, 0.1, 0]], dtype=np.float32)}, [], [], 2,
                          tnames=[frozenset({"foo"}), frozenset({"bar"})], qnames=[])
    assert accuracy.pooled([d], [e], "model", k=2)[::2] == (0.0, 1)
