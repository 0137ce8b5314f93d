"""The calibration fit's decision rules (no corpus needed)."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from symbridge.match.matcher import Params  # noqa: E402
from symbridge.train.fit_matcher import centred_isotonic, fit_params, threshold_for  # noqa: E402


def test_the_threshold_grid_keeps_the_other_shipped_settings():
    shipped = Params.default()
    fitted = fit_params([])  # no pairs: every grid point scores 0, the first wins
    grid = ("seed_sim", "prop_sim", "final_sim", "order_sim")
    assert all(getattr(fitted, k) == getattr(shipped, k) for k in vars(shipped) if k not in grid)
    assert shipped.cold_penalty != Params().cold_penalty  # the built-in default would have switched it off


def test_threshold_is_the_lowest_that_keeps_the_overall_precision():
    p = np.array([0.99] * 100 + [0.8, 0.7, 0.6])
    y = np.array([1] * 100 + [0, 0, 0], float)
    kinds = np.array(["cross-opt"] * 103)
    # 100 right of 103 named (0.971) fails; above 0.6, 100 of 102 (0.980) holds
    assert threshold_for(p, y, kinds, 0.98, min_count=1) == pytest.approx(0.605)


def test_threshold_also_holds_each_kind_within_the_slack():
    p = np.array([0.99] * 30 + [0.8] + [0.99] * 200)
    y = np.array([1] * 30 + [0] + [1] * 200, float)
    kinds = np.array(["cross-opt"] * 31 + ["cross-release"] * 200)
    # overall 230 of 231 right, but cross-opt alone 30 of 31 (0.968 < 0.97): its wrong name must go
    assert threshold_for(p, y, kinds, 0.98, min_count=1) == pytest.approx(0.805)
    assert threshold_for(p, y, kinds, 0.98, slack=0.05, min_count=1) == 0.0
    assert threshold_for(p, y, kinds, 0.98, min_count=100) == 0.0  # too few cross-opt examples to judge it alone


def test_pairs_of_other_programs_count_overall_but_not_as_a_kind():
    p = np.array([0.99] * 300 + [0.9] * 3)
    y = np.array([1] * 300 + [0] * 3, float)
    kinds = np.array(["cross-opt"] * 300 + ["related"] * 3)
    # overall 300 of 303 (0.990) holds at 0; "related" alone (0 of 3) is not held to the precision
    assert threshold_for(p, y, kinds, 0.98, min_count=1) == 0.0


def test_with_partial_truth_matches_of_unnamed_target_functions_are_not_judged():
    from types import SimpleNamespace

    from symbridge.analysis.lift import Facts
    from symbridge.match.matcher import Params
    from symbridge.train.fit_matcher import examples
    from tests.match.test_matcher import side

    v = np.eye(2, dtype=np.float32)
    sc = [SimpleNamespace(name=n, size=64, address=a, facts=Facts()) for n, a in (("api_call", 0x10), ("helper", 0x20))]
    pc = [SimpleNamespace(name=None, size=64, address=a, facts=Facts()) for a in (0x110, 0x120)]
    truth = {0x110: {"api_call"}}  # a stripped library: only its exported function has a known name
    prepared = (side(v), side(v), sc, pc, truth, [], [])
    X, y = examples(prepared, Params(), partial=True)
    assert y == [True]
    X, y = examples(prepared, Params(), partial=False)  # full truth: the unnamed function's match is wrong
    assert sorted(y) == [False, True]


def test_heldout_pairs_come_from_the_manifest_not_from_the_disk():
    from symbridge.train.fit_matcher import heldout_pairs

    def pair(pkg, tgt):
        return {"kind": "cross-opt", "source_package": pkg, "reference": f"train/{pkg}/gcc-O0/libx.so",
                "target": tgt}
    pairs = [pair("a", "train/a/gcc-O3/libx.so"), pair("b", "train/b/gcc-O3/libx.so"),
             pair("seen", "train/seen/gcc-O3/libx.so"), pair("c", "train/c/gcc-O3/tiny.so")]
    sizes = {"a": ("libx.so", 50_000), "b": ("libx.so", 60_000), "seen": ("libx.so", 50_000), "c": ("tiny.so", 900)}
    rows = [{"relpath": f"train/{pkg}/gcc-O3/{name}", "size": n} for pkg, (name, n) in sizes.items()]
    got = heldout_pairs(pairs, rows, {"seen"}, min_bytes=20_000)  # none of these files exists here
    assert [p["source_package"] for p in got["cross-opt"]] == ["a", "b"]


def test_out_of_fold_keeps_each_package_in_one_fold(monkeypatch):
    from pathlib import Path

    from symbridge.train import fit_matcher

    corpus = Path("/data/corpus")
    assert fit_matcher.package_of(corpus / "train/flac/rebuild/bookworm/gcc-O0/libFLAC.so", corpus) == "flac"
    folds = []

    class Recorder:  # column 0 of X is the package's number: what each fold's model fits on and scores
        def fit(self, X, y):
            folds.append({"fitted": set(X[:, 0].astype(int))})
            return self

        def decision_function(self, X):
            folds[-1]["scored"] = set(X[:, 0].astype(int))
            return np.zeros(len(X))

    monkeypatch.setattr(fit_matcher, "classifier", lambda kind: Recorder())
    packages = np.array([f"p{k % 7}" for k in range(70)])  # rows of one package are not next to each other
    X = np.array([[int(p[1:])] for p in packages], float)
    fit_matcher.out_of_fold(X, np.ones(70), packages, "trees")
    assert len(folds) == 5
    for fold in folds:  # no package is both fitted on and scored in one fold
        assert fold["scored"] and not fold["scored"] & fold["fitted"]
    assert sorted(k for fold in folds for k in fold["scored"]) == list(range(7))  # each scored exactly once


def test_missing_packages_lists_the_packages_whose_drawn_files_are_not_on_disk(tmp_path, capsys):
    import json

    from symbridge.train.fit_matcher import main

    def pair(pkg):
        return {"kind": "cross-opt", "source_package": pkg, "reference": f"train/{pkg}/gcc-O0/libx.so",
                "target": f"train/{pkg}/gcc-O3/libx.so"}
    rows = [{"relpath": f"train/{pkg}/{lvl}/libx.so", "size": 50_000, "origin": "rebuild", "source_package": pkg,
             "suite": "bookworm", "compiler": "gcc", "flags": lvl} for pkg in "abc" for lvl in ("gcc-O0", "gcc-O3")]
    (tmp_path / "pairs.json").write_text(json.dumps([pair(p) for p in "abc"]))
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "seen.txt").write_text("c\n")  # the model's own packages are never drawn
    corpus = tmp_path / "corpus"
    for lvl in ("gcc-O0", "gcc-O3"):  # package a is on disk
        (corpus / "train/a" / lvl).mkdir(parents=True)
        (corpus / "train/a" / lvl / "libx.so").write_bytes(b"")
    main(["--missing-packages", "--pairs", str(tmp_path / "pairs.json"), "--manifest", str(tmp_path / "manifest.jsonl"),
          "--model-packages", str(tmp_path / "seen.txt"), "--corpus", str(corpus), "--unrelated", "0",
          "--related", "0"])
    assert capsys.readouterr().out.split() == ["b"]


def test_centred_isotonic_map_keeps_the_scores_order_and_the_steps_calibration():
    rng = np.random.default_rng(0)
    p = np.sort(rng.uniform(0, 1, 4000))
    y = (rng.uniform(0, 1, 4000) < p ** 3).astype(float)
    xs, ys = centred_isotonic(p, y)
    q = np.interp(p, xs, ys)
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) >= 0)
    assert np.all(np.diff(q) > 0)  # no two scores tied, unlike the isotonic steps
    assert len(np.unique(q)) == len(p)
    for lo in (0.0, 0.5, 0.9):  # still calibrated: mean confidence against the share right, by band
        band = (p >= lo) & (p < lo + 0.1)
        assert abs(q[band].mean() - y[band].mean()) < 0.05


def test_rebuild_pairs_of_other_compilers_and_levels_are_drawn_as_their_own_kinds():
    from symbridge.train.fit_matcher import heldout_pairs

    def pair(kind, ref, tgt):
        return {"kind": kind, "source_package": "a", "reference": f"train/a/{ref}/libx.so",
                "target": f"train/a/{tgt}/libx.so"}
    pairs = [pair("cross-opt", "gcc-O0", "gcc-O3"), pair("cross-compiler-opt", "gcc-O3", "clang-O0"),
             pair("cross-opt", "gcc-O2", "gcc-O3"), pair("cross-compiler-opt", "gcc-O1", "clang-O3"),
             pair("cross-release", "x", "y")]
    rows = [{"relpath": p["target"], "size": 50_000} for p in pairs]
    plain = heldout_pairs(pairs, rows, set(), min_bytes=20_000)
    assert not {"mixed-rebuild", "cross-everything"} & set(plain)
    got = heldout_pairs(pairs, rows, set(), min_bytes=20_000, mixed=True)
    assert [(p["reference"], p["target"]) for p in got["cross-everything"]] == [
        ("train/a/gcc-O3/libx.so", "train/a/clang-O0/libx.so")]
    assert [(p["reference"], p["target"]) for p in got["mixed-rebuild"]] == [
        ("train/a/gcc-O2/libx.so", "train/a/gcc-O3/libx.so"), ("train/a/gcc-O1/libx.so", "train/a/clang-O3/libx.so")]
    assert [p["target"] for p in got["cross-opt"]] == ["train/a/gcc-O3/libx.so"]


def test_pooled_examples_join_dumps_of_disjoint_packages_and_refuse_shared_ones(tmp_path):
    import pytest

    from symbridge.match.confidence import FEATURES
    from symbridge.train.fit_matcher import pooled_examples

    def dump(name, packages):
        n = len(packages)
        np.savez(tmp_path / name, X=np.ones((n, len(FEATURES))), y=np.ones(n), groups=np.arange(n),
                 packages=np.array(packages), kinds=np.array(["cross-opt"] * n), features=np.array(FEATURES),
                 fitted_on=np.array(f"model {name}"))
        return tmp_path / f"{name}.npz"

    a, b = dump("a", ["zlib", "zlib", "expat"]), dump("b", ["bzip2"])
    X, y, packages, kinds, fitted_on = pooled_examples([a, b])
    assert X.shape == (4, len(FEATURES)) and list(packages) == ["zlib", "zlib", "expat", "bzip2"]
    assert fitted_on == "model a; model b"
    with pytest.raises(SystemExit, match="share packages"):
        pooled_examples([a, dump("c", ["expat"])])


def test_heldout_pairs_refuse_a_model_that_saw_every_package():
    import pytest

    from symbridge.train.fit_matcher import heldout_pairs

    pairs = [{"kind": "cross-opt", "source_package": "a", "reference": "r", "target": "t"}]
    with pytest.raises(SystemExit, match="fold model"):
        heldout_pairs(pairs, [{"relpath": "t", "size": 50_000}], {"a"}, min_bytes=0)
